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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.backbones import Features, build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
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


class PLE(MultiTaskModel):
    """J extraction levels of shared and task experts with task and shared gates; heads."""

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None, num_shared: int = 1, num_specific: int = 1,
                 gate_pool: int = GATE_POOL):
        super().__init__(tasks)
        check_experts("ple", num_shared=num_shared, num_specific=num_specific,
                      gate_pool=gate_pool)

        def experts(n: int) -> nn.ModuleList:
            return nn.ModuleList([build_backbone(backbone, in_channels, weights)
                                  for _ in range(int(n))])

        s, p, pool = int(num_shared), int(num_specific), int(gate_pool)
        self.shared_experts = experts(s)
        self.task_experts = nn.ModuleDict({t.name: experts(p) for t in tasks})
        first = self.shared_experts[0]
        levels = first.num_blocks
        inputs = [in_channels, *first.channels[:-1]]  # channels each level reads
        self.task_gates = nn.ModuleDict({t.name: nn.ModuleList(
            [SoftmaxGate(inputs[j], s + p, pool) for j in range(levels)]) for t in tasks})
        self.shared_gates = nn.ModuleList([SoftmaxGate(inputs[j], s + p * len(tasks), pool)
                                           for j in range(levels - 1)])
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


@register_model("ple")
def build_ple(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
              weights: str | None = None, num_shared: int = 1, num_specific: int = 1,
              gate_pool: int = GATE_POOL, per_pixel: bool | None = None) -> PLE:
    """PLE (Tang et al. 2020): per block, shared and task experts mixed by task/shared gates."""
    refuse_per_pixel("ple", per_pixel)
    return PLE(tasks, backbone=backbone, in_channels=in_channels, weights=weights,
               num_shared=num_shared, num_specific=num_specific, gate_pool=gate_pool)
