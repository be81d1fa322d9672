"""The contract every rsbench model follows, so one runner trains them all.

A model is built from the benchmark's tasks and returns one output per requested task:
``model(x, tasks=["merced"]) -> {"merced": logits}``. MSC calls it once per task batch; PSC asks
for both tasks of the same images in one call, so the shared branch runs once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TaskInfo:
    """What a model needs to know about one task."""

    name: str
    type: str  # "classification" | "segmentation" | "regression"
    num_outputs: int  # classes (segmentation: including class 0 = unlabelled) or 1 (regression)


class MultiTaskModel(nn.Module):
    """Base class: subclasses implement ``forward(x, tasks)``; losses are summed (eq. 5)."""

    def __init__(self, tasks: Sequence[TaskInfo]):
        super().__init__()
        self.tasks = {t.name: t for t in tasks}

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def combine_losses(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Total training loss from per-task losses; the paper's eq. 5 is the plain sum."""
        return torch.stack(list(losses.values())).sum()

    def parameter_breakdown(self) -> dict[str, int]:
        """Parameters per component (Table II rows); default: everything is 'total'."""
        return {"total": sum(p.numel() for p in self.parameters())}
