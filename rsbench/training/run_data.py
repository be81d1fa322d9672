"""What a run reads from its dataset: the benchmark's tasks (checked), the models' view of them,
and the stored image size and bands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rsbench.datasets.format.reader import Dataset as BuiltDataset
from rsbench.errors import InputError


def check_dataset(data: BuiltDataset, cfg: Mapping[str, Any], path: str) -> list[str]:
    """The benchmark's tasks on this dataset, or a one-line error if it is the wrong kind."""
    names = cfg["dataset"].get("names") or []
    if names and data.name not in names:
        hint = cfg["dataset"].get("hint", "")
        raise InputError(
            f"{path} holds a {data.name!r} dataset but benchmark {cfg['benchmark']!r} needs "
            f"{' or '.join(repr(n) for n in names)}" + (f"; {hint}" if hint else ""))
    tasks = list(cfg.get("tasks") or data.tasks)
    missing = [t for t in tasks if t not in data.tasks]
    if missing:
        raise InputError(f"{path} has no task {', '.join(missing)} that benchmark "
                         f"{cfg['benchmark']!r} needs (it has {', '.join(data.tasks)}); "
                         "rebuild the dataset")
    for split in (cfg["train_split"], cfg["test_split"]):
        for t in tasks:
            if not len(data.rows(t, split)):
                raise InputError(f"{path} has no {split!r} samples for task {t!r}; "
                                 "rebuild the dataset with a train/test split")
    return tasks


def task_infos(data: BuiltDataset, tasks: Sequence[str]) -> list:
    """The models' view of the tasks: name, type and number of outputs."""
    from rsbench.models.base import TaskInfo

    out = []
    for name in tasks:
        spec = data.task(name)
        if spec["type"] == "regression":
            tgt = spec["target"]
            n = len(tgt) if isinstance(tgt, list) else 1
        else:
            n = len(spec["classes"])
        out.append(TaskInfo(name, spec["type"], n))
    return out


def sample_side(data: BuiltDataset, image_array: str) -> int | None:
    """Height of the stored samples (sample layout), None for raster-layout arrays."""
    meta = data.manifest["arrays"].get(image_array, {})
    return int(meta["shape"][1]) if meta.get("layout", "sample") == "sample" else None


def in_channels(data: BuiltDataset, image_array: str) -> int:
    """Bands of the image array (sample layout N×H×W[×C], raster layout H×W[×C])."""
    meta = data.manifest["arrays"][image_array]
    dims = 4 if meta.get("layout", "sample") == "sample" else 3
    return int(meta["shape"][-1]) if len(meta["shape"]) == dims else 1


def has_split(data: BuiltDataset, tasks: Sequence[str], split: str) -> bool:
    """True when every task has samples in ``split`` (e.g. a validation split)."""
    if split not in set(data.index["split"].unique()):
        return False
    return all(len(data.rows(t, split)) for t in tasks)
