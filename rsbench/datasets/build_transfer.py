"""Transfer sets of the MTLN paper (Sec. IV-E, Table VI): PatternNet and EuroSAT (RGB).

``train_per_class`` images of each class (100 in the paper) are drawn by seed for training
(learning a new classifier, or fine-tuning); all the other images are the test set.
"""

from __future__ import annotations

from pathlib import Path

from rsbench.datasets.build_msc import plan_full
from rsbench.datasets.format import DatasetWriter
from rsbench.datasets.scene_build import check_size, finish, write_parts
from rsbench.datasets.scenes import read_scene_dataset
from rsbench.errors import InputError, UsageError

TRANSFER_SOURCES = ("patternnet", "eurosat")
PAPER_TRAIN_PER_CLASS = 100


def build_transfer(out: str | Path, dataset: str, source: str | Path, *,
                   train_per_class: int = PAPER_TRAIN_PER_CLASS,
                   size: tuple[int, int] = (224, 224), seed: int = 0, workers: int = 1,
                   resume: bool = False) -> dict:
    """Build the ``transfer-<dataset>`` set from the unpacked download at ``source``."""
    if dataset not in TRANSFER_SOURCES:
        raise UsageError(f"unknown transfer dataset {dataset!r}; choose "
                         f"{' or '.join(TRANSFER_SOURCES)}")
    if train_per_class < 1:
        raise UsageError(f"--train-per-class {train_per_class} must be at least 1 "
                         f"(the paper uses {PAPER_TRAIN_PER_CLASS})")
    size = check_size(size)
    src = read_scene_dataset(source, dataset)
    plan = plan_full(src)
    smallest = min(range(len(plan.classes)), key=lambda k: len(plan.images[k]))
    if len(plan.images[smallest]) <= train_per_class:
        raise InputError(
            f"{src.spec.title} class {plan.classes[smallest]} ({src.root / plan.classes[smallest]}"
            f") has {len(plan.images[smallest])} images, not more than --train-per-class "
            f"{train_per_class}, so it would leave no test images; lower --train-per-class")
    params = {"source": str(src.root), "dataset": dataset, "train_per_class": train_per_class,
              "size": list(size), "seed": seed}
    writer = DatasetWriter(out, builder="build-transfer", params=params, resume=resume)
    keys = write_parts(writer, [plan], size, workers)
    return finish(writer, [plan], keys, name=f"transfer-{dataset}",
                  n_train=lambda task, label, n: train_per_class, seed=seed, size=size,
                  extra={"train_per_class": train_per_class})
