"""``cgc``: Customized Gate Control (Tang et al., RecSys 2020, the one-level PLE), as LibMTL's
``CGC``.

Experts are whole backbones of the benchmark (ResNet-34 on MSC, WRN-28-4 on mini-MSC, VGG-16 on
PSC), as LibMTL's: ``num_shared`` experts shared by every task and ``num_specific`` experts of
each task's own. Task k's gate g_k(x) = softmax(W_k x) weighs the shared experts and task k's
experts only (the paper's eq. 3-4), and task k's head reads their mix.

Choices neither the paper nor LibMTL fixes for these benchmarks (README, Models; the configs'
``cgc.*`` entries): 1 shared and 1 specific expert per task (LibMTL requires the user to give
both); the gate reads the input image average-pooled to 8×8 (``gate_pool``; LibMTL flattens the
whole image); segmentation decoders upsample bilinearly (the experts pool at different
positions). Shared parameters for the gradient weightings: the shared experts (LibMTL's).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.backbones import build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.moe_parts import (
    GATE_POOL,
    SoftmaxGate,
    check_experts,
    count,
    mix,
    mixed_features,
    refuse_per_pixel,
)
from rsbench.models.parts import check_tasks, make_head, split_head_counts
from rsbench.models.registry import register_model


class CGC(MultiTaskModel):
    """Shared experts + each task's own experts, one softmax gate and one head per task."""

    task_specific = ("task_experts", "gates", "heads")  # shared: the shared experts

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None, num_shared: int = 1, num_specific: int = 1,
                 gate_pool: int = GATE_POOL):
        super().__init__(tasks)
        check_experts("cgc", num_shared=num_shared, num_specific=num_specific,
                      gate_pool=gate_pool)

        def experts(n: int) -> nn.ModuleList:
            return nn.ModuleList([build_backbone(backbone, in_channels, weights)
                                  for _ in range(int(n))])

        self.shared_experts = experts(num_shared)
        self.task_experts = nn.ModuleDict({t.name: experts(num_specific) for t in tasks})
        total = int(num_shared) + int(num_specific)
        self.gates = nn.ModuleDict({t.name: SoftmaxGate(in_channels, total, int(gate_pool))
                                    for t in tasks})
        self.heads = nn.ModuleDict({t.name: make_head(t, self.shared_experts[0])
                                    for t in tasks})
        self.last_gates: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        shared = [expert(x) for expert in self.shared_experts]  # once for all requested tasks
        out = {}
        for t in tasks:
            feats = shared + [expert(x) for expert in self.task_experts[t]]
            weights = self.gates[t](x)
            self.last_gates[t] = weights.detach()
            h = mix([f.final for f in feats], weights)
            out[t] = self.heads[t](h, mixed_features(feats[0], h), x.shape[-2:])
        return out

    def parameter_breakdown(self) -> dict[str, int]:
        return {"experts": count(self.shared_experts), "task_experts": count(self.task_experts),
                "gates": count(self.gates), **split_head_counts(self.tasks, self.heads),
                "total": count(self)}


@register_model("cgc")
def build_cgc(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
              weights: str | None = None, num_shared: int = 1, num_specific: int = 1,
              gate_pool: int = GATE_POOL, per_pixel: bool | None = None) -> CGC:
    """CGC (Tang et al. 2020): shared and task-specific whole-backbone experts, a gate per task."""
    refuse_per_pixel("cgc", per_pixel)
    return CGC(tasks, backbone=backbone, in_channels=in_channels, weights=weights,
               num_shared=num_shared, num_specific=num_specific, gate_pool=gate_pool)
