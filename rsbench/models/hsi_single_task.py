"""``hsi-single-task``: the single-task counterpart of ``hsi-mtl`` (Table VII): one full
``hsi-mtl`` network per variable, trained side by side with nothing shared."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, make
from rsbench.models.hsi_mtl import HsiMtl


class HsiSingleTask(HsiModel):
    """A ModuleDict of independent ``HsiMtl`` networks, each built for one task."""

    options_of = HsiMtl  # its options are HsiMtl's

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3, **options):
        super().__init__(tasks, in_channels, options.get("per_pixel", False))
        self.nets = nn.ModuleDict({t.name: HsiMtl([t], in_channels=in_channels, **options)
                                   for t in tasks})

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        out: dict[str, torch.Tensor] = {}
        for name in tasks:
            out.update(self.nets[name](x, [name]))
        return out

    def last_shared_layer(self) -> nn.Module:
        from rsbench.errors import UsageError
        raise UsageError("hsi-single-task shares no layer between tasks, so GradNorm does not "
                         "apply; use --weighting equal")

    def parameter_breakdown(self) -> dict[str, int]:
        out = {name: sum(p.numel() for p in net.parameters()) for name, net in self.nets.items()}
        out["total"] = sum(out.values())
        return out


def build(tasks: Sequence[TaskInfo], **options) -> HsiSingleTask:
    """Single-task counterpart of hsi-mtl: one full hsi-mtl network per variable (Table VII)."""
    return make(HsiSingleTask, tasks, options)
