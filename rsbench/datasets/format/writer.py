"""Writing a dataset folder: a locked staging folder of resumable parts, stages and rasters.

Builders stream samples into per-source *parts* (``.staging/parts/<key>/``), record finished
whole-dataset passes as *stages* (``.staging/stages/<key>.json``) and write large rasters row
block by row block (``.staging/rasters/<name>.npy``); :meth:`DatasetWriter.finalize` (see
:mod:`rsbench.datasets.format.finalize`) then gathers them into the finished folder, manifest last.
Each part and stage becomes visible with one rename, so a kill leaves it finished or absent.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsbench.datasets.format.finalize import finalize
from rsbench.datasets.format.manifest import (
    MANIFEST,
    PARTS,
    STAGING,
    atomic_write_text,
    json_default,
)
from rsbench.datasets.format.staging import (
    _LEFTOVERS,
    BUILD,
    RASTERS,
    STAGES,
    STREAMS,
    Part,
    remove_leftovers,
    stream_end,
)
from rsbench.errors import InputError, RsbenchError, UsageError
from rsbench.interrupts import ctrl_c_outside_imports
from rsbench.locking import LOCK_NAME, folder_lock


def _short(value: Any, limit: int = 60) -> str:
    """A value for a one-line message, cut to ``limit`` characters."""
    text = json.dumps(value, default=json_default)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PartWriter:
    """Appends samples of one source to raw array files in the staging folder.

    Arrays are appended as raw bytes (no need to know the sample count up front); the part
    becomes visible to :class:`DatasetWriter` only when :meth:`close` renames it into place.
    With ``stream`` (one writer at a time: a sequential build), each array is appended to a
    stream shared by the parts (``.staging/streams/<name>.npy``) at a recorded offset, so when
    the parts end up in the dataset in their order, finalize adopts the stream as the final
    array instead of copying it: the samples are written once.
    """

    def __init__(self, staging: str | os.PathLike, key: str, stream: bool = False):
        self.staging = Path(staging)
        self.stream = stream
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
                self._files[name] = self._open_array(name)
            elif list(arr.shape[1:]) != meta["shape"] or arr.dtype.str != meta["dtype"]:
                raise ValueError(
                    f"array {name!r}: sample of shape {arr.shape[1:]} {arr.dtype} after "
                    f"{meta['shape']} {meta['dtype']}"
                )
            self._files[name].write(memoryview(arr.reshape(-1)))
        self._rows.extend(dict(r) for r in rows)
        self.count += len(rows)

    def _open_array(self, name: str):
        if not self.stream:
            return open(self.tmp_dir / f"{name}.bin", "wb")  # noqa: SIM115 - closed in close()
        path = self.staging / STREAMS / f"{name}.npy"
        path.parent.mkdir(exist_ok=True)
        start = stream_end(self.staging, name)
        f = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - closed in close()
        f.truncate(start)  # drops an interrupted part's bytes; zero-fills a new header
        f.seek(start)
        self._meta[name].update(stream=path.name, offset=start)
        return f

    def close(self, info: Mapping[str, Any] | None = None) -> None:
        """Finish the part atomically; ``info`` is per-source metadata (reports included) kept
        for the manifest, so it survives ``--resume``."""
        for f in self._files.values():
            f.close()
        pd.DataFrame(self._rows).to_parquet(self.tmp_dir / "rows.parquet")
        meta = {"count": self.count, "arrays": self._meta, "info": dict(info or {})}
        (self.tmp_dir / "part.json").write_text(json.dumps(meta, default=json_default))
        if self.final_dir.exists():
            shutil.rmtree(self.final_dir)
        os.replace(self.tmp_dir, self.final_dir)

    def abort(self) -> None:
        for name, f in self._files.items():
            if "offset" in self._meta[name]:  # give back the stream bytes this part wrote
                f.truncate(self._meta[name]["offset"])
            f.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


class RasterWriter:
    """A staged .npy raster written row block by row block with plain file writes (bounded
    memory); :meth:`DatasetWriter.raster` opens one, a finished stage makes it durable."""

    def __init__(self, path: Path, dtype: Any, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape = path, np.dtype(dtype), tuple(shape)
        path.parent.mkdir(parents=True, exist_ok=True)
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=self.shape)
        self.offset = mm.offset
        del mm
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self.f = open(path, "r+b")  # noqa: SIM115 - closed by close()

    def write_rows(self, r0: int, block: np.ndarray) -> None:
        self.f.seek(self.offset + r0 * self.row_bytes)
        self.f.write(memoryview(np.ascontiguousarray(block, dtype=self.dtype)).cast("B"))

    def close(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()


class DatasetWriter:
    """Writes one dataset folder, holding its lock from construction to :meth:`close`.

    Refuses an ``out`` that holds a finished dataset (with ``resume`` it records the finished
    manifest in :attr:`finished` instead: there is nothing left to do) and an interrupted build
    with finished work unless ``resume`` is set. A staging folder without any finished part or
    stage (a build that failed on bad input) is cleared, so the corrected command just works.
    """

    def __init__(self, out: str | os.PathLike, *, builder: str, params: Mapping[str, Any],
                 resume: bool = False):
        self.out = Path(out)
        self.builder = builder
        self.params = json.loads(json.dumps(dict(params), default=json_default))
        self.staging = self.out / STAGING
        self.finished: dict | None = None
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} is a file, not a folder; choose a folder")
        self._created = not self.out.exists()
        self._lock: ExitStack | None = ExitStack()
        try:
            self._lock.enter_context(folder_lock(self.out, f"rsbench {builder}"))
            self._open(resume)
        except BaseException:
            self.close()
            raise

    def _open(self, resume: bool) -> None:
        if (self.out / MANIFEST).exists():
            if not resume:
                raise UsageError(f"{self.out} already holds a finished dataset ({MANIFEST} "
                                 "exists); choose another --out or delete that folder first")
            self.finished = json.loads((self.out / MANIFEST).read_text())
            remove_leftovers(self.out)
            return
        started = self.staging / BUILD
        if started.exists() and not self.has_finished_work():
            remove_leftovers(self.out, staging=True)  # nothing finished: start afresh
        elif started.exists():
            if not resume:
                raise UsageError(
                    f"{self.out} holds an interrupted build; rerun with --resume to continue it, "
                    "or delete the folder to start over"
                )
            previous = json.loads(started.read_text()).get("params") or {}
            if previous != self.params:
                now = self.params
                differ = sorted(k for k in {*previous, *now} if previous.get(k) != now.get(k))
                shown = ", ".join(f"{k}: {_short(previous.get(k))} then, {_short(now.get(k))} now"
                                  for k in differ[:4])
                raise UsageError(
                    f"{self.out} holds an interrupted build made with other options ({shown}"
                    f"{', ...' if len(differ) > 4 else ''}); resume it with the same options or "
                    "delete it"
                )
            return
        remove_leftovers(self.out)
        if any(p.name not in _LEFTOVERS for p in self.out.iterdir()):
            raise UsageError(f"--out {self.out} is not empty and holds no rsbench build; "
                             "choose an empty or new folder")
        (self.staging / PARTS).mkdir(parents=True, exist_ok=True)
        atomic_write_text(started, json.dumps({"builder": self.builder, "params": self.params}))

    def has_finished_work(self) -> bool:
        """True when staging holds a finished part, stage or begun finalize (worth resuming)."""
        return (any((self.staging / PARTS).glob("*/part.json"))
                or any((self.staging / STAGES).glob("*.json"))
                or (self.out / "arrays").exists())

    # lock ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the folder lock (the builder protocol does this when the build ends)."""
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if (exc_type is not None and issubclass(exc_type, RsbenchError) and self._lock is not None
                and self.finished is None and not self.has_finished_work()):
            self._discard()  # bad input before any work finished: nothing worth keeping
        self.close()

    def _discard(self) -> None:
        """Remove the staging folder (and ``out`` itself if this build created it and it
        holds nothing else), while still holding the lock."""
        remove_leftovers(self.out, staging=True)
        if self._created and {p.name for p in self.out.iterdir()} <= {LOCK_NAME}:
            (self.out / LOCK_NAME).unlink(missing_ok=True)
            self.out.rmdir()

    def __del__(self) -> None:
        self.close()

    # parts --------------------------------------------------------------------------------
    def part_done(self, key: str) -> bool:
        return (self.staging / PARTS / key / "part.json").exists()

    def part_writer(self, key: str) -> PartWriter:
        return PartWriter(self.staging, key)

    def parts(self, keys: Sequence[str]) -> list[Part]:
        out = []
        for key in keys:
            path = self.staging / PARTS / key
            try:
                meta = json.loads((path / "part.json").read_text())
            except FileNotFoundError:
                raise InputError(f"{path} is missing from the interrupted build; delete "
                                 f"{self.out} and build again") from None
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

    # stages and rasters -------------------------------------------------------------------
    def stage_info(self, key: str) -> dict | None:
        """The info a finished whole-dataset pass recorded, or None if it has not finished."""
        path = self.staging / STAGES / f"{key}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def finish_stage(self, key: str, info: Mapping[str, Any]) -> None:
        """Record pass ``key`` as finished (after its staged files are complete)."""
        (self.staging / STAGES).mkdir(exist_ok=True)
        atomic_write_text(self.staging / STAGES / f"{key}.json",
                          json.dumps(dict(info), default=json_default))

    def staged(self, name: str) -> Path:
        """Path of a staged file (a raster, a survey table) kept until the build finishes."""
        (self.staging / RASTERS).mkdir(exist_ok=True)
        return self.staging / RASTERS / name

    def raster(self, name: str, dtype: Any, shape: tuple[int, ...]) -> RasterWriter:
        """A new staged raster ``name``.npy of ``shape``, to be filled with ``write_rows``."""
        return RasterWriter(self.staged(f"{name}.npy"), dtype, shape)

    # finish -------------------------------------------------------------------------------
    def finalize(self, index: pd.DataFrame, **kwargs: Any) -> dict:
        """Write the finished dataset (see :func:`rsbench.datasets.format.finalize.finalize`)."""
        try:
            with ctrl_c_outside_imports():  # previews are drawn in a thread meanwhile
                return finalize(self, index, **kwargs)
        finally:
            self.close()
