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

On TAIGA (backbone ``hsi``: its configs name no backbone) every expert is a whole HSI paper's
encoder (``rsbench.models.hsi_stages``: ``hsi-mtl``'s shared encoder and attention, three
stages) and task k's gate mixes every stage's output of the shared experts and its own, so its
decoder reads the mixed bottleneck and mixed skips; the decoders and 1×1 heads are ``hsi-mtl``'s
(one decoder per task type). Chosen here (neither CGC's paper, LibMTL nor the HSI paper covers
it): the skips are mixed with the bottleneck's gate weights; the gate reads the window pooled to
8×8; the experts keep hsi-mtl's width 128 (``width``). With TAIGA's 13 tasks the default 1 + 1
experts per task are 14 encoders (about 180M of the model's 187M parameters): lower ``width``
for a smaller model; every task's own expert runs only on the batches of that task.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.backbones import build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.hsi_stages import HsiArchitecture, hsi_settings, uses_hsi_encoder
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


class HsiCGC(HsiArchitecture):
    """CGC over the HSI encoder: shared and task-specific whole-encoder experts, a softmax gate
    per task mixing every stage's output, hsi-mtl's decoders and heads."""

    task_specific = ("task_experts", "gates", "decoders", "heads")  # shared: the shared experts

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, per_pixel: bool = False,
                 num_shared: int = 1, num_specific: int = 1, gate_pool: int = GATE_POOL, **hsi):
        super().__init__(tasks, in_channels, per_pixel, **hsi)
        check_experts("cgc", num_shared=num_shared, num_specific=num_specific,
                      gate_pool=gate_pool)

        def experts(n: int) -> nn.ModuleList:
            return nn.ModuleList([self.new_encoder() for _ in range(int(n))])

        self.shared_experts = experts(num_shared)
        self.task_experts = nn.ModuleDict({t.name: experts(num_specific) for t in tasks})
        total = int(num_shared) + int(num_specific)
        self.gates = nn.ModuleDict({t.name: SoftmaxGate(in_channels, total, int(gate_pool))
                                    for t in tasks})
        self.make_heads()
        self.last_gates: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        shared = [expert(x) for expert in self.shared_experts]  # once for all requested tasks
        feats = {}
        for t in tasks:
            stages = shared + [expert(x) for expert in self.task_experts[t]]
            weights = self.gates[t](x)
            self.last_gates[t] = weights.detach()
            feats[t] = [mix([s[j] for s in stages], weights) for j in range(len(stages[0]))]
        return self.decode(feats, tasks, x.shape[-2:])

    def parameter_breakdown(self) -> dict[str, int]:
        return {"experts": count(self.shared_experts), "task_experts": count(self.task_experts),
                "gates": count(self.gates), **self.head_counts(), "total": count(self)}


@register_model("cgc")
def build_cgc(tasks: list[TaskInfo], backbone: str | None = None, in_channels: int = 3,
              weights: str | None = None, num_shared: int = 1, num_specific: int = 1,
              gate_pool: int = GATE_POOL, per_pixel: bool | None = None,
              width: int | None = None, rates: Sequence[int] | None = None) -> CGC | HsiCGC:
    """CGC (Tang et al. 2020): shared and task-specific whole-backbone experts, a gate per task.

    ``backbone``: the benchmark's (resnet34, wrn28_4, vgg16); none (TAIGA) or ``hsi``: the HSI
    paper's encoder, whose ``width`` and Dense ASPP ``rates`` are hsi-mtl's options."""
    experts = dict(num_shared=num_shared, num_specific=num_specific, gate_pool=gate_pool)
    if uses_hsi_encoder("cgc", backbone, weights=weights, width=width, rates=rates):
        return HsiCGC(tasks, in_channels, bool(per_pixel), **experts,
                      **hsi_settings(width, rates))
    refuse_per_pixel("cgc", per_pixel)
    return CGC(tasks, backbone=backbone, in_channels=in_channels, weights=weights, **experts)


build_cgc.label = "CGC"  # the reports' name
