"""``baseline-attention``: single-task networks with the MTLN attention modules and extractors.

The paper's "Baseline+Attention" ablation (Table V: 71.85M on MSC, three times shared branch +
scene classifier + attention modules + extractors): each task trains its own one-task MTLN, so
nothing is shared between tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.mtln import MTLN
from rsbench.models.parts import check_tasks, count
from rsbench.models.registry import register_model


class BaselineAttention(MultiTaskModel):
    """One independent single-task MTLN per task."""

    task_specific = ("networks",)  # nothing is shared

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None):
        super().__init__(tasks)
        self.networks = nn.ModuleDict({
            t.name: MTLN([t], backbone=backbone, in_channels=in_channels, weights=weights)
            for t in tasks})

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        return {t: self.networks[t](x, [t])[t] for t in tasks}

    def parameter_breakdown(self) -> dict[str, int]:
        parts = [net.parameter_breakdown() for net in self.networks.values()]
        out = {"networks": sum(p["shared"] for p in parts)}
        for key in ("scene_classifier", "pixel_classifier", "extractors"):
            if any(key in p for p in parts):
                out[key] = sum(p.get(key, 0) for p in parts)
        out["attention_per_task"] = round(sum(p["attention_per_task"] for p in parts)
                                          / len(parts))
        out["total"] = count(self)
        return out


@register_model("baseline-attention")
def build_baseline_attention(tasks: list[TaskInfo], backbone: str = "resnet34",
                             in_channels: int = 3, weights: str | None = None
                             ) -> BaselineAttention:
    """Baseline+Attention (Table V): a separate one-task MTLN (attention, extractors) per task."""
    return BaselineAttention(tasks, backbone=backbone, in_channels=in_channels, weights=weights)
