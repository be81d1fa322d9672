"""``pcgrad``: gradient surgery (Yu et al., NeurIPS 2020, Algorithm 1).

For each task i, its shared gradient g_i is projected, against the other tasks in a random
order, onto the normal plane of every g_j it conflicts with (g_i · g_j < 0):
``g_i ← g_i − (g_i · g_j) / ||g_j||² g_j``. The update is the sum of the projected gradients.
The random orders come from the method's own generator (seeded with the run's seed,
checkpointed), so a resumed run projects in the same orders.

Every projection subtracts a multiple of some g_j, so the update is Σ_t c_t g_t; the c are
found on the Gram matrix of the gradients (identical arithmetic, no D-sized copies), which
also gives the shared-representation mode (``rep_grad``; LibMTL has none for PCGrad).
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import GradientWeighting, gram, register_weighting


@register_weighting("pcgrad")
class PCGrad(GradientWeighting):
    """Projected conflicting gradients. DDP: each task's shared-parameter gradient is averaged
    over processes before projecting (the generator is seeded alike everywhere, so every process
    projects identically); task-specific gradients are averaged by DDP's reducer."""

    def __init__(self, task_names, task_types, rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.generator = torch.Generator().manual_seed(0)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        G = gram(grads)
        n = G.shape[0]
        coef = torch.eye(n, dtype=G.dtype, device=G.device)  # row i: g_i' = coef[i] @ g
        for i in range(n):
            for j in torch.randperm(n, generator=self.generator).tolist():
                if j == i:
                    continue
                dot = coef[i] @ G[:, j]  # g_i' · g_j
                if dot < 0:
                    coef[i, j] -= dot / G[j, j].clamp_min(1e-20)
        c = coef.sum(0)
        self._record(c)
        return c

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("generator") is not None:
            self.generator.set_state(state["generator"])
