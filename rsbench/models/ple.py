"""``ple``: Progressive Layered Extraction (Tang et al., RecSys 2020), over the backbone's blocks.

Level j of the extraction is block j of the benchmark's backbone (ResNet-34: stem and four
layers; VGG-16: five conv blocks; WRN-28-4: stem and three groups), as LibMTL's ``PLE`` splits a
ResNet into its stem and layers. Each level has ``num_shared`` shared experts and
``num_specific`` experts per task. Task k's gate at level j (softmax over the shared experts
and task k's) gives task k's input to level j+1; below the last level a shared gate weighs every
expert of the level (all tasks' and the shared ones) into the shared experts' next input, as the
paper's Fig. 5 (LibMTL drops the shared gate and runs the shared experts on each task's input
instead). Gates read their level's input average-pooled to 8×8 (``gate_pool``; LibMTL flattens
the whole input). Mixing happens before the block's parameter-free pooling, so task k's SegNet
decoder unpools with the indices of its own mixed features.

Choices neither the paper nor LibMTL fixes for these benchmarks (README, Models; the configs'
``ple.*`` entries): 1 shared and 1 specific expert per task and level, gates on the pooled input.
Every task's experts run below the last level whatever task a batch is for (the shared gate
needs them). Shared parameters for the gradient weightings: everything more than one task uses,
i.e. all but the last level's task experts and task gates and the heads (LibMTL: the shared
experts only).

On TAIGA (backbone ``hsi``: its configs name no backbone) the levels are the three stages of the
HSI paper's encoder (``rsbench.models.hsi_stages``: conv block + first residual block; pooling
+ second residual block; Dense ASPP, pooling, skip layer and residual attention), each with
1 shared and 1 task expert per task, and task k's mixed output of every level is also its skip
for ``hsi-mtl``'s decoder of its type (then a 1×1 head per task). Chosen here (neither PLE's
paper, LibMTL nor the HSI paper covers it): a level is a stage of that encoder (its pooling
belongs to the stage after it, so mixing is after the stage); gates read their level's input
pooled to 8×8; the experts keep hsi-mtl's width 128 (``width``). With TAIGA's 13 tasks that is
14 copies of every stage (about 180M of the model's 189M parameters), all run on every batch
below the last level.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.backbones import Features, build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.hsi_stages import HsiArchitecture, hsi_settings, uses_hsi_encoder
from rsbench.models.moe_parts import (
    GATE_POOL,
    SoftmaxGate,
    block_modules,
    check_experts,
    count,
    mix,
    refuse_per_pixel,
)
from rsbench.models.parts import check_tasks, make_head, split_head_counts
from rsbench.models.registry import register_model


def build_levels(model: nn.Module, tasks: Sequence[TaskInfo], in_channels: int,
                 new_expert, num_shared: int, num_specific: int, gate_pool: int):
    """Give ``model`` PLE's experts and gates (shared experts, each task's experts, task gates
    per level, shared gates below the last level: in this order, which fixes the seeded
    weights); returns the first shared expert, whose blocks and channels set the levels."""
    check_experts("ple", num_shared=num_shared, num_specific=num_specific, gate_pool=gate_pool)
    s, p, pool = int(num_shared), int(num_specific), int(gate_pool)
    model.shared_experts = nn.ModuleList([new_expert() for _ in range(s)])
    model.task_experts = nn.ModuleDict(
        {t.name: nn.ModuleList([new_expert() for _ in range(p)]) for t in tasks})
    first = model.shared_experts[0]
    levels = first.num_blocks
    inputs = [in_channels, *first.channels[:-1]]  # channels each level reads
    model.task_gates = nn.ModuleDict({t.name: nn.ModuleList(
        [SoftmaxGate(inputs[j], s + p, pool) for j in range(levels)]) for t in tasks})
    model.shared_gates = nn.ModuleList([SoftmaxGate(inputs[j], s + p * len(tasks), pool)
                                        for j in range(levels - 1)])
    return first


class PLE(MultiTaskModel):
    """J extraction levels of shared and task experts with task and shared gates; heads."""

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None, num_shared: int = 1, num_specific: int = 1,
                 gate_pool: int = GATE_POOL):
        super().__init__(tasks)
        first = build_levels(self, tasks, in_channels,
                             lambda: build_backbone(backbone, in_channels, weights),
                             num_shared, num_specific, gate_pool)
        self.heads = nn.ModuleDict({t.name: make_head(t, first) for t in tasks})
        self.last_gates: dict[str, torch.Tensor] = {}  # each task's last-level weights

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        names = list(self.tasks)
        pool_of = self.shared_experts[0].transition  # parameter-free: the same for every expert
        levels = len(self.shared_gates) + 1
        shared_in, task_in = x, {t: x for t in names}
        feats = {t: Features(z=[], f=[], final=x, indices=[]) for t in tasks}
        for j in range(levels):
            last = j == levels - 1
            active = list(tasks) if last else names
            shared_out = [e.stage(j, shared_in)[1] for e in self.shared_experts]
            task_out = {t: [e.stage(j, task_in[t])[1] for e in self.task_experts[t]]
                        for t in active}
            next_in = {}
            for t in active:
                weights = self.task_gates[t][j](task_in[t])
                f = mix(shared_out + task_out[t], weights)
                next_in[t], idx = pool_of(j, f)
                if t in feats:
                    feats[t].z.append(f)
                    feats[t].f.append(f)
                    feats[t].indices.append(idx)
                if last:
                    self.last_gates[t] = weights.detach()
            if not last:
                everything = [o for t in names for o in task_out[t]] + shared_out
                shared_in = pool_of(j, mix(everything, self.shared_gates[j](shared_in)))[0]
            task_in = next_in
        out = {}
        for t in tasks:
            feats[t].final = task_in[t]
            out[t] = self.heads[t](task_in[t], feats[t], x.shape[-2:])
        return out

    def task_owned(self) -> list[nn.Module]:
        """What only one task uses: its last-level experts and gate, and its head (lower-level
        task experts and gates feed the shared gate, so every task's loss reaches them)."""
        last = len(self.shared_gates)
        owned: list[nn.Module] = [self.heads, *(g[last] for g in self.task_gates.values())]
        for experts in self.task_experts.values():
            for e in experts:
                owned += block_modules(e, last)
        return owned

    def shared_parameters(self) -> list[nn.Parameter]:
        own = {id(p) for m in self.task_owned() for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in own]

    def parameter_breakdown(self) -> dict[str, int]:
        return {"experts": count(self.shared_experts), "task_experts": count(self.task_experts),
                "gates": count(self.task_gates) + count(self.shared_gates),
                **split_head_counts(self.tasks, self.heads), "total": count(self)}


class HsiPLE(HsiArchitecture):
    """PLE over the HSI encoder's three stages: shared and task experts per stage with task and
    shared gates; every task's mixed stage outputs are its decoder's input and skips."""

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, per_pixel: bool = False,
                 num_shared: int = 1, num_specific: int = 1, gate_pool: int = GATE_POOL, **hsi):
        super().__init__(tasks, in_channels, per_pixel, **hsi)
        build_levels(self, tasks, in_channels, self.new_encoder, num_shared, num_specific,
                     gate_pool)
        self.make_heads()
        self.last_gates: dict[str, torch.Tensor] = {}  # each task's last-level weights

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        names = list(self.tasks)
        levels = len(self.shared_gates) + 1
        shared_in, task_in = x, {t: x for t in names}
        feats: dict[str, list[torch.Tensor]] = {t: [] for t in tasks}
        for j in range(levels):
            last = j == levels - 1
            active = list(tasks) if last else names
            shared_out = [e.stage(j, shared_in) for e in self.shared_experts]
            task_out = {t: [e.stage(j, task_in[t]) for e in self.task_experts[t]]
                        for t in active}
            next_in = {}
            for t in active:
                weights = self.task_gates[t][j](task_in[t])
                next_in[t] = mix(shared_out + task_out[t], weights)
                if t in feats:
                    feats[t].append(next_in[t])
                if last:
                    self.last_gates[t] = weights.detach()
            if not last:
                everything = [o for t in names for o in task_out[t]] + shared_out
                shared_in = mix(everything, self.shared_gates[j](shared_in))
            task_in = next_in
        return self.decode(feats, tasks, x.shape[-2:])

    def task_owned(self) -> list[nn.Module]:
        """What is not shared: each task's last-level experts and gate, and the decoders and
        heads (task-specific as hsi-mtl's; lower levels feed the shared gate, so every task's
        loss reaches them)."""
        last = len(self.shared_gates)
        owned: list[nn.Module] = [self.decoders, self.heads,
                                  *(g[last] for g in self.task_gates.values())]
        for experts in self.task_experts.values():
            for e in experts:
                owned += e.stage_modules(last)
        return owned

    def shared_parameters(self) -> list[nn.Parameter]:
        own = {id(p) for m in self.task_owned() for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in own]

    def parameter_breakdown(self) -> dict[str, int]:
        return {"experts": count(self.shared_experts), "task_experts": count(self.task_experts),
                "gates": count(self.task_gates) + count(self.shared_gates),
                **self.head_counts(), "total": count(self)}


@register_model("ple")
def build_ple(tasks: list[TaskInfo], backbone: str | None = None, in_channels: int = 3,
              weights: str | None = None, num_shared: int = 1, num_specific: int = 1,
              gate_pool: int = GATE_POOL, per_pixel: bool | None = None,
              width: int | None = None, rates: Sequence[int] | None = None) -> PLE | HsiPLE:
    """PLE (Tang et al. 2020): per block, shared and task experts mixed by task/shared gates.

    ``backbone``: the benchmark's (resnet34, wrn28_4, vgg16); none (TAIGA) or ``hsi``: the HSI
    paper's encoder, whose ``width`` and Dense ASPP ``rates`` are hsi-mtl's options."""
    experts = dict(num_shared=num_shared, num_specific=num_specific, gate_pool=gate_pool)
    if uses_hsi_encoder("ple", backbone, weights=weights, width=width, rates=rates):
        return HsiPLE(tasks, in_channels, bool(per_pixel), **experts,
                      **hsi_settings(width, rates))
    refuse_per_pixel("ple", per_pixel)
    return PLE(tasks, backbone=backbone, in_channels=in_channels, weights=weights, **experts)


build_ple.label = "PLE"  # the reports' name
