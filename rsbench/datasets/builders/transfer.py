"""Transfer sets of the MTLN paper (Sec. IV-E, Table VI): PatternNet and EuroSAT (RGB).

``train_per_class`` images of each class (100 in the paper) are drawn by seed for training
(learning a new classifier, or fine-tuning); all the other images are the test set.
"""

from __future__ import annotations

from pathlib import Path

from rsbench.datasets.builders.base import Builder, run_build
from rsbench.datasets.builders.msc import plan_full
from rsbench.datasets.builders.scene_build import check_out_outside, check_size, finish, write_parts
from rsbench.datasets.format.split_files import SplitFile
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.datasets.sources import sources_for
from rsbench.datasets.sources.scenes import read_scene_dataset
from rsbench.errors import InputError, UsageError

PAPER_TRAIN_PER_CLASS = 100


class TransferBuilder(Builder):
    """One transfer set: one part per class, ``train_per_class`` images of each to train."""

    name = "build-transfer"

    def __init__(self, dataset: str, source: str | Path, *,
                 train_per_class: int = PAPER_TRAIN_PER_CLASS,
                 size: tuple[int, int] = (224, 224), seed: int = 0, workers: int = 1,
                 splits: str | Path | None = None):
        choices = sources_for("transfer")  # read now: sources may register after import
        if dataset not in choices:
            raise UsageError(f"unknown transfer dataset {dataset!r}; choose "
                             f"{' or '.join(choices)}")
        if train_per_class < 1:
            raise UsageError(f"--train-per-class {train_per_class} must be at least 1 "
                             f"(the paper uses {PAPER_TRAIN_PER_CLASS})")
        self.dataset, self.train_per_class, self.seed = dataset, train_per_class, seed
        self.size, self.workers = check_size(size), workers
        self.split_file = SplitFile(splits, ("train", "test")) if splits else None
        src = read_scene_dataset(source, dataset)
        self.root = src.root
        self.plan = plan_full(src)
        plan = self.plan
        smallest = min(range(len(plan.classes)), key=lambda k: len(plan.images[k]))
        if len(plan.images[smallest]) <= train_per_class:
            raise InputError(
                f"{src.spec.title} class {plan.classes[smallest]} "
                f"({src.root / plan.classes[smallest]}) has {len(plan.images[smallest])} "
                f"images, not more than --train-per-class {train_per_class}, so it would leave "
                "no test images; lower --train-per-class")

    def params(self) -> dict:
        return {"source": str(self.root), "dataset": self.dataset,
                "train_per_class": self.train_per_class, "size": list(self.size),
                "seed": self.seed}

    def stage(self, writer: DatasetWriter) -> None:
        self.keys = write_parts(writer, [self.plan], self.size, self.workers)

    def finish(self, writer: DatasetWriter) -> dict:
        n = self.train_per_class
        return finish(writer, [self.plan], self.keys, name=f"transfer-{self.dataset}",
                      n_train=lambda task, label, count: n, seed=self.seed, size=self.size,
                      extra={"train_per_class": n}, split_file=self.split_file)


def build_transfer(out: str | Path, dataset: str, source: str | Path, *,
                   train_per_class: int = PAPER_TRAIN_PER_CLASS,
                   size: tuple[int, int] = (224, 224), seed: int = 0, workers: int = 1,
                   resume: bool = False, splits: str | Path | None = None) -> dict:
    """Build the ``transfer-<dataset>`` set from the unpacked download at ``source``
    (``splits``: a split file to reproduce instead of drawing the split)."""
    builder = TransferBuilder(dataset, source, train_per_class=train_per_class, size=size,
                              seed=seed, workers=workers, splits=splits)
    check_out_outside(out, [builder.root])
    return run_build(builder, out, resume)
