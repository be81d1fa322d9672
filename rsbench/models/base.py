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
    """Base class: subclasses implement ``forward(x, tasks)``. How the task losses are combined
    is the run's weighting (``rsbench.training.weighting``), not the model's."""

    #: attributes holding per-task submodules (not shared between tasks)
    task_specific: tuple[str, ...] = ("heads",)

    def __init__(self, tasks: Sequence[TaskInfo]):
        super().__init__()
        self.tasks = {t.name: t for t in tasks}

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters more than one task uses (LibMTL's ``get_share_params``): everything outside
        the submodules named in ``task_specific``. Gradient-combining weightings (PCGrad, CAGrad,
        MGDA) combine the task gradients of these; the others get their tasks' own gradients."""
        skip = {id(p) for name in self.task_specific if getattr(self, name, None) is not None
                for p in getattr(self, name).parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    def has_shared_representation(self) -> bool:
        """Whether the heads read one shared feature map through which every shared parameter
        reaches every loss (the gradient weightings' ``rep_grad`` mode); models that have one
        call :meth:`keep_representation` in ``forward``."""
        return False

    def shared_representation(self) -> torch.Tensor | None:
        """That feature map from the last forward call with gradients enabled (else None)."""
        return self.__dict__.get("_shared_representation")

    def keep_representation(self, rep: torch.Tensor) -> torch.Tensor:
        """Remember ``rep`` as the shared representation of this forward call (training only);
        returns it unchanged."""
        self.__dict__["_shared_representation"] = rep if torch.is_grad_enabled() else None
        return rep

    def feature_parameters(self) -> list[nn.Parameter]:
        """The feature extractor that ``--frozen`` fixes (Table VI); default: the shared ones."""
        return self.shared_parameters()

    def parameter_breakdown(self) -> dict[str, int]:
        """Parameters per component (Table II rows); default: everything is 'total'."""
        return {"total": sum(p.numel() for p in self.parameters())}
