"""``equal``: the plain sum of the task losses (the MTLN paper's eq. 5)."""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import LossWeighting, register_weighting


@register_weighting("equal")
class Equal(LossWeighting):
    """Σ_t L_t: every weight 1. DDP: nothing beyond DDP's own gradient averaging."""

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self._record(torch.ones(int(mask.sum())))
        return losses.sum()  # a task without a loss this step adds 0
