"""``modo``: MoDo, multi-objective gradient descent with double sampling (Chen, Fernando, Ying &
Chen, "Three-Way Trade-Off in Multi-Objective Learning: Optimization, Generalization and
Conflict-Avoidance", NeurIPS 2023, Algorithm 1), as LibMTL's ``MoDo`` computes it (from the
authors' code, github.com/heshandevaka/Trade-Off-MOL).

The simplex weights λ (1/T at the start) take one projected gradient step per training step on
½‖Σ_t λ_t g_t‖² + ρ/2 ‖λ‖²: λ ← Π_Δ(λ − γ (G₁ G₂ᵀ λ + ρ λ)), and the shared update is G₃ᵀ λ with
the new λ (Π_Δ: Euclidean projection onto the simplex, LibMTL's sort-based one). Defaults are
LibMTL's: ``gamma`` 1e-3, ``rho`` 0.1 (the authors' fork of LibMTL defaults to ``gamma`` 0.1).

Sampling, an rsbench choice: the paper draws three independent batches per step (G₁, G₂ for
an unbiased estimate of the λ-gradient G Gᵀ λ, G₃ for the update); LibMTL's trainer runs three
forward passes for MoDo (the authors' fork two, updating the model with their sum). rsbench's
loop has one batch per step, so G₁ = G₂ = G₃ = this step's task gradients (the single-sample
variant, at a third of the cost): the λ-gradient then carries the batch's gradient noise
(E[G Gᵀ] ≠ E[G] E[G]ᵀ), the bias double sampling removes. Task-specific parameters get their own
task's gradient (LibMTL: its mean over the three batches).

A step that draws one task group updates the present tasks' λ, normalised to their total
mass, which they keep (an rsbench choice, as MoCo's). AMP: λ moves on the Gram matrix of the
unscaled gradients; the update Σ_t λ_t g_t is of the scaled ones, for the scaler to unscale.
λ is in the checkpoint (resume is bit-identical). ``rep_grad=True`` is an rsbench extension
(LibMTL refuses it): the same update on the representation's batch-summed gradients.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import GradientWeighting, gram, register_weighting


def project_simplex(y: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of ``y`` (T,) onto {λ ≥ 0, Σ λ = 1} (Duchi et al. 2008: the
    threshold of the largest k with u_k > (Σ_{i≤k} u_i − 1)/k, u sorted descending)."""
    u = torch.sort(y, descending=True).values
    css = u.cumsum(0) - 1
    k = torch.arange(1, len(y) + 1, dtype=y.dtype, device=y.device)
    rho = int((u - css / k > 0).nonzero().max())
    return (y - css[rho] / (rho + 1)).clamp_min(0)


def present_weights(state: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The present tasks' entries of simplex ``state`` normalised to sum 1 (uniform where they
    have no mass) and their mass."""
    sub = state[idx]
    mass = sub.sum()
    if not mass > 0:
        return torch.full_like(sub, 1.0 / len(sub)), mass
    return sub / mass, mass


@register_weighting("modo")
class MoDo(GradientWeighting):
    """Simplex weights moved by one projected gradient step on the squared update norm. DDP:
    each task's shared gradient is averaged over processes before the (deterministic) step, so
    λ is identical on every process; task-specific gradients by DDP's reducer."""

    def __init__(self, task_names, task_types, gamma: float = 1e-3, rho: float = 0.1,
                 rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.gamma, self.rho = float(gamma), float(rho)
        t = len(self.task_names)
        self.register_buffer("lambd", torch.full((t,), 1.0 / t, dtype=torch.float64))

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        G = gram(grads).cpu() / self._loss_scale ** 2  # G₁ G₂ᵀ: this step's gradients twice
        idx = self._present if grads.shape[0] != len(self.task_names) else \
            torch.arange(len(self.task_names))
        lam, mass = present_weights(self.lambd.cpu(), idx)
        lam = project_simplex(lam - self.gamma * (G @ lam + self.rho * lam))
        if mass > 0:
            self.lambd[idx.to(self.lambd.device)] = (mass * lam).to(self.lambd)
        self._record(lam)
        return lam
