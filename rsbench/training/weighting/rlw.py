"""``rlw``: Random Loss Weighting (Lin et al. 2021, "Reasonable effectiveness of random
weighting", TMLR 2022): every step the weights are ``softmax(λ)`` with λ drawn from N(0, I).

Draws come from the method's own generator, seeded with the run's seed and checkpointed, so a
resumed run draws the same weights as an uninterrupted one.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import LossWeighting, register_weighting


@register_weighting("rlw")
class RLW(LossWeighting):
    """Softmax of normal draws per step. DDP: every process seeds the same generator, so all
    draw the same weights; nothing beyond DDP's own gradient averaging is reduced."""

    def __init__(self, task_names, task_types):
        super().__init__(task_names, task_types)
        self.generator = torch.Generator().manual_seed(0)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lam = torch.randn(len(self.task_names), generator=self.generator)
        # softmax over the tasks that have a loss this step (all of them, unless a step draws
        # one task group)
        w = torch.softmax(lam.masked_fill(~mask.cpu(), float("-inf")), dim=0).to(losses.device)
        self._record(w[mask.cpu()])
        return (w * losses).sum()

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("generator") is not None:
            self.generator.set_state(state["generator"])
