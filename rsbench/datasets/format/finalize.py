"""Finalize: gather a build's staged parts and rasters into the finished dataset folder.

Crash-safe at every instant. Each step is idempotent and checked, and ``.staging/finalize.json``
records the last finished step (``rsbench info`` reports it): staged rasters are *moved* into
``arrays/`` with checked moves (a raster already moved is found there on ``--resume``), sample
arrays and the index are written to ``.tmp`` files and renamed, and ``dataset.json`` (the commit
point) is written last. Clean-up renames ``.staging`` away before deleting it, so no half-deleted
staging folder is ever left beside a finished dataset. ``--resume`` redoes finalize from the
staged parts; no source is read again.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rsbench.datasets.format.manifest import (
    ARRAYS,
    FOOTPRINTS,
    INDEX,
    MANIFEST,
    PREVIEW,
    ArraySpec,
    Manifest,
    TaskSpec,
    atomic_write_text,
)
from rsbench.datasets.format.reader import Dataset
from rsbench.datasets.format.split_files import SPLIT_FILE, split_file_text
from rsbench.datasets.format.staging import (
    JOURNAL,
    STREAM_HEADER,
    Part,
    remove_leftovers,
    retire_staging,
)
from rsbench.diskspace import require_free
from rsbench.errors import InputError

if TYPE_CHECKING:  # the writer calls finalize; at run time finalize needs no writer import
    from rsbench.datasets.format.writer import DatasetWriter

STEPS = ("rasters", "arrays", "index", "footprints", "counts", "previews", "manifest",
         "cleanup")


def reached(step: str) -> None:
    """Called after each step of finalize (and each raster move); tests replace it to kill the
    build there."""


def _journal(writer: DatasetWriter, step: str) -> None:
    if writer.staging.exists():
        atomic_write_text(writer.staging / JOURNAL, json.dumps({"done": step}))
    reached(step)


def _checked_move(src: Path, dst: Path, name: str) -> None:
    """Move a staged file into place; on a resumed finalize it may already be there."""
    if src.exists():
        os.replace(src, dst)
    elif not dst.exists():
        raise InputError(f"{src} is missing and {dst} was never written: the interrupted build "
                         f"lost its staged {name!r} raster; delete {dst.parent.parent} and build "
                         "again")


def finalize(
    writer: DatasetWriter,
    index: pd.DataFrame,
    *,
    keys: Sequence[str],
    name: str,
    tasks: Iterable[TaskSpec],
    sources: Sequence[dict] | Callable[[], Sequence[dict]],
    extra: Mapping[str, Any] | None = None,
    rasters: Mapping[str, dict] | None = None,
    footprints: Any | None = None,
    previews: Callable[[Path, Any], None] | None = None,
    counts: Mapping[str, dict] | None = None,
    split_keys: tuple[Sequence[str], Sequence[str]] | None = None,
    split_source: Mapping[str, Any] | None = None,
) -> dict:
    """Gather part arrays for ``index`` rows (in that order), write everything, manifest last.

    ``rasters`` maps staged rasters (:meth:`DatasetWriter.raster`) to their manifest entries
    (``window_columns`` and any extra keys): stored once, samples are windows into them.
    ``footprints`` is a GeoDataFrame (or a list, one per CRS); ``previews(out_dir, dataset)``
    draws preview images; ``counts`` gives per-split class counts the builder already has.
    ``sources`` may be a callable, called just before the manifest is written (checksums
    still being computed meanwhile). ``split_keys`` = (keys, splits) is written as ``splits.csv`` (stable keys: see
    :mod:`rsbench.datasets.format.split_files`); ``split_source`` records the ``--splits`` file used.
    Returns the manifest as written (a dict).
    """
    out = writer.out
    atomic_write_text(writer.staging / JOURNAL, json.dumps({"done": "begun"}))
    parts = writer.parts(keys)
    index = index.reset_index(drop=True)
    arrays_dir = out / ARRAYS
    arrays_dir.mkdir(parents=True, exist_ok=True)
    names = sorted({n for p in parts for n in p.arrays})
    n = len(index)
    part_ids = index["_part"].to_numpy() if "_part" in index.columns else np.zeros(0, int)
    part_rows = index["_row"].to_numpy() if "_row" in index.columns else np.zeros(0, int)
    specs: dict[str, ArraySpec] = {}
    for aname in names:
        meta = next(p.arrays[aname] for p in parts if aname in p.arrays)
        specs[aname] = ArraySpec(f"{ARRAYS}/{aname}.npy", np.dtype(meta["dtype"]).name,
                                 [n, *meta["shape"]])
    for aname, spec in (rasters or {}).items():
        final = arrays_dir / f"{aname}.npy"
        _checked_move(writer.staged(f"{aname}.npy"), final, aname)
        reached(f"move {aname}")
        arr = np.load(final, mmap_mode="r")
        specs[aname] = ArraySpec(f"{ARRAYS}/{aname}.npy", arr.dtype.name, list(arr.shape),
                                 "raster", list(spec["window_columns"]),
                                 {k: v for k, v in spec.items() if k != "window_columns"})
    _journal(writer, "rasters")
    final_index = index.drop(columns=[c for c in ("_part", "_row") if c in index.columns])
    if "sample_id" not in final_index.columns:
        final_index.insert(0, "sample_id", np.arange(n))

    tasks = list(tasks)
    given = dict(counts or {})
    manifest = Manifest(
        name=name, builder=writer.builder, parameters=writer.params, num_samples=n,
        splits={str(k): int(v) for k, v in final_index["split"].value_counts()
                .sort_index().items()} if n else {},
        arrays=specs, tasks={t.name: t for t in tasks},
        sources=[] if callable(sources) else list(sources),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        extra=dict(extra or {}))
    if split_keys is not None:
        manifest.extra["split_file"] = {"file": SPLIT_FILE, "rows": len(split_keys[0]),
                                        "from": dict(split_source) if split_source else None}
    # counts that need the written arrays (masks without builder-supplied counts) wait
    pending = [t for t in tasks if t.name not in given and t.type == "segmentation"]
    for t in tasks:
        if t.name in given:
            t.counts = dict(given[t.name])
        elif t not in pending:
            t.counts = class_counts(final_index, t, out)

    # previews drawn from the staged parts while the arrays are copied into place (the copy
    # runs in the kernel, the drawing in Python: they overlap on two cores)
    drawing = drawn = None
    if previews is not None:
        (out / PREVIEW).mkdir(exist_ok=True)
        if not pending:
            view = Dataset(out, manifest=manifest, index=final_index,
                           arrays={a: _PartRows(parts, a, part_ids, part_rows) for a in names})
            drawing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="previews")
            drawn = drawing.submit(previews, out / PREVIEW, view)
    in_part_order = bool(names) and _whole_parts_in_order(part_ids, part_rows, parts)
    filled = [p for p in parts if p.count]
    adoptable = {a for a in names if in_part_order and _stream_in_place(
        filled, a, np.dtype(specs[a].dtype), tuple(specs[a].shape), arrays_dir)}
    require_free(arrays_dir, sum(int(np.prod(specs[a].shape, dtype=np.int64))
                                 * np.dtype(specs[a].dtype).itemsize
                                 for a in names if a not in adoptable), "the final arrays")
    try:
        for aname in names:
            spec = specs[aname]
            tmp = arrays_dir / f"{aname}.npy.tmp"
            shape, dtype = tuple(spec.shape), np.dtype(spec.dtype)
            if aname in adoptable:
                _adopt_stream(filled[0], aname, dtype, shape, arrays_dir / f"{aname}.npy")
                reached(f"adopt {aname}")
                continue
            if in_part_order:
                _concatenate_parts(tmp, filled, aname, dtype, shape)
            else:
                _gather_rows(tmp, part_ids, part_rows, parts, aname, dtype, shape)
            os.replace(tmp, arrays_dir / f"{aname}.npy")
        _journal(writer, "arrays")
        final_index.to_parquet(out / (INDEX + ".tmp"), index=False)
        os.replace(out / (INDEX + ".tmp"), out / INDEX)
        if split_keys is not None:
            atomic_write_text(out / SPLIT_FILE, split_file_text(*split_keys))
        _journal(writer, "index")
        if footprints is not None:
            write_footprints(out / FOOTPRINTS, footprints)
        _journal(writer, "footprints")
        for t in pending:
            t.counts = class_counts(final_index, t, out)
        _journal(writer, "counts")
        if previews is not None and drawing is None:
            previews(out / PREVIEW, Dataset(out, manifest=manifest, index=final_index))
    finally:
        if drawing is not None:
            drawing.shutdown(wait=True)
    if drawn is not None:
        drawn.result()  # re-raise a failure of the previews here
    _journal(writer, "previews")
    if callable(sources):  # e.g. checksums still being computed: needed by the manifest only
        manifest.sources = list(sources())
    written = manifest.to_json()
    atomic_write_text(out / MANIFEST, json.dumps(written, indent=2))
    reached("manifest")
    retire_staging(out)
    reached("cleanup")
    remove_leftovers(out)
    return written


class _PartRows:
    """Row ``i`` of a sample array, read from the staged part that holds it."""

    def __init__(self, parts: Sequence[Part], name: str, part_ids: np.ndarray,
                 rows: np.ndarray):
        self.parts, self.name, self.part_ids, self.rows = parts, name, part_ids, rows

    def __getitem__(self, i: int) -> np.ndarray:
        return self.parts[int(self.part_ids[i])].array(self.name)[int(self.rows[i])]


def _whole_parts_in_order(part_ids: np.ndarray, rows: np.ndarray,
                          parts: Sequence[Part]) -> bool:
    """True when the index rows list every row of every part, part after part, in order."""
    if not len(part_ids):
        return False
    expect_parts = np.repeat(np.arange(len(parts)), [p.count for p in parts])
    expect_rows = np.concatenate([np.arange(p.count) for p in parts])
    return (len(part_ids) == len(expect_parts) and np.array_equal(part_ids, expect_parts)
            and np.array_equal(rows, expect_rows))


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The .npy (version 1.0) header numpy writes for an array of ``dtype`` and ``shape``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": shape})
    return buf.getvalue()


def _stream_in_place(parts: Sequence[Part], name: str, dtype: np.dtype,
                     shape: tuple[int, ...], arrays_dir: Path) -> bool:
    """True when the parts' samples of ``name`` lie back to back in one stream, in order, right
    after room for exactly this array's header: the stream (or, after an interrupted finalize,
    the final file it became) is then the final array without a copy."""
    header = _npy_header(dtype, shape)
    if not parts or len(header) != STREAM_HEADER:
        return False
    sample_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    offset = STREAM_HEADER
    for part in parts:
        meta = part.arrays.get(name, {})
        if meta.get("stream") != f"{name}.npy" or int(meta.get("offset", -1)) != offset:
            return False
        offset += part.count * sample_bytes
    path, _ = parts[0].source(name)
    try:
        if path.stat().st_size != offset:
            return False
        if path.parent == arrays_dir:  # adopted by an interrupted finalize: check its header
            with open(path, "rb") as f:
                return f.read(len(header)) == header
    except FileNotFoundError:
        return False
    return True


def _adopt_stream(first: Part, name: str, dtype: np.dtype, shape: tuple[int, ...],
                  final: Path) -> None:
    """Write the header into a stream's reserved start and rename it to the final array."""
    path, _ = first.source(name)
    if path == final:
        return  # an interrupted finalize already adopted it
    with open(path, "r+b") as f:
        f.write(_npy_header(dtype, shape))
    os.replace(path, final)


def _concatenate_parts(tmp: Path, parts: Sequence[Part], name: str, dtype: np.dtype,
                       shape: tuple[int, ...]) -> None:
    """Write an .npy of the parts' samples back to back, copied inside the kernel."""
    sample_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    with open(tmp, "wb") as dst:
        dst.write(_npy_header(dtype, shape))
        dst.flush()
        for part in parts:
            path, offset = part.source(name)
            size = part.count * sample_bytes
            with open(path, "rb") as src:
                have = os.fstat(src.fileno()).st_size - offset
                if have < size or (offset == 0 and have != size):
                    raise InputError(f"{path} holds {have} bytes, not {part.count} samples; the "
                                     "staged part is damaged: delete it and build with --resume")
                _copy_file(src, dst, size, offset)


def _copy_file(src, dst, size: int, offset: int = 0) -> None:
    """Append ``size`` bytes of ``src`` from ``offset`` to ``dst`` (copy_file_range where the OS
    has it)."""
    copy_range = getattr(os, "copy_file_range", None)
    done = 0
    if copy_range is not None:
        try:
            while done < size:
                n = copy_range(src.fileno(), dst.fileno(), size - done, offset + done)
                if n == 0:
                    break
                done += n
        except OSError:
            pass
    if done < size:
        src.seek(offset + done)
        dst.seek(0, os.SEEK_END)
        left = size - done
        while left:
            chunk = src.read(min(left, 16 << 20))
            if not chunk:
                raise InputError(f"{src.name} ended early; the staged part is damaged: delete "
                                 "it and build with --resume")
            dst.write(chunk)
            left -= len(chunk)


def _gather_rows(tmp: Path, part_ids: np.ndarray, rows: np.ndarray, parts: Sequence[Part],
                 name: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """Write an .npy whose row i is row ``rows[i]`` of part ``part_ids[i]`` (any order, subsets)."""
    dest = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    if shape[0]:
        for pi, part in enumerate(parts):
            where = np.flatnonzero(part_ids == pi)
            if len(where):
                src = part.array(name)
                for start in range(0, len(where), 256):
                    sel = where[start:start + 256]
                    dest[sel] = src[rows[sel]]
    dest.flush()
    del dest


def class_counts(index: pd.DataFrame, task: TaskSpec, root: Path) -> dict:
    """Samples per class and split (classification) or pixels per class and split (masks)."""
    rows = index[index["task"] == task.rows] if "task" in index.columns else index
    out: dict[str, dict[str, int]] = {}
    if task.type == "classification":
        for split, grp in rows.groupby("split"):
            vc = grp[task.target].value_counts()
            out[str(split)] = {task.classes[int(k)]: int(vc.get(k, 0))
                               for k in range(len(task.classes))}
    elif task.type == "segmentation":
        arr_path = root / ARRAYS / f"{task.target}.npy"
        if arr_path.exists() and len(rows):
            arr = np.load(arr_path, mmap_mode="r")
            if arr.shape[0] == len(index):
                nc = len(task.classes)
                for split, grp in rows.groupby("split"):
                    counts = np.zeros(nc, dtype=np.int64)
                    idx = grp.index.to_numpy()
                    for s in range(0, len(idx), 256):
                        counts += np.bincount(np.asarray(arr[idx[s:s + 256]]).ravel(),
                                              minlength=nc)[:nc]
                    out[str(split)] = {task.classes[k]: int(counts[k]) for k in range(nc)}
    return out


def write_footprints(path: Path, frames: Any) -> None:
    """Write one GeoPackage layer per CRS (a GeoPackage layer holds a single CRS)."""
    frames = frames if isinstance(frames, list) else [frames]
    tmp = path.with_name(path.name + ".tmp.gpkg")
    if tmp.exists():
        tmp.unlink()
    for i, gdf in enumerate(frames):
        layer = "footprints" if len(frames) == 1 else f"footprints_{i}"
        if gdf.crs is not None:
            gdf.to_file(tmp, layer=layer, driver="GPKG", engine="pyogrio", append=tmp.exists())
            continue
        with warnings.catch_warnings():  # no CRS: footprints in pixel coordinates, on purpose
            warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
            gdf.to_file(tmp, layer=layer, driver="GPKG", engine="pyogrio", append=tmp.exists())
    os.replace(tmp, path)
