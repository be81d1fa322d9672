"""``single-task``: the paper's Baseline, one independent network per task trained from scratch.

Each task gets its own backbone and head (Table III "Baseline": three ResNet-34s, 63.92M on MSC;
Table IV: a VGG-16 for scenes plus a SegNet for pixels). A task's images only touch its network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.backbones import build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.parts import check_tasks, count, make_head, split_head_counts
from rsbench.models.registry import register_model


class TaskNetwork(nn.Module):
    """One task's whole network: a backbone and the task's head."""

    def __init__(self, task: TaskInfo, backbone: str, in_channels: int, weights: str | None):
        super().__init__()
        self.backbone = build_backbone(backbone, in_channels, weights)
        self.head = make_head(task, self.backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        return self.head(feats.final, feats, x.shape[-2:])


class SingleTask(MultiTaskModel):
    """Independent per-task networks behind the multitask interface."""

    task_specific = ("networks",)  # nothing is shared

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None):
        super().__init__(tasks)
        self.networks = nn.ModuleDict({t.name: TaskNetwork(t, backbone, in_channels, weights)
                                       for t in tasks})

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        return {t: self.networks[t](x) for t in tasks}

    def feature_parameters(self):
        """The feature extractors (every task's backbone), frozen for linear probing (Table VI)."""
        for net in self.networks.values():
            yield from net.backbone.parameters()

    def parameter_breakdown(self) -> dict[str, int]:
        heads = nn.ModuleDict({n: net.head for n, net in self.networks.items()})
        out = {"networks": sum(count(net.backbone) for net in self.networks.values()),
               **split_head_counts(self.tasks, heads)}
        out["total"] = count(self)
        return out


@register_model("single-task")
def build_single_task(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                      weights: str | None = None) -> SingleTask:
    """Baseline (Tables III-V): one independent network per task, trained from scratch."""
    return SingleTask(tasks, backbone=backbone, in_channels=in_channels, weights=weights)
