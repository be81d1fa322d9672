"""``hsi-single-task``: the single-task counterpart of ``hsi-mtl`` (HSI paper, Tables VI-VII):
independent ``hsi-mtl`` networks trained side by side with nothing shared.

How we read the paper's count (Table VII: 37.32M against the multitask model's 19.68M, FLOPs
78.14G against 41.79G, both about 1.9×): one network per task *type* — a classification network
for the 3 categorical variables and a regression network for the 10 continuous ones, each the
full encoder with its one decoder path. Thirteen networks (one per variable) would cost about
13× the multitask model, not 1.9×. ``split="type"`` (default) builds that reading;
``split="variable"`` builds one network per variable.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, make, path_of
from rsbench.models.hsi_mtl import HsiMtl
from rsbench.models.registry import register_model

SPLITS = ("type", "variable")


class HsiSingleTask(HsiModel):
    """A ModuleDict of independent ``HsiMtl`` networks: one per task type (``split="type"``)
    or one per variable (``split="variable"``); every other option is HsiMtl's."""

    # no network serves every task (tasks of one type share one with split="type")
    task_specific = ("nets",)

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3, split: str = "type",
                 **options):
        super().__init__(tasks, in_channels, options.get("per_pixel", False))
        if split not in SPLITS:
            raise UsageError(f"hsi-single-task option split={split!r}: choose one of "
                             f"{', '.join(SPLITS)}")
        self.split = split
        groups: dict[str, list[TaskInfo]] = {}
        for t in tasks:
            groups.setdefault(path_of(t) if split == "type" else t.name, []).append(t)
        self.net_of = {t.name: key for key, group in groups.items() for t in group}
        self.nets = nn.ModuleDict({key: HsiMtl(group, in_channels=in_channels, **options)
                                   for key, group in groups.items()})

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        wanted: dict[str, list[str]] = {}
        for name in tasks:
            wanted.setdefault(self.net_of[name], []).append(name)
        out: dict[str, torch.Tensor] = {}
        for key, names in wanted.items():
            out.update(self.nets[key](x, names))
        return {name: out[name] for name in tasks}

    def last_shared_layer(self) -> nn.Module:
        raise UsageError("hsi-single-task shares no layer between tasks, so GradNorm does not "
                         "apply; choose another --weighting")

    def parameter_breakdown(self) -> dict[str, int]:
        out = {name: sum(p.numel() for p in net.parameters()) for name, net in self.nets.items()}
        out["total"] = sum(out.values())
        return out


def _options(tasks: Sequence[TaskInfo], **options) -> None:
    """Stand-in whose signature lists the options hsi-single-task takes (for option checks)."""


_params = list(inspect.signature(HsiMtl).parameters.values())
_options.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    _params + [inspect.Parameter("split", inspect.Parameter.KEYWORD_ONLY, default="type")])
HsiSingleTask.options_of = _options  # type: ignore[attr-defined]


@register_model("hsi-single-task")
def build(tasks: Sequence[TaskInfo], **options) -> HsiSingleTask:
    """Single-task counterpart of hsi-mtl: one hsi-mtl network per task type (Table VII)."""
    return make(HsiSingleTask, tasks, options)
