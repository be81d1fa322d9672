"""The typed manifest (``dataset.json``) of an rsbench dataset folder: one schema, both ways.

The writer builds a :class:`Manifest` and writes ``Manifest.to_json()``; the reader parses the
file with :meth:`Manifest.from_json`, which checks what a received folder could get wrong
(missing keys, array files outside the folder, sizes that would allocate without bound), so
readers get the same types the writer used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsbench import __version__
from rsbench.datasets.format.safepaths import inside
from rsbench.errors import InputError

FORMAT_NAME = "rsbench-dataset"
FORMAT_VERSION = 1
MANIFEST = "dataset.json"
INDEX = "index.parquet"
ARRAYS = "arrays"
STAGING = ".staging"
PARTS = "parts"
FOOTPRINTS = "footprints.gpkg"
PREVIEW = "preview"
TASK_TYPES = ("classification", "segmentation", "regression")
# a confusion matrix of MAX_CLASSES² int64 is 128 MiB; a larger label space is refused on read
MAX_CLASSES = 4096


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks into one reused buffer (bounded memory)."""
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


def json_default(obj: Any) -> Any:
    """JSON encoding of numpy scalars/arrays and paths (for ``json.dumps(default=...)``)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_text(path: Path, text: str) -> None:
    """Write text via a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class TaskSpec:
    """One task of a dataset.

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
    counts: dict[str, dict[str, int]] | None = None

    def to_json(self) -> dict:
        d: dict[str, Any] = {"type": self.type, "rows": self.rows, "target": self.target,
                             "classes": list(self.classes)}
        if self.colors is not None:
            d["colors"] = [list(map(int, c)) for c in self.colors]
        if self.ignore_index is not None:
            d["ignore_index"] = int(self.ignore_index)
        d.update(self.extra)
        if self.counts is not None:
            d["counts"] = self.counts
        return d

    @classmethod
    def from_json(cls, name: str, d: Any, where: str) -> TaskSpec:
        here = f"{where}: tasks.{name}"
        if not isinstance(d, dict):
            raise InputError(f"{here} is not an object; rebuild the dataset")
        for key in ("type", "rows", "target"):
            if not isinstance(d.get(key), str):
                raise InputError(f"{here}.{key} is missing or not text; rebuild the dataset")
        if d["type"] not in TASK_TYPES:
            raise InputError(f"{here}.type {d['type']!r} is not one of {', '.join(TASK_TYPES)}")
        classes = d.get("classes", [])
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise InputError(f"{here}.classes is not a list of names; rebuild the dataset")
        seen: set[str] = set()
        twice = [c for c in classes if c in seen or seen.add(c)]
        if twice:
            raise InputError(f"{here}.classes names {twice[0]!r} twice; class names must be "
                             "unique (the manifest is damaged: rebuild the dataset)")
        if len(classes) > MAX_CLASSES:
            raise InputError(f"{here}.classes lists {len(classes)} classes, more than rsbench "
                             f"accepts ({MAX_CLASSES}); the manifest is damaged or not a "
                             "benchmark dataset")
        known = {"type", "rows", "target", "classes", "colors", "ignore_index", "counts"}
        ignore = d.get("ignore_index")
        return cls(name, d["type"], d["rows"], d["target"], list(classes), d.get("colors"),
                   None if ignore is None else int(ignore),
                   {k: v for k, v in d.items() if k not in known}, d.get("counts"))


@dataclass
class ArraySpec:
    """One stored array: ``arrays/<name>.npy``, per-sample rows or one raster with windows."""

    file: str
    dtype: str
    shape: list[int]
    layout: str = "sample"  # sample | raster
    window_columns: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d: dict[str, Any] = {"file": self.file, "layout": self.layout, "dtype": self.dtype,
                             "shape": [int(s) for s in self.shape]}
        if self.window_columns is not None:
            d["window_columns"] = list(self.window_columns)
        d.update(self.extra)
        return d

    @classmethod
    def from_json(cls, name: str, d: Any, where: str) -> ArraySpec:
        here = f"{where}: arrays.{name}"
        if not isinstance(d, dict) or not isinstance(d.get("file"), str):
            raise InputError(f"{here}.file is missing; rebuild the dataset")
        shape = d.get("shape")
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise InputError(f"{here}.shape {shape!r} is not a list of sizes; rebuild the dataset")
        try:
            np.dtype(d.get("dtype"))
        except TypeError:
            raise InputError(f"{here}.dtype {d.get('dtype')!r} is not an array type") from None
        layout, cols = d.get("layout", "sample"), d.get("window_columns")
        if layout not in ("sample", "raster"):
            raise InputError(f"{here}.layout {layout!r} is not 'sample' or 'raster'; the "
                             "manifest is damaged: rebuild the dataset")
        if layout == "raster" and not (isinstance(cols, list) and len(cols) == 4
                                       and all(isinstance(c, str) for c in cols)):
            raise InputError(f"{here}.window_columns must name the 4 index columns (row, col, "
                             "height, width) of a raster's windows; rebuild the dataset")
        known = {"file", "dtype", "shape", "layout", "window_columns"}
        return cls(d["file"], str(d["dtype"]), list(shape), layout,
                   cols, {k: v for k, v in d.items() if k not in known})


@dataclass
class Manifest:
    """Everything ``dataset.json`` holds; ``extra`` keeps the builder's own sections
    (``report``, ``taiga``, ``georeference``, ...) as they were written."""

    name: str
    builder: str
    parameters: dict
    num_samples: int
    splits: dict[str, int]
    arrays: dict[str, ArraySpec]
    tasks: dict[str, TaskSpec]
    sources: list[dict]
    created: str = ""
    rsbench_version: str = __version__
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {"format": FORMAT_NAME, "format_version": self.format_version, "name": self.name,
             "builder": self.builder, "parameters": self.parameters,
             "rsbench_version": self.rsbench_version, "created": self.created,
             "num_samples": int(self.num_samples), "splits": dict(self.splits),
             "arrays": {n: a.to_json() for n, a in self.arrays.items()},
             "tasks": {n: t.to_json() for n, t in self.tasks.items()},
             "sources": list(self.sources)}
        d.update(self.extra)
        return json.loads(json.dumps(d, default=json_default))

    @classmethod
    def from_json(cls, d: Any, where: str | os.PathLike) -> Manifest:
        """Parse and check a manifest; every problem is one line naming ``where`` and the key."""
        where = str(where)
        if not isinstance(d, dict) or d.get("format") != FORMAT_NAME:
            raise InputError(f"{where} is not an rsbench dataset manifest")
        version = d.get("format_version", 0)
        if not isinstance(version, int):
            raise InputError(f"{where}: format_version {version!r} is not a number")
        if version > FORMAT_VERSION:
            raise InputError(f"{where} uses dataset format version {version}, newer than this "
                             f"rsbench ({__version__}) reads; upgrade rsbench")
        missing = [k for k in ("builder", "num_samples", "arrays", "tasks") if k not in d]
        if missing:
            raise InputError(f"{where} lacks {', '.join(repr(k) for k in missing)}; it is not a "
                             "complete dataset manifest: copy the dataset folder again or "
                             "rebuild it")
        for key, kind in (("builder", str), ("num_samples", int), ("arrays", dict),
                          ("tasks", dict)):
            if not isinstance(d[key], kind):
                raise InputError(f"{where}: {key!r} has the wrong type; the manifest is "
                                 "damaged: copy the dataset folder again or rebuild it")
        if d["num_samples"] < 0:
            raise InputError(f"{where}: num_samples {d['num_samples']} is negative")
        for aname, a in d["arrays"].items():
            if (isinstance(a, dict) and a.get("layout", "sample") == "sample"
                    and isinstance(a.get("shape"), list) and a["shape"]
                    and a["shape"][0] != d["num_samples"]):
                raise InputError(f"{where}: arrays.{aname}.shape[0] is {a['shape'][0]} but "
                                 f"num_samples is {d['num_samples']}; rebuild the dataset")
        known = {"format", "format_version", "name", "builder", "parameters",
                 "rsbench_version", "created", "num_samples", "splits", "arrays", "tasks",
                 "sources"}
        return cls(
            name=str(d.get("name", "")), builder=d["builder"],
            parameters=d.get("parameters") or {}, num_samples=d["num_samples"],
            splits=dict(d.get("splits") or {}),
            arrays={n: ArraySpec.from_json(n, a, where) for n, a in d["arrays"].items()},
            tasks={n: TaskSpec.from_json(n, t, where) for n, t in d["tasks"].items()},
            sources=list(d.get("sources") or []), created=str(d.get("created", "")),
            rsbench_version=str(d.get("rsbench_version", "?")), format_version=version,
            extra={k: v for k, v in d.items() if k not in known})


def array_path(root: Path, spec: ArraySpec, name: str) -> Path:
    """The file of array ``name``, refused unless it lies inside the dataset folder."""
    return inside(root, spec.file, f"{root / MANIFEST}: arrays.{name}.file")


def check_array_file(path: Path, spec: ArraySpec, name: str, manifest_path: Path) -> None:
    """The .npy header on disk must match the manifest's dtype and shape, and the file must
    hold all its bytes: checked before the array is mapped, so nothing is allocated from a
    size that the file does not back."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except FileNotFoundError:
        raise InputError(f"{path} is missing; the dataset folder is damaged, rebuild it") \
            from None
    except PermissionError:
        raise InputError(f"{path} cannot be read (permission denied); fix its permissions") \
            from None
    except ValueError as exc:
        raise InputError(f"{path} is not a .npy array ({exc}); rebuild the dataset") from None
    if list(shape) != list(spec.shape) or np.dtype(dtype) != np.dtype(spec.dtype) or fortran:
        raise InputError(f"{path} holds {dtype} {list(shape)}, but {manifest_path} says "
                         f"arrays.{name} is {spec.dtype} {spec.shape}; rebuild the dataset")
    need = offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size < need:
        raise InputError(f"{path} is truncated ({size} of {need} bytes); rebuild the dataset "
                         "or copy it again")
