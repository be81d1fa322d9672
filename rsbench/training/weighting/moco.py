"""``moco``: MoCo (Fernando et al., "Mitigating Gradient Bias in Multi-objective Learning: A
Provably Convergent Approach", ICLR 2023, Algorithm 1), as LibMTL's ``MoCo`` computes it.

Each step k, every task gradient is normalised to its loss, ĝ_t = g_t / (‖g_t‖ + 1e-8) · L_t;
the tracking variables move as y ← y − β_k (y − ĝ) with β_k = ``beta`` / k^``beta_sigma``, the
weights as λ ← softmax(λ − γ_k (y yᵀ + ρ I) λ) with γ_k = ``gamma`` / k^``gamma_sigma`` (λ = 1/T
at the start), and the shared update is yᵀ λ. Defaults are LibMTL's: ``beta`` 0.5,
``beta_sigma`` 0.5, ``gamma`` 0.1, ``gamma_sigma`` 0.5, ``rho`` 0. A step that draws one task
group (per-task batches) updates the rows of the tasks present and their λ, keeping their total
mass, and the update is their yᵀλ over that mass (an rsbench choice; LibMTL always has every
task). AMP: ĝ, y and λ are of the unscaled gradients; the update is multiplied by the loss scale
again, for the scaler to unscale. y and λ are in the checkpoint (resume is bit-identical). No
shared-representation mode (LibMTL refuses it too).
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import (
    GradientWeighting,
    all_reduce_mean_,
    register_weighting,
    world_size,
)


@register_weighting("moco")
class MoCo(GradientWeighting):
    """Tracked, loss-normalised gradients and softmax-updated weights. DDP: each task's shared
    gradient and loss are averaged over processes before the (deterministic) update, so y and λ
    are identical on every process; task-specific gradients by DDP's reducer."""

    rep_grad_supported = False

    def __init__(self, task_names, task_types, beta: float = 0.5, beta_sigma: float = 0.5,
                 gamma: float = 0.1, gamma_sigma: float = 0.5, rho: float = 0.0,
                 rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.beta, self.beta_sigma = float(beta), float(beta_sigma)
        self.gamma, self.gamma_sigma, self.rho = float(gamma), float(gamma_sigma), float(rho)
        t = len(self.task_names)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("lambd", torch.full((t,), 1.0 / t))
        self.y: torch.Tensor | None = None  # (T, D), created at the first step

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(grads).all():
            return grads.sum(0)  # AMP overflow: the scaler skips; the state stays
        n_all = len(self.task_names)
        idx = self._present.to(grads.device) if grads.shape[0] != n_all else \
            torch.arange(n_all, device=grads.device)
        if self.y is None or self.y.shape[1] != grads.shape[1]:
            self.y = grads.new_zeros((n_all, grads.shape[1]), dtype=torch.float32)
        self.y = self.y.to(grads.device)
        L = losses.float().to(grads.device).clone()
        if world_size() > 1:
            all_reduce_mean_(L)
        self.step += 1
        k = float(self.step)
        g = grads.float() / self._loss_scale
        g = g / (g.norm(dim=1, keepdim=True) + 1e-8) * L.unsqueeze(1)
        beta = self.beta / k ** self.beta_sigma
        gamma = self.gamma / k ** self.gamma_sigma
        self.y[idx] = self.y[idx] - beta * (self.y[idx] - g)
        y = self.y[idx]
        lam = self.lambd.to(grads.device)[idx]
        mass = lam.sum()
        eye = torch.eye(len(idx), device=grads.device)
        lam = mass * torch.softmax(lam - gamma * (y @ y.T + self.rho * eye) @ lam, -1)
        self.lambd[idx.to(self.lambd.device)] = lam.to(self.lambd)
        self._record(lam / mass)
        return ((y.T @ (lam / mass)) * self._loss_scale).to(grads.dtype)

    def get_extra_state(self) -> dict:
        return {"y": self.y}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("y") is not None:
            self.y = state["y"].clone()
