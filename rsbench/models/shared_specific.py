"""``shared-specific``: hard parameter sharing, one shared backbone and one head per task.

The paper's "Shared-Specific Architecture" ablation (Table V, 21.34M on MSC): the whole backbone
is shared and each task only owns its classifier (or SegNet decoder for segmentation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.backbones import build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.parts import check_tasks, count, make_head, split_head_counts
from rsbench.models.registry import register_model


class SharedSpecific(MultiTaskModel):
    """One backbone for all tasks, heads per task on its last feature."""

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None):
        super().__init__(tasks)
        self.backbone = build_backbone(backbone, in_channels, weights)
        self.heads = nn.ModuleDict({t.name: make_head(t, self.backbone) for t in tasks})

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        feats = self.backbone(x)  # computed once for every requested task
        self.keep_representation(feats.final)
        return {t: self.heads[t](feats.final, feats, x.shape[-2:]) for t in tasks}

    def has_shared_representation(self) -> bool:
        """Scene (and regression) heads read only the last feature; SegNet decoders read every
        block, so a model with a segmentation task has no one shared representation."""
        return all(t.type != "segmentation" for t in self.tasks.values())

    def feature_parameters(self):
        """The shared backbone (frozen when transferring to a new dataset)."""
        return self.backbone.parameters()

    def add_task(self, task: TaskInfo, init_from: str | None = None) -> None:
        """Add a task with a new head on the shared backbone (``init_from`` copies nothing: a
        new dataset has new classes)."""
        if task.name in self.tasks:
            raise UsageError(f"the model already has a task {task.name!r}")
        device = next(self.parameters()).device
        self.heads[task.name] = make_head(task, self.backbone).to(device)
        self.tasks[task.name] = task

    def parameter_breakdown(self) -> dict[str, int]:
        out = {"shared": count(self.backbone), **split_head_counts(self.tasks, self.heads)}
        out["total"] = count(self)
        return out


@register_model("shared-specific")
def build_shared_specific(tasks: list[TaskInfo], backbone: str = "resnet34",
                          in_channels: int = 3, weights: str | None = None) -> SharedSpecific:
    """Shared-specific (Table V): one shared backbone, one head per task, losses summed."""
    return SharedSpecific(tasks, backbone=backbone, in_channels=in_channels, weights=weights)
