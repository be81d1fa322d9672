"""``pcgrad``: gradient surgery (Yu et al., NeurIPS 2020, Algorithm 1).

For each task i, its shared gradient g_i is projected, against the other tasks in a random
order, onto the normal plane of every g_j it conflicts with (g_i · g_j < 0):
``g_i ← g_i − (g_i · g_j) / ||g_j||² g_j``. The update is the sum of the projected gradients.
The random orders come from the method's own generator (seeded with the run's seed,
checkpointed), so a resumed run projects in the same orders.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import GradientWeighting, register_weighting


@register_weighting("pcgrad")
class PCGrad(GradientWeighting):
    """Projected conflicting gradients. DDP: each task's shared-parameter gradient is averaged
    over processes before projecting (the generator is seeded alike everywhere, so every process
    projects identically); task-specific gradients are averaged by DDP's reducer."""

    def __init__(self, task_names, task_types):
        super().__init__(task_names, task_types)
        self.generator = torch.Generator().manual_seed(0)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        g = grads.double()
        projected = g.clone()
        n = g.shape[0]
        for i in range(n):
            for j in torch.randperm(n, generator=self.generator).tolist():
                if j == i:
                    continue
                dot = projected[i] @ g[j]
                if dot < 0:
                    projected[i] -= dot / (g[j] @ g[j]).clamp_min(1e-20) * g[j]
        return projected.sum(0).to(grads.dtype)

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("generator") is not None:
            self.generator.set_state(state["generator"])
