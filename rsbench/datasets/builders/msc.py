"""MSC and mini-MSC: the multi-task scene classification sets of the MTLN paper (Sec. IV-A).

One task per source dataset (``merced``, ``aid``, ``nwpu``), each with its own label space.
MSC holds every image of every source; mini-MSC holds only the 12 classes the three share,
``per_class`` images of each class in each task, drawn by seed. The shared-class mapping ships
as ``rsbench/data/mini_msc_mapping.csv`` (documented row by row) and can be replaced.
Each task is split per class (``train_fraction`` to train, the rest to test).
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rsbench.datasets.builders.base import Builder, run_build
from rsbench.datasets.builders.scene_build import (
    TaskPlan,
    check_out_outside,
    check_size,
    finish,
    write_parts,
)
from rsbench.datasets.builders.splits import task_seed
from rsbench.datasets.format.safepaths import check_plain_name
from rsbench.datasets.format.split_files import SplitFile
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.datasets.sources import sources_for
from rsbench.datasets.sources.scenes import SceneSource, norm, read_scene_dataset, spec
from rsbench.errors import InputError, UsageError

MSC_SOURCES = sources_for("msc")  # registered with benchmark="msc", in registration order
DEFAULT_MAPPING = Path(__file__).resolve().parents[2] / "data" / "mini_msc_mapping.csv"
PAPER_PER_CLASS = 100


def read_mapping(path: str | Path | None, sources: list[str]) -> dict[str, dict[str, list[str]]]:
    """Shared class -> {source: [published class folders]} from a mapping CSV.

    Columns: ``shared_class`` and one per source (folders joined by ``|``); ``#`` lines are
    comments; other columns (``why``) are documentation. Folder names are checked against the
    published class lists, and no folder may serve two shared classes.
    """
    path = Path(path) if path is not None else DEFAULT_MAPPING
    if path.is_dir():
        raise InputError(f"--mapping {path} is a folder; give a CSV file like "
                         f"{DEFAULT_MAPPING.name} shipped with rsbench")
    if not path.is_file():
        raise InputError(f"--mapping {path} does not exist; give a CSV like "
                         f"{DEFAULT_MAPPING.name} shipped with rsbench")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets write a BOM
    except UnicodeDecodeError as exc:
        raise InputError(f"--mapping {path} is not UTF-8 text ({exc}); save it as a UTF-8 CSV") \
            from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        records = list(csv.reader(io.StringIO("\n".join(lines)), skipinitialspace=True))
    except csv.Error as exc:
        raise InputError(f"--mapping {path} is not a readable CSV ({exc}); fix the file") \
            from None
    header = [h.strip() for h in records[0]] if records else []
    need = ["shared_class", *sources]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(f"--mapping {path} lacks the column(s) {', '.join(missing)}; it needs "
                         f"{', '.join(need)} (found {', '.join(header) or 'no header'})")
    rows = []
    for i, rec in enumerate(records[1:], 1):
        while len(rec) > len(header) and not rec[-1].strip():
            rec = rec[:-1]  # trailing commas
        if len(rec) > len(header):
            raise InputError(
                f"--mapping {path}, row {i} ({rec[0].strip() or 'no name'}): {len(rec)} fields "
                f"but the header has {len(header)} ({', '.join(header)}); put text that "
                'contains commas in double quotes ("...")')
        rows.append(dict(zip(header, [*rec, *[""] * (len(header) - len(rec))])))
    if len(rows) < 2:
        raise InputError(f"--mapping {path} maps fewer than 2 shared classes; add rows")
    out: dict[str, dict[str, list[str]]] = {}
    used: dict[tuple[str, str], str] = {}
    for i, row in enumerate(rows, 1):
        shared = row["shared_class"].strip()
        where = f"--mapping {path}, row {i} ({shared or 'no name'})"
        if not shared:
            raise InputError(f"{where}: shared_class is empty; name the class")
        check_plain_name(shared, f"{where}: shared_class")
        if shared in out:
            raise InputError(f"{where}: shared class {shared!r} appears twice; keep one row")
        out[shared] = {}
        for src in sources:
            s = spec(src)
            by_norm = {norm(c): c for c in s.classes}
            folders = [f.strip() for f in row[src].split("|") if f.strip()]
            if not folders:
                raise InputError(f"{where}: no {s.title} class folder given in column {src}")
            resolved = []
            for f in folders:
                name = by_norm.get(norm(f))
                if name is None:
                    close = difflib.get_close_matches(f, s.classes, n=3, cutoff=0.5)
                    hint = f" (did you mean {', '.join(close)}?)" if close else ""
                    raise InputError(f"{where}: {f!r} is not one of the {s.title} class folders{hint}; "
                                     f"use one of the published names")
                if (src, name) in used:
                    raise InputError(f"{where}: {s.title} folder {name!r} is already mapped to "
                                     f"{used[(src, name)]!r}; map each folder to one class")
                used[(src, name)] = shared
                resolved.append(name)
            out[shared][src] = resolved
    return out


def plan_full(source: SceneSource) -> TaskPlan:
    """Every image of ``source``, with its published classes."""
    by_class = source.by_class()
    return TaskPlan(source.spec.key, source, list(source.spec.classes),
                    [by_class[c] for c in source.spec.classes])


def plan_mini(source: SceneSource, mapping: dict[str, dict[str, list[str]]], per_class: int,
              seed: int, mapping_name: str) -> TaskPlan:
    """``per_class`` images of each shared class, drawn by seed from its mapped folders."""
    s = source.spec
    by_class = source.by_class()
    images = []
    for shared, per_source in mapping.items():
        folders = per_source[s.key]
        pool = [im for f in folders for im in by_class[f]]
        if len(pool) < per_class:
            raise InputError(
                f"{s.title} {'+'.join(folders)} (mapped to {shared!r} in {mapping_name}) has "
                f"{len(pool)} images, fewer than --per-class {per_class}; lower --per-class to "
                f"{len(pool)} or map more folders to {shared!r}")
        rng = np.random.default_rng(task_seed(seed, s.key, "mini", shared))
        pick = np.sort(rng.choice(len(pool), size=per_class, replace=False))
        images.append([pool[k] for k in pick])
    extra = {"class_folders": {shared: per_source[s.key] for shared, per_source in mapping.items()}}
    return TaskPlan(s.key, source, list(mapping), images, extra)


class MscBuilder(Builder):
    """MSC or mini-MSC: one task per source, one part per task and class."""

    name = "build-msc"

    def __init__(self, sources: Mapping[str, str | Path | None], *, mini: bool = False,
                 size: tuple[int, int] = (224, 224), train_fraction: float = 0.8,
                 per_class: int | None = None, mapping: str | Path | None = None,
                 seed: int = 0, workers: int = 1, splits: str | Path | None = None):
        given = {k: v for k, v in sources.items() if v is not None}
        unknown = set(given) - set(MSC_SOURCES)
        if unknown:
            raise UsageError(f"unknown MSC source(s) {', '.join(sorted(unknown))}; MSC uses "
                             f"{', '.join(MSC_SOURCES)}")
        if not given:
            opts = [f"--{k}" for k in MSC_SOURCES]
            raise UsageError("give at least one source: " + ", ".join(opts[:-1])
                             + " and/or " * (len(opts) > 1) + opts[-1])
        if not 0 < train_fraction < 1:
            raise UsageError(f"--train-fraction {train_fraction} must be between 0 and 1 "
                             "(the paper uses 0.8)")
        if not mini and (per_class is not None or mapping is not None):
            raise UsageError("--per-class and --mapping select mini-MSC; add --mini")
        per_class = PAPER_PER_CLASS if per_class is None else int(per_class)
        if per_class < 1:
            raise UsageError(f"--per-class {per_class} must be at least 1")
        self.size, self.mini, self.seed, self.workers = check_size(size), mini, seed, workers
        self.train_fraction = train_fraction
        self.split_file = SplitFile(splits, ("train", "test")) if splits else None
        order = [k for k in MSC_SOURCES if k in given]
        read = {k: read_scene_dataset(given[k], k) for k in order}
        self.roots = [read[k].root for k in order]
        self._params: dict = {"sources": {k: str(read[k].root) for k in order}, "mini": mini,
                              "size": list(self.size), "train_fraction": train_fraction,
                              "seed": seed}
        self.extra: dict = {}
        if mini:
            mapping_path = Path(mapping) if mapping is not None else DEFAULT_MAPPING
            table = read_mapping(mapping_path, order)
            self.plans = [plan_mini(read[k], table, per_class, seed, mapping_path.name)
                          for k in order]
            self._params.update(per_class=per_class, mapping=table)
            self.extra = {"mapping_file": str(mapping_path)}
        else:
            self.plans = [plan_full(read[k]) for k in order]

    def params(self) -> dict:
        return self._params

    def stage(self, writer: DatasetWriter) -> None:
        self.keys = write_parts(writer, self.plans, self.size, self.workers)

    def finish(self, writer: DatasetWriter) -> dict:
        frac = self.train_fraction
        return finish(writer, self.plans, self.keys, name="mini-msc" if self.mini else "msc",
                      n_train=lambda task, label, n: int(round(frac * n)), seed=self.seed,
                      size=self.size, extra=self.extra, split_file=self.split_file)


def build_msc(out: str | Path, sources: Mapping[str, str | Path | None], *, mini: bool = False,
              size: tuple[int, int] = (224, 224), train_fraction: float = 0.8,
              per_class: int | None = None, mapping: str | Path | None = None, seed: int = 0,
              workers: int = 1, resume: bool = False, splits: str | Path | None = None) -> dict:
    """Build MSC (or mini-MSC) from the given sources into ``out``; returns the manifest.

    ``sources`` maps ``merced``/``aid``/``nwpu`` to the unpacked download folders (any subset);
    ``splits`` is a split file to reproduce instead of drawing the split.
    """
    builder = MscBuilder(sources, mini=mini, size=size, train_fraction=train_fraction,
                         per_class=per_class, mapping=mapping, seed=seed, workers=workers,
                         splits=splits)
    check_out_outside(out, builder.roots)
    return run_build(builder, out, resume)
