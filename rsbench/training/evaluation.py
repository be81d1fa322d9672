"""Scoring a model on one split: every task's metric meter, each DDP rank a slice, sums reduced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rsbench.datasets.format.reader import Dataset as BuiltDataset
from rsbench.progress import progress
from rsbench.training.batchnorm import keep_frozen_bn_eval
from rsbench.training.config import resolve, task_settings
from rsbench.training.data import EpochBatches, TaskGroup, make_loader, make_reader
from rsbench.training.device import autocast
from rsbench.training.distributed import DistInfo, all_reduce_sum
from rsbench.training.metrics import METRICS


@dataclass
class Evaluator:
    """What scoring needs besides the model: the dataset, the tasks and where to compute."""

    cfg: Mapping[str, Any]
    data: BuiltDataset
    data_path: str
    groups: Sequence[TaskGroup]
    types: Mapping[str, str]
    device: torch.device
    dist: DistInfo
    amp: torch.dtype | None = None
    workers: int = 0

    def meters(self) -> dict[str, Any]:
        """A fresh metric meter per task (the config's metric for the task's type)."""
        meters = {}
        for g in self.groups:
            for t in g.tasks:
                spec = self.data.task(t)
                kind = task_settings(self.cfg, t, self.types[t]).get("metric", self.types[t])
                cls = METRICS[kind] if kind in METRICS else resolve(kind)
                n_out = len(spec["target"]) if isinstance(spec.get("target"), list) else 1
                meters[t] = cls(spec.get("classes") or [], device=self.device,
                                num_outputs=n_out, spec=spec)
        return meters

    @torch.no_grad()
    def __call__(self, model: nn.Module, prep, split: str, plot_dir: Path | None = None,
                 title: str = "{task}") -> dict[str, dict]:
        """Metrics of every task on ``split``; confusion PNGs into ``plot_dir`` when given
        (``title`` is formatted with the task's name)."""
        model.eval()
        meters = self.meters()
        usage = getattr(model, "evaluation_usage", None)  # DEN: share of filters its choice uses
        if callable(usage):
            usage(reset=True)
        bs = int(self.cfg.get("eval_batch_size") or self.cfg["batch_size"])
        for gi, g in enumerate(self.groups):
            rows = self.data.rows(g.tasks[0], split)
            s = EpochBatches(rows, bs * self.dist.world, seed=0, group=gi, shuffle=False,
                             drop_last=False, rank=self.dist.rank, world=self.dist.world)
            loader = make_loader(make_reader(self.cfg, self.data_path, g.tasks), s,
                                 workers=min(self.workers, 2),
                                 pin_memory=self.device.type == "cuda")
            batches = progress(loader, total=len(s), desc=f"{split} {'+'.join(g.tasks)}") \
                if self.dist.main else loader
            for b in batches:
                if not len(b["image"]):
                    continue
                x, targets = prep(b, train=False)
                with autocast(self.device, self.amp):
                    out = model(x, tasks=g.tasks)
                for t in g.tasks:
                    meters[t].update(out[t].float(), targets[t])
        results = {}
        used = usage(reset=True) if callable(usage) else {}
        for t, m in meters.items():
            all_reduce_sum(m.state, self.dist)
            results[t] = m.compute()
            if callable(usage):  # every rank reduces, even one that had no batch of t
                u = used.get(t, torch.zeros(2, dtype=torch.double, device=self.device))
                all_reduce_sum(u, self.dist)
                if u[1] > 0:
                    results[t]["filters_used"] = float(u[0] / u[1])
            if plot_dir is not None and self.dist.main:
                m.plot(Path(plot_dir) / f"confusion_{t}.png", title.format(task=t))
        model.train()
        keep_frozen_bn_eval(model)
        return results
