"""Shared machinery of the scene-classification builders (MSC, mini-MSC, transfer sets).

A builder chooses, per task, which source images belong to which class (:class:`TaskPlan`);
this module decodes and resizes them once (in parallel, one resumable part per task and
class), finds exact duplicates by pixel hash, draws the per-class splits so that duplicates
never straddle train and test, and writes the dataset with previews.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rsbench.datasets.builders.splits import split_per_class_grouped
from rsbench.datasets.format.manifest import TaskSpec
from rsbench.datasets.format.split_files import SplitFile
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.datasets.sources.scene_images import (
    RESAMPLE_NAME,
    Decoded,
    decode_resize,
    decode_resize_job,
)
from rsbench.datasets.sources.scenes import SceneImage, SceneSource
from rsbench.errors import InputError, UsageError
from rsbench.progress import progress

SPLITS = ("train", "test")


@dataclass
class TaskPlan:
    """The images of one task, grouped by the task's classes (in label order)."""

    name: str  # task name = index ``task`` value
    source: SceneSource
    classes: list[str]
    images: list[list[SceneImage]]  # per label
    extra: dict = field(default_factory=dict)  # stored in the TaskSpec

    def part_key(self, label: int) -> str:
        return f"{self.name}-{label:03d}"


def source_fingerprint(source: SceneSource) -> dict:
    """Manifest entry for a source dataset: root, file count, bytes and a listing hash."""
    h = hashlib.sha256()
    total = 0
    for im in source.images:
        size = im.path.stat().st_size
        total += size
        h.update(f"{im.path.relative_to(source.root).as_posix()}\t{size}\n".encode())
    return {"dataset": source.spec.key, "title": source.spec.title, "path": str(source.root),
            "files": len(source.images), "bytes": total, "listing_sha256": h.hexdigest()}


def _pool_map(jobs: list[tuple[str, tuple[int, int]]], pool) -> Iterator[Decoded]:
    if pool is None:
        return (decode_resize(*job) for job in jobs)
    return pool.imap(decode_resize_job, jobs, chunksize=8)


def _make_pool(workers: int):
    """A process pool: fork (fast, works from any script) unless torch, whose threads make
    forking unsafe, is loaded; then forkserver."""
    if workers <= 1:
        return None
    methods = mp.get_all_start_methods()
    if "fork" in methods and "torch" not in sys.modules:
        method = "fork"
    else:
        method = "forkserver" if "forkserver" in methods else "spawn"
    return mp.get_context(method).Pool(workers)


def write_parts(writer: DatasetWriter, plans: list[TaskPlan], size: tuple[int, int],
                workers: int = 1) -> list[str]:
    """Decode, resize and stage every planned image, one part per task and class.

    All images stream through one ordered pool map, so workers stay busy across part
    boundaries; a part is closed (made durable) as soon as its last image arrives. Finished
    parts (from an interrupted run) are kept. Returns all part keys in order.
    """
    keys = [p.part_key(lab) for p in plans for lab in range(len(p.classes))]
    todo = [(p, lab) for p in plans for lab in range(len(p.classes))
            if not writer.part_done(p.part_key(lab))]
    if not todo:
        return keys
    items = [(plan, lab, im) for plan, lab in todo for im in plan.images[lab]]
    jobs = [(str(im.path), tuple(size)) for _, _, im in items]
    pool = _make_pool(workers)  # before the progress bar starts its monitor thread
    bar = progress(total=len(items), desc="decode+resize", unit="img")
    part, current = None, None
    try:
        for (plan, lab, im), dec in zip(items, _pool_map(jobs, pool)):
            if (plan.name, lab) != current:
                if part is not None:
                    part.close({"task": current[0], "label": current[1]})
                part, current = writer.part_writer(plan.part_key(lab)), (plan.name, lab)
            if dec.image is None:
                raise InputError(f"{im.path} {dec.error}, then rerun with --resume")
            part.append({
                "task": plan.name, "label": lab, "class": plan.classes[lab],
                "source_class": im.class_name,
                "path": im.path.relative_to(plan.source.root).as_posix(),
                "orig_height": dec.height, "orig_width": dec.width,
                "pixel_hash": dec.pixel_hash,
            }, image=dec.image)
            bar.update()
        if part is not None:
            part.close({"task": current[0], "label": current[1]})
            part = None
    finally:
        if part is not None:
            part.abort()
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    return keys


def mark_duplicates(index: pd.DataFrame) -> pd.DataFrame:
    """Add ``dup_group``: a number shared by exact pixel duplicates inside a task, else -1."""
    index = index.copy()
    index["dup_group"] = -1
    key = index["task"].astype(str) + ":" + index["pixel_hash"].astype(str)
    sizes = key.map(key.value_counts())
    dup = sizes > 1
    if dup.any():
        index.loc[dup, "dup_group"] = pd.factorize(key[dup], sort=True)[0]
    return index


def duplicates_report(index: pd.DataFrame) -> dict:
    """Per task: number of duplicate groups and images, groups spanning classes, the groups."""
    out = {}
    for task, grp in index[index["dup_group"] >= 0].groupby("task", sort=False):
        groups = [g["path"].tolist() for _, g in grp.groupby("dup_group")]
        cross = sum(1 for _, g in grp.groupby("dup_group") if g["label"].nunique() > 1)
        out[str(task)] = {"groups": len(groups), "images": int(len(grp)),
                          "cross_class_groups": cross, "paths": groups}
    return out


def finish(writer: DatasetWriter, plans: list[TaskPlan], keys: list[str], *, name: str,
           n_train: Callable[[str, int, int], int], seed: int, size: tuple[int, int],
           extra: dict | None = None, split_file: SplitFile | None = None) -> dict:
    """Mark duplicates, draw the splits and write the finished dataset (manifest last)."""
    from rsbench.datasets.previews.scenes import write_scene_previews

    index = mark_duplicates(writer.load_index(keys))
    sample_keys = (index["task"].astype(str) + "/" + index["path"].astype(str)).tolist()
    index["split"] = (split_file.assign(sample_keys) if split_file
                      else split_per_class_grouped(index, n_train, seed))
    first = ["task", "split", "label", "class"]
    index = index[first + [c for c in index.columns if c not in first]]
    tasks = [TaskSpec(p.name, "classification", rows=p.name, target="label",
                      classes=list(p.classes),
                      extra={"source": p.source.spec.title, **p.extra}) for p in plans]
    return writer.finalize(
        index, keys=keys, name=name, tasks=tasks,
        sources=[source_fingerprint(p.source) for p in plans],
        extra={"image_size": list(size), "resample": RESAMPLE_NAME,
               "duplicates": duplicates_report(index), **(extra or {})},
        previews=write_scene_previews, split_keys=(sample_keys, index["split"]),
        split_source=split_file.describe() if split_file else None,
    )


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    rows, cols = (int(v) for v in size)
    if min(rows, cols) < 8:
        raise UsageError(f"--size {rows}x{cols} is too small; use at least 8 (the paper uses 224)")
    return rows, cols


def check_out_outside(out: str | Path, sources: list[Path]) -> None:
    """Refuse an ``--out`` inside a source folder (the built images would become sources)."""
    target = Path(out).resolve()
    for root in sources:
        root = Path(root).resolve()
        if target == root or root in target.parents:
            raise UsageError(f"--out {out} lies inside the source folder {root}; write the "
                             "dataset somewhere else")
