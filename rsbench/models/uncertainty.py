"""``uncertainty``: hard parameter sharing with losses weighted by homoscedastic uncertainty.

Kendall, Gal & Cipolla (CVPR 2018), the paper's [48] ("Uncer. Weig."): a shared backbone with
one head per task (as ``shared-specific``) and one learned s_k = log sigma_k^2 per task. The
total loss is, per task, exp(-s_k) L_k + s_k / 2 for classification and segmentation (softmax
likelihood, Kendall's eq. 10: L / sigma^2 + log sigma) and exp(-s_k) L_k / 2 + s_k / 2 for
regression (Gaussian likelihood: L / (2 sigma^2) + log sigma). s_k starts at 0 (all weights 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.parts import count
from rsbench.models.shared_specific import SharedSpecific


class UncertaintyWeighted(SharedSpecific):
    """Shared backbone + heads, losses combined with learned log-variances."""

    def __init__(self, tasks: Sequence[TaskInfo], **options):
        super().__init__(tasks, **options)
        self.log_vars = nn.ParameterDict({t.name: nn.Parameter(torch.zeros(())) for t in tasks})

    def combine_losses(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        terms = []
        for name, loss in losses.items():
            s = self.log_vars[name].to(loss.dtype)
            scale = 0.5 if self.tasks[name].type == "regression" else 1.0
            terms.append(scale * torch.exp(-s) * loss + 0.5 * s)
        return torch.stack(terms).sum()

    def add_task(self, task: TaskInfo, init_from: str | None = None) -> None:
        super().add_task(task, init_from)
        device = next(self.parameters()).device
        self.log_vars[task.name] = nn.Parameter(torch.zeros((), device=device))

    def parameter_breakdown(self) -> dict[str, int]:
        out = super().parameter_breakdown()
        total = out.pop("total")
        out["loss_weights"] = count(list(self.log_vars.values()))
        out["total"] = total
        return out


def build_uncertainty(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                      weights: str | None = None) -> UncertaintyWeighted:
    """Uncertainty weighting (Kendall et al. 2018): shared backbone, learned loss weights."""
    return UncertaintyWeighted(tasks, backbone=backbone, in_channels=in_channels, weights=weights)
