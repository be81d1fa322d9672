"""Reading a finished dataset folder: typed manifest, index and memory-mapped arrays.

Everything read from the folder is checked before it is used: the manifest against its schema
(:class:`~rsbench.datasets.format.manifest.Manifest`), array files against the folder (no path outside
it) and against their .npy headers (dtype, shape, bytes on disk), the index against the sample
count; so a damaged or crafted folder gives one line naming the file, never a huge allocation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsbench.datasets.format.manifest import (
    INDEX,
    MANIFEST,
    STAGING,
    Manifest,
    TaskSpec,
    array_path,
    check_array_file,
)
from rsbench.datasets.format.staging import builder_running, resume_plan
from rsbench.datasets.format.summary import dataset_summary
from rsbench.errors import InputError, UsageError


def read_manifest_typed(path: str | os.PathLike, hint: str | None = None) -> Manifest:
    """The checked manifest of a finished dataset, or one clear line for anything else.

    ``hint`` says how to build the dataset the caller expects (e.g. "build it with
    `rsbench build-taiga`"); it replaces the generic suggestion for a folder with no manifest.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root} does not exist; give the folder a builder wrote with --out")
    if not root.is_dir():
        raise InputError(f"{root} is a file; give the dataset folder a builder wrote with --out")
    mf = root / MANIFEST
    if not mf.exists():
        if (root / STAGING).exists():
            running = builder_running(root)
            if running:
                raise InputError(f"{root} is being built right now by {running}; wait for it "
                                 "to finish")
            raise InputError(f"{root} is an unfinished build (no {MANIFEST}); rerun the builder "
                             f"with --resume to finish it ({resume_plan(root)})")
        raise InputError(f"{root} is not an rsbench dataset (no {MANIFEST}); "
                         + (hint or "build one first, e.g. `rsbench build-psc`"))
    try:
        raw = json.loads(mf.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{mf} is not valid JSON ({exc}); rebuild the dataset") from None
    except (PermissionError, UnicodeDecodeError) as exc:
        raise InputError(f"{mf} cannot be read ({exc}); fix the file or rebuild") from None
    return Manifest.from_json(raw, mf)


def read_manifest(path: str | os.PathLike, hint: str | None = None) -> dict:
    """The checked manifest of a finished dataset as JSON (see :func:`read_manifest_typed`)."""
    return read_manifest_typed(path, hint).to_json()


class Dataset:
    """A finished dataset folder: manifest, index, memory-mapped arrays and sample access.

    ``meta`` is the typed manifest; ``manifest`` the same as JSON (as written on disk).
    ``arrays`` lets a caller serve arrays from elsewhere (finalize draws previews from the
    staged parts while the final arrays are being written).
    """

    def __init__(self, path: str | os.PathLike, *, manifest: Manifest | dict | None = None,
                 index: pd.DataFrame | None = None, hint: str | None = None,
                 arrays: Mapping[str, Any] | None = None):
        self.root = Path(path)
        if manifest is None:
            self.meta = read_manifest_typed(self.root, hint)
        elif isinstance(manifest, Manifest):
            self.meta = manifest
        else:
            self.meta = Manifest.from_json(manifest, self.root / MANIFEST)
        self.manifest = self.meta.to_json()
        self._index = index
        self._arrays: dict[str, Any] = dict(arrays or {})

    @property
    def name(self) -> str:
        return self.meta.name or self.root.name

    @property
    def index(self) -> pd.DataFrame:
        if self._index is None:
            path = self.root / INDEX
            if not path.is_file():
                raise InputError(f"{path} is missing; the dataset folder is incomplete: copy it "
                                 "again or rebuild it")
            try:
                index = pd.read_parquet(path)
            except PermissionError:
                raise InputError(f"{path} cannot be read (permission denied); fix its "
                                 "permissions") from None
            except (OSError, ValueError) as exc:
                raise InputError(f"{path} cannot be read as a Parquet index ({exc}); copy the "
                                 "dataset folder again or rebuild it") from None
            if len(index) != self.meta.num_samples:
                raise InputError(f"{path} has {len(index)} rows but {self.root / MANIFEST} "
                                 f"says {self.meta.num_samples} samples; rebuild the dataset")
            check_labels(index, self.meta, path)
            self._index = index
        return self._index

    @property
    def tasks(self) -> dict[str, dict]:
        return self.manifest["tasks"]

    def task(self, name: str) -> dict:
        if name not in self.tasks:
            raise UsageError(f"{self.root} has no task {name!r}; it has: {', '.join(self.tasks)}")
        return self.tasks[name]

    def task_spec(self, name: str) -> TaskSpec:
        """Task ``name`` as the typed spec the builder wrote."""
        self.task(name)
        return self.meta.tasks[name]

    def array(self, name: str) -> np.ndarray:
        """A stored array, memory-mapped read-only (checked against the manifest first)."""
        if name not in self._arrays:
            spec = self.meta.arrays.get(name)
            if spec is None:
                raise UsageError(f"{self.root} has no array {name!r}")
            path = array_path(self.root, spec, name)
            check_array_file(path, spec, name, self.root / MANIFEST)
            try:
                self._arrays[name] = np.load(path, mmap_mode="r")
            except ValueError as exc:  # e.g. "mmap length is greater than file size"
                raise InputError(f"{path} is truncated or not a .npy array ({exc}); copy the "
                                 "dataset folder again or rebuild it") from None
        return self._arrays[name]

    def rows(self, task: str, split: str | None = None) -> np.ndarray:
        """Positions (into the index) of the samples of ``task`` in ``split`` (all if None)."""
        spec = self.task(task)
        idx = self.index
        mask = np.ones(len(idx), dtype=bool)
        if "task" in idx.columns:
            mask &= (idx["task"] == spec["rows"]).to_numpy()
        if split is not None:
            if split not in set(idx["split"].unique()):
                raise UsageError(f"{self.root} has no split {split!r}; it has: "
                                 f"{', '.join(sorted(map(str, idx['split'].unique())))}")
            mask &= (idx["split"] == split).to_numpy()
        return np.flatnonzero(mask)

    def sample_array(self, name: str, i: int) -> np.ndarray:
        """Array ``name`` for index row ``i`` (a row of a sample array, or a raster window)."""
        spec = self.meta.arrays[name]
        arr = self.array(name)
        if spec.layout == "sample":
            return arr[i]
        r, c, h, w = (int(self.index.at[i, col]) for col in spec.window_columns or ())
        return arr[r:r + h, c:c + w]

    def summary(self) -> str:
        """A plain-text summary: tasks, classes and counts per split."""
        return dataset_summary(self)


def check_labels(index: pd.DataFrame, meta: Manifest, path: Path) -> None:
    """Every classification label in the index is a class of its task (or its ignore index),
    so a damaged index fails on open, not with an IndexError deep in training."""
    for name, task in meta.tasks.items():
        if task.type != "classification":
            continue
        if task.target not in index.columns:
            raise InputError(f"{path} has no column {task.target!r}, the labels of task "
                             f"{name!r}; rebuild the dataset")
        rows = index["task"] == task.rows if "task" in index.columns else slice(None)
        labels = pd.to_numeric(index.loc[rows, task.target], errors="coerce").to_numpy()
        ok = np.isfinite(labels) & (labels == np.round(labels))
        ok[ok] = ((labels[ok] >= 0) & (labels[ok] < len(task.classes))) | \
            (labels[ok] == (task.ignore_index if task.ignore_index is not None else -1))
        if not ok.all():
            bad = labels[~ok][0]
            raise InputError(f"{path}: column {task.target!r} holds label {bad:g} for task "
                             f"{name!r}, which has {len(task.classes)} classes (0.."
                             f"{len(task.classes) - 1}); the index is damaged: rebuild the "
                             "dataset")


def open_dataset(path: str | os.PathLike, hint: str | None = None) -> Dataset:
    """Open a finished rsbench dataset folder (refuses unfinished or foreign folders);
    ``hint`` tells the user how to build the expected dataset when ``path`` is not one."""
    return Dataset(path, hint=hint)
