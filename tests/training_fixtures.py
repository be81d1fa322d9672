"""Tiny synthetic MSC-like and PSC-like datasets (written with DatasetWriter) and a tiny model.

Images are 32×32 (configurable) with a class-dependent mean colour plus noise, so a small network
learns them in a few steps; PSC-like masks paint the image's scene class over most pixels, a
second class in a band and 0 (unlabelled) in a corner.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from rsbench.datasets.format.manifest import TaskSpec
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.models.base import MultiTaskModel, TaskInfo

PALETTE = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40],
                    [200, 40, 200], [40, 200, 200], [120, 120, 120], [240, 240, 240]])


def _image(rng: np.random.Generator, cls: int, size: int) -> np.ndarray:
    img = PALETTE[cls % len(PALETTE)][None, None, :] + rng.normal(0, 25, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_msc(out: Path, *, name: str = "mini-msc", tasks=(("merced", 3), ("aid", 4), ("nwpu", 2)),
              per_class: int = 10, size: int = 32, seed: int = 0) -> Path:
    """MSC layout: one row group per task, labels in ``label``, 80/20 train/test split."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(out, builder="test-msc", params={"seed": seed})
    specs = []
    for task, ncls in tasks:
        pw = w.part_writer(task)
        for c in range(ncls):
            for i in range(per_class):
                split = "test" if i % 5 == 4 else "train"
                pw.append({"task": task, "label": c, "split": split},
                          image=_image(rng, c + (1 if task != tasks[0][0] else 0), size))
        pw.close()
        specs.append(TaskSpec(task, "classification", rows=task, target="label",
                              classes=[f"{task}_c{c}" for c in range(ncls)]))
    keys = [t for t, _ in tasks]
    w.finalize(w.load_index(keys), keys=keys, name=name, tasks=specs, sources=[])
    return Path(out)


def write_psc(out: Path, *, name: str = "psc5", classes: int = 3, per_class: int = 8,
              size: int = 32, seed: int = 0, colors: list | None = None) -> Path:
    """PSC layout: rows "psc" carry a scene ``label`` and a ``mask`` (0 = unlabelled);
    ``colors`` (one RGB per mask class, unlabelled first) go into the manifest."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(out, builder="test-psc", params={"seed": seed})
    pw = w.part_writer("psc")
    for c in range(classes):
        for i in range(per_class):
            img = _image(rng, c, size)
            mask = np.full((size, size), c + 1, np.uint8)
            other = (c + 1) % classes
            img[: size // 4] = PALETTE[other]
            mask[: size // 4] = other + 1
            img[-4:, -4:] = 0
            mask[-4:, -4:] = 0
            pw.append({"task": "psc", "label": c, "split": "test" if i % 4 == 3 else "train"},
                      image=img, mask=mask)
    pw.close()
    names = [f"class{c}" for c in range(classes)]
    specs = [TaskSpec("scene", "classification", rows="psc", target="label", classes=names),
             TaskSpec("segmentation", "segmentation", rows="psc", target="mask",
                      classes=["unlabelled", *names], colors=colors)]
    w.finalize(w.load_index(["psc"]), keys=["psc"], name=name, tasks=specs, sources=[])
    return Path(out)


class TinyMultiTask(MultiTaskModel):
    """A shared 2-layer conv stem, a linear head per scene task, a 1×1 conv per segmentation."""

    def __init__(self, tasks: list[TaskInfo], in_channels: int = 3, width: int = 8, **_):
        super().__init__(tasks)
        self.shared = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1),
                                    nn.BatchNorm2d(width), nn.ReLU(),
                                    nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.heads = nn.ModuleDict()
        for t in tasks:
            self.add_task(t)

    def add_task(self, t: TaskInfo) -> None:
        self.tasks[t.name] = t
        width = self.shared[0].out_channels
        self.heads[t.name] = (nn.Conv2d(width, t.num_outputs, 1) if t.type == "segmentation"
                              else nn.Linear(width, t.num_outputs))

    def shared_parameters(self):
        return self.shared.parameters()

    def forward(self, x: torch.Tensor, tasks) -> dict[str, torch.Tensor]:
        f = self.shared(x)
        out = {}
        for t in tasks:
            if self.tasks[t].type == "segmentation":
                out[t] = self.heads[t](f)
            else:
                out[t] = self.heads[t](f.mean((2, 3)))
        return out

    def parameter_breakdown(self) -> dict[str, int]:
        n = sum(p.numel() for p in self.shared.parameters())
        return {"shared": n, "total": sum(p.numel() for p in self.parameters())}


def tiny_model(tasks, **options) -> TinyMultiTask:
    return TinyMultiTask(tasks, **options)


def register() -> None:
    """Make ``--model tiny`` available (tests only)."""
    from rsbench.models import model_factories, register_model

    if "tiny" not in model_factories():
        register_model("tiny")(tiny_model)


def index_of(path: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(path) / "index.parquet")


def run_dir(out: Path, benchmark: str, method: str, seed: int = 0) -> Path:
    """The folder of the one setting's run (benchmark, method, seed) under ``out``
    (``out/benchmark/method/<fingerprint[:8]>/seed``); a path that does not exist if none."""
    found = sorted(Path(out, benchmark, method).glob(f"*/{seed}"))
    assert len(found) <= 1, found
    return found[0] if found else Path(out, benchmark, method, "none", str(seed))
