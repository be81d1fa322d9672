"""``mmoe``: Multi-gate Mixture-of-Experts (Ma et al., KDD 2018), as LibMTL's ``MMoE``.

E experts shared by every task, each one whole backbone of the benchmark (ResNet-34 on MSC,
WRN-28-4 on mini-MSC, VGG-16 on PSC), as LibMTL's experts are whole encoders; each task k has a
gate g_k(x) = softmax(W_k x) over the experts (the paper's eq. 5) and its head reads
f_k(x) = sum_e g_k(x)_e · expert_e(x) (eq. 6), the mix of the experts' last features.

Choices neither the paper nor LibMTL fixes for these benchmarks (README, Models; the configs'
``mmoe.*`` entries): ``num_experts`` = 4 (LibMTL requires the user to give it; 4 is also
DSelect-k's default here, so the two mixtures are compared on the same experts); the gate reads
the input image average-pooled to 8×8 (``gate_pool``; LibMTL flattens the whole image); the
SegNet decoder of a segmentation task upsamples bilinearly (the experts pool at different
positions, so there are no pooling indices to unpool with).

On TAIGA (backbone ``hsi``, the benchmark's: its configs name no backbone) each expert is a whole
HSI paper's encoder (``rsbench.models.hsi_stages``: the three stages of ``hsi-mtl``'s shared
encoder, attention included), and task k's gate mixes every stage's output, so its decoder
reads the mixed bottleneck and mixed skips; the decoders and 1×1 heads are ``hsi-mtl``'s (one
decoder per task type, Section III-E). What neither the MMoE paper, LibMTL nor the HSI paper
fixes there, and is chosen here: the experts are the encoder up to its attention (the part
``hsi-mtl`` shares), the skips are mixed with the same gate weights as the bottleneck (a task
sees one mixture at every scale), the gate reads the window pooled to 8×8 as on the images,
and the experts keep ``hsi-mtl``'s width 128 (``width``; 4 experts ≈ 51.4M of the 59.0M on
TAIGA's 13 tasks).
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


class MMoE(MultiTaskModel):
    """Shared experts (whole backbones), one softmax gate and one head per task."""

    task_specific = ("gates", "heads")  # shared: the experts

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None, num_experts: int = 4, gate_pool: int = GATE_POOL):
        super().__init__(tasks)
        check_experts("mmoe", num_experts=num_experts, gate_pool=gate_pool)
        self.experts = nn.ModuleList([build_backbone(backbone, in_channels, weights)
                                      for _ in range(int(num_experts))])
        self.gates = nn.ModuleDict({t.name: self.make_gate(in_channels, int(num_experts),
                                                           int(gate_pool)) for t in tasks})
        self.heads = nn.ModuleDict({t.name: make_head(t, self.experts[0]) for t in tasks})
        self.last_gates: dict[str, torch.Tensor] = {}  # each task's expert weights, last batch

    def make_gate(self, channels: int, experts: int, pool: int) -> nn.Module:
        return SoftmaxGate(channels, experts, pool)

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        feats = [expert(x) for expert in self.experts]  # once for every requested task
        out = {}
        for t in tasks:
            weights = self.gates[t](x)
            self.last_gates[t] = weights.detach()
            h = mix([f.final for f in feats], weights)
            out[t] = self.heads[t](h, mixed_features(feats[0], h), x.shape[-2:])
        return out

    def parameter_breakdown(self) -> dict[str, int]:
        return {"experts": count(self.experts), "gates": count(self.gates),
                **split_head_counts(self.tasks, self.heads), "total": count(self)}


class HsiMMoE(HsiArchitecture):
    """MMoE over the HSI encoder: shared whole-encoder experts, a softmax gate per task mixing
    every stage's output, hsi-mtl's decoders and heads."""

    task_specific = ("gates", "decoders", "heads")  # shared: the experts
    model_name = "mmoe"

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, per_pixel: bool = False,
                 num_experts: int = 4, gate_pool: int = GATE_POOL, **hsi):
        super().__init__(tasks, in_channels, per_pixel, **hsi)
        check_experts(self.model_name, num_experts=num_experts, gate_pool=gate_pool)
        self.experts = nn.ModuleList([self.new_encoder() for _ in range(int(num_experts))])
        self.gates = nn.ModuleDict({t.name: self.make_gate(in_channels, int(num_experts),
                                                           int(gate_pool)) for t in tasks})
        self.make_heads()
        self.last_gates: dict[str, torch.Tensor] = {}

    def make_gate(self, channels: int, experts: int, pool: int) -> nn.Module:
        return SoftmaxGate(channels, experts, pool)

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        stages = [expert(x) for expert in self.experts]  # once for every requested task
        feats = {}
        for t in tasks:
            weights = self.gates[t](x)
            self.last_gates[t] = weights.detach()
            feats[t] = [mix([s[j] for s in stages], weights) for j in range(len(stages[0]))]
        return self.decode(feats, tasks, x.shape[-2:])

    def parameter_breakdown(self) -> dict[str, int]:
        return {"experts": count(self.experts), "gates": count(self.gates),
                **self.head_counts(), "total": count(self)}


@register_model("mmoe")
def build_mmoe(tasks: list[TaskInfo], backbone: str | None = None, in_channels: int = 3,
               weights: str | None = None, num_experts: int = 4, gate_pool: int = GATE_POOL,
               per_pixel: bool | None = None, width: int | None = None,
               rates: Sequence[int] | None = None) -> MMoE | HsiMMoE:
    """MMoE (Ma et al. 2018): whole-backbone experts shared by all tasks, a softmax gate each.

    ``backbone``: the benchmark's (resnet34, wrn28_4, vgg16); none (TAIGA) or ``hsi``: the HSI
    paper's encoder, whose ``width`` and Dense ASPP ``rates`` are hsi-mtl's options."""
    if uses_hsi_encoder("mmoe", backbone, weights=weights, width=width, rates=rates):
        return HsiMMoE(tasks, in_channels, bool(per_pixel), num_experts=num_experts,
                       gate_pool=gate_pool, **hsi_settings(width, rates))
    refuse_per_pixel("mmoe", per_pixel)
    return MMoE(tasks, backbone=backbone, in_channels=in_channels, weights=weights,
                num_experts=num_experts, gate_pool=gate_pool)


build_mmoe.label = "MMoE"  # the reports' name
