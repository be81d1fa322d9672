"""``excess-mtl``: ExcessMTL (He et al., "Robust Multi-Task Learning with Excess Risks", ICML
2024), as LibMTL's ``ExcessMTL`` and the authors' code (github.com/yifei-he/ExcessMTL) compute it.

Each task's excess risk is estimated from its shared gradient with AdaGrad-style accumulated
squares: w_t = Σ_j g_tj² / √(Σ_steps g_tj² + 1e-7). The first step's w is kept as the
reference w⁰; from the second step the loss weights move as λ ← λ · exp(η w / w⁰),
renormalised to sum to T (λ = 1 at the start, step size ``robust_step_size`` η 0.01, LibMTL's
default), and the loss is Σ_t λ_t L_t (task-specific parameters too get λ_t times their
gradient, as in LibMTL). AMP: w is of the unscaled gradients. λ, w⁰ and the accumulated squares
are in the checkpoint (resume is bit-identical). A step that draws one task group updates the
present tasks' entries (an rsbench choice). No shared-representation mode in rsbench.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import (
    GradientWeighting,
    register_weighting,
)


@register_weighting("excess-mtl")
class ExcessMTL(GradientWeighting):
    """Loss weights from gradient-based excess-risk estimates. DDP: each task's shared gradient
    is averaged over processes before the (deterministic) update, so λ is identical on every
    process; the weighted loss's backward goes through DDP's reducer."""

    rep_grad_supported = False

    def __init__(self, task_names, task_types, robust_step_size: float = 1e-2,
                 rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.robust_step_size = float(robust_step_size)
        t = len(self.task_names)
        self.register_buffer("loss_weight", torch.ones(t))
        self.register_buffer("initial_w", torch.full((t,), float("nan")))
        self.grad_sum: torch.Tensor | None = None  # (T, D), created at the first step

    def update(self, grads: torch.Tensor) -> None:
        """Move λ from this step's (P, D) unscaled shared gradients of the present tasks."""
        n_all = len(self.task_names)
        idx = self._present
        if self.grad_sum is None or self.grad_sum.shape[1] != grads.shape[1]:
            self.grad_sum = grads.new_zeros((n_all, grads.shape[1]), dtype=torch.float32)
        self.grad_sum = self.grad_sum.to(grads.device)
        g = grads.float()
        self.grad_sum[idx] += g ** 2
        w = ((g / torch.sqrt(self.grad_sum[idx] + 1e-7)) * g).sum(1).to(self.loss_weight)
        first = torch.isnan(self.initial_w[idx])
        self.initial_w[idx[first]] = w[first]
        move = ~first
        if move.any():
            lw = self.loss_weight.clone()
            lw[idx[move]] *= torch.exp(w[move] / self.initial_w[idx[move]]
                                       * self.robust_step_size)
            self.loss_weight.copy_(lw / lw.sum() * n_all)

    def backward(self, losses, shared_params, scaler, extra=None) -> None:
        def weights_from(grads, L):
            if grads is not None:  # after an AMP overflow λ stays
                self.update(grads / self._loss_scale)
            w = self.loss_weight[self._present]
            self._record(w)
            return w.tolist()

        self._weighted_loss_backward(losses, shared_params, scaler, extra, weights_from)

    def get_extra_state(self) -> dict:
        return {"grad_sum": self.grad_sum}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("grad_sum") is not None:
            self.grad_sum = state["grad_sum"].clone()
