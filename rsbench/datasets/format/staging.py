"""The staging folder of a build (``OUT/.staging``): its names, the parts read back from it,
its clean-up, and what ``--resume`` will do with it.

Kept below the writer, finalize, the reader and the summary, which all need these and none
of each other's.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rsbench.datasets.format.manifest import ARRAYS, MANIFEST, PARTS, STAGING
from rsbench.locking import LOCK_NAME, active_holder

STAGES = "stages"
RASTERS = "rasters"
STREAMS = "streams"  # sample arrays that sequential parts append to, back to back
STREAM_HEADER = 128  # bytes kept free at a stream's start for the final .npy header
TRASH = ".staging-done"  # the staging folder is renamed to this before it is deleted
BUILD = "build.json"
# files a lock or an interrupted clean-up may leave in an output folder that holds no build
_LEFTOVERS = {STAGING, TRASH, LOCK_NAME}
JOURNAL = "finalize.json"  # finalize's last finished step


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

    def source(self, name: str) -> tuple[Path, int]:
        """The file holding array ``name`` of this part and the byte offset of its first
        sample: the part's own file, or a stream (once finalize adopted it, the final array,
        where the bytes lie at the same offsets)."""
        meta = self.arrays[name]
        if "stream" not in meta:
            return self.path / f"{name}.bin", 0
        stream = self.path.parent.parent / STREAMS / meta["stream"]
        if not stream.exists():
            stream = self.path.parent.parent.parent / ARRAYS / meta["stream"]
        return stream, int(meta["offset"])

    def array(self, name: str) -> np.ndarray:
        meta = self.arrays[name]
        shape = (self.count, *meta["shape"])
        if self.count == 0:
            return np.zeros(shape, dtype=np.dtype(meta["dtype"]))
        for retry in (False, True):
            path, offset = self.source(name)
            try:
                return np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r", shape=shape,
                                 offset=offset)
            except FileNotFoundError:  # finalize adopted the stream just now: read it there
                if retry:
                    raise
        raise AssertionError("unreachable")


def stream_end(staging: Path, name: str) -> int:
    """Where the next part appends to stream ``name``: after the last finished part in it
    (bytes beyond belong to an interrupted part and are overwritten)."""
    end = STREAM_HEADER
    for meta_path in (staging / PARTS).glob("*/part.json"):
        meta = json.loads(meta_path.read_text())
        arr = meta["arrays"].get(name) or {}
        if arr.get("stream") == f"{name}.npy":
            sample = int(np.prod(arr["shape"], dtype=np.int64)) * np.dtype(arr["dtype"]).itemsize
            end = max(end, int(arr["offset"]) + meta["count"] * sample)
    return end


def last_step(staging: Path) -> str | None:
    """The last finished finalize step recorded in ``staging`` (None if finalize never ran)."""
    try:
        return json.loads((staging / JOURNAL).read_text()).get("done")
    except (FileNotFoundError, ValueError, AttributeError):
        return None


def retire_staging(out: Path) -> None:
    """Rename ``.staging`` away in one step (deleting it can then be interrupted harmlessly)."""
    if (out / STAGING).exists():
        if (out / TRASH).exists():
            shutil.rmtree(out / TRASH)
        os.replace(out / STAGING, out / TRASH)


def remove_leftovers(out: Path, staging: bool = False) -> None:
    """Delete an interrupted clean-up's renamed staging folder, and ``.staging`` itself when
    ``staging`` or when the dataset is finished; renamed before deleted, so a kill never leaves
    half a staging folder."""
    if staging or (out / MANIFEST).exists():
        retire_staging(out)
    if (out / TRASH).exists():
        shutil.rmtree(out / TRASH)


def builder_running(root: str | Path) -> str | None:
    """"process <pid> (<what>)" when a live process holds the folder's build lock, else None."""
    held = active_holder(Path(root))
    if held is None:
        return None
    pid, what = held
    return f"process {pid if pid is not None else '?'} ({what or 'a build'})"


def resume_plan(root: str | Path) -> str:
    """What ``--resume`` will do with the unfinished build in ``root``, in one clause."""
    root = Path(root)
    staging = root / STAGING
    if (root / MANIFEST).exists():
        return "the dataset is finished; --resume has nothing to do"
    try:
        builder = json.loads((staging / BUILD).read_text()).get("builder", "the builder")
    except (OSError, ValueError, AttributeError):
        return "no build was recorded: a build without --resume starts afresh"
    parts = sorted(p.parent.name for p in (staging / PARTS).glob("*/part.json"))
    stages = sorted(p.stem for p in (staging / STAGES).glob("*.json"))
    step = last_step(staging)
    if step is not None:
        return (f"{builder} was finalizing (last finished step: {step}); --resume redoes "
                "finalize from the staged data, reading no source again")
    if not parts and not stages:
        return (f"{builder} finished nothing yet; the same command with or without --resume "
                "starts afresh")
    done = [f"{len(parts)} finished part(s)"] if parts else []
    if stages:
        done.append(f"finished pass(es): {', '.join(stages)}")
    return (f"{builder} kept {' and '.join(done)}; --resume reads only the rest of the "
            "sources, then finalizes")
