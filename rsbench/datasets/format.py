"""The rsbench dataset format: one folder layout written by every builder, read by one reader.

A finished dataset folder holds
- ``dataset.json``: the manifest (written last; a folder without it is incomplete),
- ``index.parquet``: one row per sample (sample id, task group, split, labels, source, window),
- ``arrays/<name>.npy``: memory-mappable arrays; ``layout: sample`` arrays have row i = index
  row i, ``layout: raster`` arrays are stored once and samples are windows into them,
- optional ``footprints.gpkg`` and ``preview/*.png``.

Builders stream samples into per-source *parts* inside a staging folder (``.staging/``), so an
interrupted build resumes without redoing finished sources, then :meth:`DatasetWriter.finalize`
gathers the parts into the final arrays and writes the manifest atomically.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsbench import __version__
from rsbench.diskspace import require_free
from rsbench.errors import InputError, UsageError

FORMAT_NAME = "rsbench-dataset"
FORMAT_VERSION = 1
MANIFEST = "dataset.json"
INDEX = "index.parquet"
ARRAYS = "arrays"
STAGING = ".staging"
PARTS = "parts"
FOOTPRINTS = "footprints.gpkg"
PREVIEW = "preview"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks into one reused buffer (bounded memory, no per-chunk
    allocations)."""
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def describe_source(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict:
    """Manifest entry for a source file: path (relative to ``root``), size and SHA-256."""
    p = Path(path)
    rel = os.path.relpath(p, root) if root is not None else str(p)
    return {"path": rel, "size": p.stat().st_size, "sha256": sha256_file(p)}


def _short(value: Any, limit: int = 60) -> str:
    """A value for a one-line message, cut to ``limit`` characters."""
    text = json.dumps(value, default=json_default)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def atomic_write_text(path: Path, text: str) -> None:
    """Write text via a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------------------------
# Parts: per-source staging output, appended sample by sample with bounded memory.
# --------------------------------------------------------------------------------------------


class PartWriter:
    """Appends samples of one source to raw array files in the staging folder.

    Arrays are appended as raw bytes (no need to know the sample count up front); the part
    becomes visible to :class:`DatasetWriter` only when :meth:`close` renames it into place.
    """

    def __init__(self, staging: str | os.PathLike, key: str):
        self.final_dir = Path(staging) / PARTS / key
        self.tmp_dir = Path(staging) / PARTS / (key + ".tmp")
        if self.tmp_dir.exists():
            shutil.rmtree(self.tmp_dir)
        self.tmp_dir.mkdir(parents=True)
        self._files: dict[str, Any] = {}
        self._meta: dict[str, dict] = {}
        self._rows: list[dict] = []
        self.count = 0

    def append(self, row: Mapping[str, Any], **arrays: np.ndarray) -> None:
        """Add one sample: its index row and one array per name (all samples same shape)."""
        self.append_many([row], **{name: np.asarray(arr)[None] for name, arr in arrays.items()})

    def append_many(self, rows: Sequence[Mapping[str, Any]], **arrays: np.ndarray) -> None:
        """Add ``len(rows)`` samples at once: each array holds them stacked on axis 0."""
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            if arr.shape[0] != len(rows):
                raise ValueError(f"array {name!r}: {arr.shape[0]} samples for {len(rows)} rows")
            meta = self._meta.get(name)
            if meta is None:
                self._meta[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape[1:])}
                self._files[name] = open(self.tmp_dir / f"{name}.bin", "wb")  # noqa: SIM115
            elif list(arr.shape[1:]) != meta["shape"] or arr.dtype.str != meta["dtype"]:
                raise ValueError(
                    f"array {name!r}: sample of shape {arr.shape[1:]} {arr.dtype} after "
                    f"{meta['shape']} {meta['dtype']}"
                )
            self._files[name].write(memoryview(arr.reshape(-1)))
        self._rows.extend(dict(r) for r in rows)
        self.count += len(rows)

    def close(self, info: Mapping[str, Any] | None = None) -> None:
        """Finish the part atomically; ``info`` is per-source metadata kept for the manifest."""
        for f in self._files.values():
            f.close()
        pd.DataFrame(self._rows).to_parquet(self.tmp_dir / "rows.parquet")
        meta = {"count": self.count, "arrays": self._meta, "info": dict(info or {})}
        (self.tmp_dir / "part.json").write_text(json.dumps(meta, default=json_default))
        if self.final_dir.exists():
            shutil.rmtree(self.final_dir)
        os.replace(self.tmp_dir, self.final_dir)

    def abort(self) -> None:
        for f in self._files.values():
            f.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


@dataclass
class Part:
    """A finished part read back from staging."""

    key: str
    path: Path
    count: int
    arrays: dict[str, dict]
    info: dict

    def rows(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "rows.parquet")

    def array(self, name: str) -> np.ndarray:
        meta = self.arrays[name]
        shape = (self.count, *meta["shape"])
        if self.count == 0:
            return np.zeros(shape, dtype=np.dtype(meta["dtype"]))
        return np.memmap(self.path / f"{name}.bin", dtype=np.dtype(meta["dtype"]), mode="r",
                         shape=shape)


# --------------------------------------------------------------------------------------------
# The writer.
# --------------------------------------------------------------------------------------------


@dataclass
class TaskSpec:
    """One task of a dataset, as stored in the manifest.

    ``rows`` is the value of the index column ``task`` that selects this task's samples (tasks
    that share images, like PSC's scene and segmentation tasks, share a value). ``target`` is an
    index column (classification/regression) or an array name (segmentation masks).
    """

    name: str
    type: str  # classification | segmentation | regression
    rows: str
    target: str
    classes: list[str] = field(default_factory=list)
    colors: list[list[int]] | None = None
    ignore_index: int | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {"type": self.type, "rows": self.rows, "target": self.target,
             "classes": list(self.classes)}
        if self.colors is not None:
            d["colors"] = [list(map(int, c)) for c in self.colors]
        if self.ignore_index is not None:
            d["ignore_index"] = int(self.ignore_index)
        d.update(self.extra)
        return d


class DatasetWriter:
    """Writes a dataset folder atomically, with resumable per-source parts.

    Refuses an ``out`` that already holds a finished dataset, and an interrupted one unless
    ``resume`` is set (then finished parts are kept and their sources skipped).
    """

    def __init__(self, out: str | os.PathLike, *, builder: str, params: Mapping[str, Any],
                 resume: bool = False):
        self.out = Path(out)
        self.builder = builder
        self.params = dict(params)
        self.staging = self.out / STAGING
        if (self.out / MANIFEST).exists():
            raise UsageError(
                f"{self.out} already holds a finished dataset ({MANIFEST} exists); "
                "choose another --out or delete that folder first"
            )
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} is a file, not a folder")
        started = self.staging / "build.json"
        if started.exists():
            if not resume:
                raise UsageError(
                    f"{self.out} holds an interrupted build; rerun with --resume to continue it, "
                    "or delete the folder to start over"
                )
            previous = json.loads(started.read_text()).get("params") or {}
            now = json.loads(json.dumps(self.params, default=json_default))
            if previous != now:
                differ = sorted(k for k in {*previous, *now} if previous.get(k) != now.get(k))
                shown = ", ".join(f"{k}: {_short(previous.get(k))} then, {_short(now.get(k))} now"
                                  for k in differ[:4])
                raise UsageError(
                    f"{self.out} holds an interrupted build made with other options ({shown}"
                    f"{', ...' if len(differ) > 4 else ''}); resume it with the same options or "
                    "delete it"
                )
        else:
            if self.out.exists() and any(p.name != STAGING for p in self.out.iterdir()):
                raise UsageError(
                    f"--out {self.out} is not empty and holds no rsbench build; "
                    "choose an empty or new folder"
                )
            (self.staging / PARTS).mkdir(parents=True, exist_ok=True)
            atomic_write_text(started, json.dumps(
                {"builder": builder, "params": self.params}, default=json_default))

    # parts ------------------------------------------------------------------------------------
    def part_done(self, key: str) -> bool:
        return (self.staging / PARTS / key / "part.json").exists()

    def part_writer(self, key: str) -> PartWriter:
        return PartWriter(self.staging, key)

    def parts(self, keys: Sequence[str]) -> list[Part]:
        out = []
        for key in keys:
            path = self.staging / PARTS / key
            meta = json.loads((path / "part.json").read_text())
            out.append(Part(key, path, meta["count"], meta["arrays"], meta.get("info", {})))
        return out

    def load_index(self, keys: Sequence[str]) -> pd.DataFrame:
        """All part rows in ``keys`` order, with ``_part``/``_row`` locating their arrays."""
        frames = []
        for i, part in enumerate(self.parts(keys)):
            rows = part.rows()
            rows["_part"] = i
            rows["_row"] = np.arange(len(rows))
            frames.append(rows)
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame({"_part": [], "_row": []})
        return pd.concat(frames, ignore_index=True)

    # finish -----------------------------------------------------------------------------------
    def finalize(
        self,
        index: pd.DataFrame,
        *,
        keys: Sequence[str],
        name: str,
        tasks: Iterable[TaskSpec],
        sources: Sequence[dict],
        extra: Mapping[str, Any] | None = None,
        raster_arrays: Mapping[str, dict] | None = None,
        footprints: Any | None = None,
        previews: Any | None = None,
        counts: Mapping[str, dict] | None = None,
    ) -> dict:
        """Gather part arrays for ``index`` rows (in that order), write everything, manifest last.

        ``raster_arrays`` maps array names to ``{"file": staged path, "window_columns": [...]}``
        for arrays stored once and indexed by windows. ``footprints`` is a GeoDataFrame (or a
        list of them, one per CRS) and ``previews`` a callable ``(out_dir, dataset)`` run before
        the manifest is written. ``counts`` gives a task's per-split class counts when the
        builder already has them (saves a pass over large mask arrays).
        """
        parts = self.parts(keys)
        index = index.reset_index(drop=True)
        arrays_dir = self.out / ARRAYS
        arrays_dir.mkdir(parents=True, exist_ok=True)
        names = sorted({n for p in parts for n in p.arrays})
        n = len(index)
        part_ids = index["_part"].to_numpy() if "_part" in index.columns else np.zeros(0, int)
        part_rows = index["_row"].to_numpy() if "_row" in index.columns else np.zeros(0, int)
        # array metadata first (shapes are known), data later
        array_meta: dict[str, dict] = {}
        for aname in names:
            meta = next(p.arrays[aname] for p in parts if aname in p.arrays)
            array_meta[aname] = {"file": f"{ARRAYS}/{aname}.npy", "layout": "sample",
                                 "dtype": np.dtype(meta["dtype"]).name,
                                 "shape": [n, *meta["shape"]]}
        for aname, spec in (raster_arrays or {}).items():
            src = Path(spec["file"])
            final = arrays_dir / f"{aname}.npy"
            os.replace(src, final)
            arr = np.load(final, mmap_mode="r")
            array_meta[aname] = {"file": f"{ARRAYS}/{aname}.npy", "layout": "raster",
                                 "dtype": arr.dtype.name, "shape": list(arr.shape),
                                 "window_columns": list(spec["window_columns"])}
            for k, v in spec.items():
                if k not in ("file", "window_columns"):
                    array_meta[aname][k] = v
        final_index = index.drop(columns=[c for c in ("_part", "_row") if c in index.columns])
        if "sample_id" not in final_index.columns:
            final_index.insert(0, "sample_id", np.arange(n))

        tasks = list(tasks)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": name,
            "builder": self.builder,
            "parameters": self.params,
            "rsbench_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "num_samples": n,
            "splits": {str(k): int(v) for k, v in final_index["split"].value_counts()
                       .sort_index().items()} if n else {},
            "arrays": array_meta,
            "tasks": {t.name: t.to_json() for t in tasks},
            "sources": list(sources),
        }
        if extra:
            manifest.update(extra)
        # counts that need the written arrays (masks without builder-supplied counts) wait
        pending = [t for t in tasks if t.name not in (counts or {})
                   and t.type == "segmentation"]
        for t in tasks:
            if t.name in (counts or {}):
                manifest["tasks"][t.name]["counts"] = dict(counts[t.name])
            elif t not in pending:
                manifest["tasks"][t.name]["counts"] = class_counts(final_index, t, self.out)

        # previews drawn from the staged parts while the arrays are copied into place (the
        # copy runs in the kernel, the drawing in Python: they overlap on two cores)
        drawing = None
        if previews is not None:
            (self.out / PREVIEW).mkdir(exist_ok=True)
            if not pending:
                view = Dataset(self.out, manifest=manifest, index=final_index)
                # the final sample arrays are still being written: read rows from the parts
                view._arrays.update({a: _PartRows(parts, a, part_ids, part_rows)
                                     for a in names})
                drawing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="previews")
                drawn = drawing.submit(previews, self.out / PREVIEW, view)
        require_free(arrays_dir, sum(int(np.prod(array_meta[a]["shape"], dtype=np.int64))
                                     * np.dtype(array_meta[a]["dtype"]).itemsize
                                     for a in names), "the final arrays")
        try:
            in_part_order = bool(names) and _whole_parts_in_order(part_ids, part_rows, parts)
            for aname in names:
                meta = array_meta[aname]
                tmp = arrays_dir / f"{aname}.npy.tmp"
                shape = tuple(meta["shape"])
                if in_part_order:
                    _concatenate_parts(tmp, [p for p in parts if p.count], aname,
                                       np.dtype(meta["dtype"]), shape)
                else:
                    _gather_rows(tmp, part_ids, part_rows, parts, aname,
                                 np.dtype(meta["dtype"]), shape)
                os.replace(tmp, arrays_dir / f"{aname}.npy")
            final_index.to_parquet(self.out / (INDEX + ".tmp"), index=False)
            os.replace(self.out / (INDEX + ".tmp"), self.out / INDEX)
            if footprints is not None:
                write_footprints(self.out / FOOTPRINTS, footprints)
            for t in pending:
                manifest["tasks"][t.name]["counts"] = class_counts(final_index, t, self.out)
            if previews is not None and drawing is None:
                previews(self.out / PREVIEW, Dataset(self.out, manifest=manifest,
                                                     index=final_index))
        finally:
            if drawing is not None:
                drawing.shutdown(wait=True)
        if drawing is not None:
            drawn.result()  # re-raise a failure of the previews here
        atomic_write_text(self.out / MANIFEST, json.dumps(manifest, indent=2,
                                                           default=json_default))
        shutil.rmtree(self.staging, ignore_errors=True)
        return manifest


class _PartRows:
    """Row ``i`` of a sample array, read from the staged part that holds it."""

    def __init__(self, parts: Sequence[Part], name: str, part_ids: np.ndarray,
                 rows: np.ndarray):
        self.parts, self.name, self.part_ids, self.rows = parts, name, part_ids, rows

    def __getitem__(self, i: int) -> np.ndarray:
        return self.parts[int(self.part_ids[i])].array(self.name)[int(self.rows[i])]


def _whole_parts_in_order(part_ids: np.ndarray, rows: np.ndarray,
                          parts: Sequence[Part]) -> bool:
    """True when the index rows (``part_ids``, ``rows``) list every row of every part, part
    after part, rows in order."""
    if not len(part_ids):
        return False
    expect_parts = np.repeat(np.arange(len(parts)), [p.count for p in parts])
    expect_rows = np.concatenate([np.arange(p.count) for p in parts])
    return (len(part_ids) == len(expect_parts) and np.array_equal(part_ids, expect_parts)
            and np.array_equal(rows, expect_rows))


def _concatenate_parts(tmp: Path, parts: Sequence[Part], name: str, dtype: np.dtype,
                       shape: tuple[int, ...]) -> None:
    """Write an .npy of the parts' raw files back to back, copied inside the kernel."""
    sample_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    with open(tmp, "wb") as dst:
        np.lib.format.write_array_header_1_0(
            dst, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                  "shape": shape})
        dst.flush()
        for part in parts:
            path = part.path / f"{name}.bin"
            with open(path, "rb") as src:
                size = os.fstat(src.fileno()).st_size
                if size != part.count * sample_bytes:
                    raise InputError(f"{path} holds {size} bytes, not {part.count} samples; the "
                                     "staged part is damaged: delete it and build with --resume")
                _copy_file(src, dst, size)


def _copy_file(src, dst, size: int) -> None:
    """Append ``size`` bytes of ``src`` to ``dst`` (copy_file_range where the OS has it)."""
    copy_range = getattr(os, "copy_file_range", None)
    done = 0
    if copy_range is not None:
        try:
            while done < size:
                n = copy_range(src.fileno(), dst.fileno(), size - done)
                if n == 0:
                    break
                done += n
        except OSError:
            pass
    if done < size:
        src.seek(done)
        dst.seek(0, os.SEEK_END)
        shutil.copyfileobj(src, dst, 16 << 20)


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
        gdf.to_file(tmp, layer=layer, driver="GPKG", engine="pyogrio",
                    append=tmp.exists())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# The reader.
# --------------------------------------------------------------------------------------------


def read_manifest(path: str | os.PathLike, hint: str | None = None) -> dict:
    """The manifest of a finished dataset, or a clear error for anything else.

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
            raise InputError(
                f"{root} is an unfinished build (no {MANIFEST}); rerun the builder with "
                "--resume to finish it"
            )
        raise InputError(f"{root} is not an rsbench dataset (no {MANIFEST}); "
                         + (hint or "build one first, e.g. `rsbench build-psc`"))
    try:
        manifest = json.loads(mf.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{mf} is not valid JSON ({exc}); rebuild the dataset") from None
    if manifest.get("format") != FORMAT_NAME:
        raise InputError(f"{mf} is not an rsbench dataset manifest")
    missing = [k for k in ("builder", "num_samples", "arrays", "tasks") if k not in manifest]
    if missing:
        raise InputError(f"{mf} lacks {', '.join(repr(k) for k in missing)}; it is not a "
                         "complete dataset manifest: copy the dataset folder again or rebuild it")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(
            f"{root} uses dataset format version {manifest['format_version']}, newer than this "
            f"rsbench ({__version__}) reads; upgrade rsbench"
        )
    return manifest


class Dataset:
    """A finished dataset folder: manifest, index, memory-mapped arrays and sample access."""

    def __init__(self, path: str | os.PathLike, *, manifest: dict | None = None,
                 index: pd.DataFrame | None = None, hint: str | None = None):
        self.root = Path(path)
        self.manifest = manifest if manifest is not None else read_manifest(self.root, hint)
        self._index = index
        self._arrays: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.root.name)

    @property
    def index(self) -> pd.DataFrame:
        if self._index is None:
            path = self.root / INDEX
            if not path.is_file():
                raise InputError(f"{path} is missing; the dataset folder is incomplete: copy it "
                                 "again or rebuild it")
            try:
                self._index = pd.read_parquet(path)
            except PermissionError:
                raise InputError(f"{path} cannot be read (permission denied); fix its "
                                 "permissions") from None
            except (OSError, ValueError) as exc:
                raise InputError(f"{path} cannot be read as a Parquet index ({exc}); copy the "
                                 "dataset folder again or rebuild it") from None
        return self._index

    @property
    def tasks(self) -> dict[str, dict]:
        return self.manifest["tasks"]

    def task(self, name: str) -> dict:
        if name not in self.tasks:
            raise UsageError(f"{self.root} has no task {name!r}; it has: {', '.join(self.tasks)}")
        return self.tasks[name]

    def array(self, name: str) -> np.ndarray:
        """A stored array, memory-mapped read-only."""
        if name not in self._arrays:
            meta = self.manifest["arrays"].get(name)
            if meta is None:
                raise UsageError(f"{self.root} has no array {name!r}")
            path = self.root / meta["file"]
            if not path.exists():
                raise InputError(f"{path} is missing; the dataset folder is damaged, rebuild it")
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
        meta = self.manifest["arrays"][name]
        arr = self.array(name)
        if meta.get("layout", "sample") == "sample":
            return arr[i]
        r, c, h, w = (int(self.index.at[i, col]) for col in meta["window_columns"])
        return arr[r:r + h, c:c + w]

    def summary(self) -> str:
        """A plain-text summary: tasks, classes and counts per split."""
        m = self.manifest
        lines = [f"{self.root}: {m.get('name')} built by {m['builder']} "
                 f"(rsbench {m['rsbench_version']}, format v{m['format_version']})",
                 f"samples: {m['num_samples']}  splits: "
                 + ", ".join(f"{k} {v}" for k, v in m.get("splits", {}).items())]
        for aname, meta in m["arrays"].items():
            lines.append(f"array {aname}: {meta['dtype']} {'x'.join(map(str, meta['shape']))} "
                         f"({meta.get('layout', 'sample')})")
        for tname, t in m["tasks"].items():
            lines.append("")
            lines.append(f"task {tname} ({t['type']}, {len(t['classes'])} classes)")
            lines.append(format_count_table(t))
        return "\n".join(lines)


def format_count_table(task: Mapping[str, Any]) -> str:
    """Class × split count table as aligned text."""
    counts: dict[str, dict[str, int]] = task.get("counts", {})
    splits = sorted(counts, key=lambda s: ({"train": 0, "val": 1, "test": 2}.get(s, 3), s))
    if not splits:
        return "  (no counts)"
    classes = task["classes"]
    width = max(8, *(len(c) for c in classes))
    head = "  " + "class".ljust(width) + "".join(s.rjust(12) for s in splits) + "total".rjust(12)
    out = [head]
    for c in classes:
        vals = [counts[s].get(c, 0) for s in splits]
        out.append("  " + c.ljust(width) + "".join(f"{v:12d}" for v in vals)
                   + f"{sum(vals):12d}")
    tot = [sum(counts[s].values()) for s in splits]
    out.append("  " + "total".ljust(width) + "".join(f"{v:12d}" for v in tot)
               + f"{sum(tot):12d}")
    return "\n".join(out)


def open_dataset(path: str | os.PathLike, hint: str | None = None) -> Dataset:
    """Open a finished rsbench dataset folder (refuses unfinished or foreign folders);
    ``hint`` tells the user how to build the expected dataset when ``path`` is not one."""
    return Dataset(path, hint=hint)
