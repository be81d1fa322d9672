"""``db-mtl``: Dual-Balancing Multi-Task Learning (Lin et al., 2023, arXiv:2308.12029), as in
LibMTL's ``DB_MTL`` (by the paper's authors).

Loss-scale balancing: each task's gradient is that of ``log(L_t + 1e-8)``. Gradient-magnitude
balancing: an exponential moving average of those gradients, ``ĝ_t ← g_t + β_k (ĝ_t − g_t)``
with ``β_k = β / k^σ`` at step k, and the update ``Σ_t (max_s ||ĝ_s|| / (||ĝ_t|| + 1e-8)) ĝ_t``:
every task's averaged gradient rescaled to the largest norm. Defaults from LibMTL: β = 0.9
(``DB_beta``), σ = 0 (``DB_beta_sigma``), the average starting at 0. Task-specific parameters get
the gradient of their task's log loss (LibMTL). A step that draws one task group updates the
averages of the tasks present and combines those.

The update is built from the moving averages, not from this step's gradients, so there is no
shared-representation mode (as in LibMTL). The averages are kept unscaled (the AMP loss scale
divided out) and skipped on an overflow step; they are a (T, D) float32 tensor over the shared
parameters, saved in the checkpoint (its extra state) with the step count, so a resumed run
continues exactly — at the cost of T times the shared parameters in checkpoint size.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import (
    GradientWeighting,
    all_reduce_mean_,
    register_weighting,
    world_size,
)


@register_weighting("db-mtl")
class DBMTL(GradientWeighting):
    """Log losses and gradient-norm balancing of averaged gradients. DDP: the task losses are
    averaged over processes (the log's derivative 1/L is the global batch's), then each task's
    shared gradient before it enters the moving average (so the averages and the update are
    identical on every process); task-specific gradients by DDP's reducer."""

    rep_grad_supported = False

    def __init__(self, task_names, task_types, beta: float = 0.9, beta_sigma: float = 0.0,
                 rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)  # rep_grad=True: refused
        self.beta = float(beta)
        self.beta_sigma = float(beta_sigma)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.buffer: torch.Tensor | None = None  # (T, D), created at the first step

    def backward(self, losses, shared_params, scaler, extra=None) -> None:
        # ∇ log(L̄ + 1e-8) = ∇L / (L̄ + 1e-8), with L̄ the loss over the global batch (DDP: the
        # processes' mean; single process: L itself), so the averaged gradient is the global one
        names = list(losses)
        level = torch.stack([losses[n].detach().float() for n in names])
        if world_size() > 1:
            all_reduce_mean_(level)
        logs = {n: losses[n].float() / (level[i] + 1e-8) for i, n in enumerate(names)}
        super().backward(logs, shared_params, scaler, extra)

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(grads).all():
            return grads.sum(0)  # AMP overflow: the scaler skips; the averages stay
        n_all = len(self.task_names)
        idx = self._present.to(grads.device) if grads.shape[0] != n_all else \
            torch.arange(n_all, device=grads.device)
        if self.buffer is None or self.buffer.shape[1] != grads.shape[1]:
            self.buffer = grads.new_zeros((n_all, grads.shape[1]), dtype=torch.float32)
        self.buffer = self.buffer.to(grads.device)
        self.step += 1
        beta = self.beta / float(self.step) ** self.beta_sigma
        g = grads.float() / self._loss_scale
        self.buffer[idx] = g + beta * (self.buffer[idx] - g)
        buf = self.buffer[idx]
        norms = buf.norm(dim=1)
        alpha = norms.max() / (norms + 1e-8)
        self._record(alpha)
        return ((alpha @ buf) * self._loss_scale).to(grads.dtype)

    def get_extra_state(self) -> dict:
        return {"buffer": self.buffer}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("buffer") is not None:
            self.buffer = state["buffer"].clone()
