"""``cross-stitch``: one network per task joined by cross-stitch units after every block.

Misra et al. (CVPR 2016), the paper's [47]: task k's next-block input is a learned linear mix of
all networks' block outputs, x~_k = sum_l alpha_kl x_l (one scalar per task pair and block),
started at alpha_kk = 0.9 and the rest 0.1 shared equally, as Misra et al. Because the networks
exchange features, every network runs on the images of the task asked for (MSC) and all of them
get gradients from it; only the asked task's head is evaluated. Misra et al. train alpha with
a learning rate 10^3 times the base one; alpha is stored divided by ``lr_scale`` so that Adam (the
paper's optimiser), whose steps do not depend on the gradient's scale, moves it ``lr_scale``
times faster. The parameter count is the Baseline's plus J K^2 scalars (Table III: 63.92M).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.backbones import Features, build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.parts import check_tasks, count, make_head, split_head_counts
from rsbench.models.registry import register_model


class CrossStitchUnit(nn.Module):
    """Mixes K same-shaped features with a learned K×K matrix alpha (rows: receiving task)."""

    def __init__(self, tasks: int, self_weight: float = 0.9, lr_scale: float = 1000.0):
        super().__init__()
        other = (1.0 - self_weight) / (tasks - 1) if tasks > 1 else 0.0
        alpha = torch.full((tasks, tasks), other)
        alpha.fill_diagonal_(self_weight if tasks > 1 else 1.0)
        self.lr_scale = lr_scale
        self.scaled_alpha = nn.Parameter(alpha / lr_scale)

    @property
    def alpha(self) -> torch.Tensor:
        return self.scaled_alpha * self.lr_scale

    def forward(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        stacked = torch.stack(list(xs))  # K × B × C × H × W
        mixed = torch.einsum("kl,l...->k...", self.alpha.to(stacked.dtype), stacked)
        return list(mixed.unbind(0))


class CrossStitch(MultiTaskModel):
    """K backbones (one per task) + a cross-stitch unit after each of the J blocks + heads."""

    # every task's loss reaches every network through the units: all but the heads are shared
    task_specific = ("heads",)

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None):
        super().__init__(tasks)
        self.networks = nn.ModuleDict({t.name: build_backbone(backbone, in_channels, weights)
                                       for t in tasks})
        first = next(iter(self.networks.values()))
        self.units = nn.ModuleList([CrossStitchUnit(len(tasks)) for _ in first.channels])
        self.heads = nn.ModuleDict({t.name: make_head(t, first) for t in tasks})

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        names = list(self.networks)
        nets = [self.networks[n] for n in names]
        feats = [Features(z=[], f=[], final=x, indices=[]) for _ in nets]
        inputs = [x] * len(nets)
        for j, unit in enumerate(self.units):
            outs = []
            for net, inp, feat in zip(nets, inputs, feats):
                z, f = net.stage(j, inp)
                nxt, idx = net.transition(j, f)
                feat.z.append(z)
                feat.f.append(f)
                feat.indices.append(idx)
                outs.append(nxt)
            inputs = unit(outs)
        results = {}
        for t in tasks:
            k = names.index(t)
            feats[k].final = inputs[k]
            results[t] = self.heads[t](inputs[k], feats[k], x.shape[-2:])
        return results

    def parameter_breakdown(self) -> dict[str, int]:
        out = {"networks": count(self.networks), **split_head_counts(self.tasks, self.heads),
               "cross_stitch": count(self.units)}
        out["total"] = count(self)
        return out


@register_model("cross-stitch")
def build_cross_stitch(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                       weights: str | None = None) -> CrossStitch:
    """Cross-stitch (Misra et al. 2016): a network per task, cross-stitch units after each block."""
    return CrossStitch(tasks, backbone=backbone, in_channels=in_channels, weights=weights)
