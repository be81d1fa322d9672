"""``graddrop``: Gradient Sign Dropout (Chen et al., "Just Pick a Sign", NeurIPS 2020, Alg. 1).

Per gradient element, the sign purity ``P = ½ (1 + Σ_t ∇_t / Σ_t |∇_t|)`` (1e-7 added below, as
LibMTL) decides, against a uniform draw U, which sign survives: task t keeps its element where
``(P > U and ∇_t > 0) or (P < U and ∇_t < 0)``; the update is ``Σ_t (ℓ + (1 − ℓ) M_t) g_t``
with leak ℓ = 0 (LibMTL's default; the paper's pure multitask setting; the authors' leak is
per task, one value here).

The paper places GradDrop on a shared activation A and, for tasks fed different batches,
multiplies each ∇_t by sign(A) and sums over the batch before forming P: that is
``rep_grad=True`` (LibMTL's only mode), for models with a shared representation. The default
applies the same rule to the gradients of the shared parameters (each parameter element a unit,
no batch or sign(A)), so that GradDrop runs with every model, like the other methods: an
rsbench choice the paper does not make (LibMTL refuses this mode). The draws come from the
method's own generator (seeded with the run's seed, checkpointed), on the CPU.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import GradientWeighting, register_weighting


@register_weighting("graddrop")
class GradDrop(GradientWeighting):
    """Random sign selection per gradient element. DDP: each task's shared gradient (rep mode:
    its batch-summed signed representation gradient) is averaged over processes before P is
    formed, and the generator is seeded alike everywhere, so every process keeps the same
    elements; task-specific gradients by DDP's reducer."""

    def __init__(self, task_names, task_types, leak: float = 0.0, rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.leak = float(leak)
        self.generator = torch.Generator().manual_seed(0)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def keep_mask(self, G: torch.Tensor) -> torch.Tensor:
        """(P, D) signed gradients -> the (P, D) factor ``ℓ + (1 − ℓ) M``."""
        G = G.float() / self._loss_scale
        purity = 0.5 * (1 + G.sum(0) / (G.abs().sum(0) + 1e-7))
        u = torch.rand(purity.shape, generator=self.generator).to(purity.device)
        M = ((purity > u) & (G > 0)) | ((purity < u) & (G < 0))
        return self.leak + (1 - self.leak) * M.float()

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(grads).all():
            return grads.sum(0)  # AMP overflow: the scaler skips
        return (self.keep_mask(grads) * grads).sum(0).to(grads.dtype)

    def representation_update(self, per, reps, losses):
        from rsbench.training.weighting.representation import batch_summed

        signed = batch_summed([g * r.detach().sign() for g, r in zip(per, reps)])
        if not torch.isfinite(signed).all():
            return list(per)
        keep = self.keep_mask(signed)
        return [g * k.view(g.shape[1:]).to(g) for g, k in zip(per, keep)]

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("generator") is not None:
            self.generator.set_state(state["generator"])
