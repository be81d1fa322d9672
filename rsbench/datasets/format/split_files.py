"""Shareable split files: ``splits.csv`` in every dataset folder, ``--splits FILE`` on every
builder (issue 13).

A split file has one row per sample (or per TAIGA region) with a ``key`` that does not depend
on rsbench's sample order or seed (the source file, plus the pixel window where samples are
windows of a larger image; the stand or block for TAIGA) and its ``split``. Given to a builder
with ``--splits``, it reproduces that split exactly, whatever ``--seed``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rsbench.datasets.format.manifest import sha256_file
from rsbench.errors import InputError

SPLIT_FILE = "splits.csv"
MAX_SPLIT_FILE = 256 << 20  # ~4 million rows; more is not a split file (e.g. /dev/zero)


def _first(items: Iterable[str], n: int = 3) -> str:
    items = list(items)
    shown = ", ".join(map(str, items[:n]))
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def split_file_text(keys: Sequence[str], splits: Sequence[str]) -> str:
    """The CSV text of a split file, rows sorted by key (independent of sample order)."""
    frame = pd.DataFrame({"key": list(map(str, keys)), "split": list(map(str, splits))})
    buf = io.StringIO()
    frame.sort_values("key", kind="stable").to_csv(buf, index=False)
    return buf.getvalue()


class SplitFile:
    """A split file read with ``--splits``: key -> split, checked for shape and split names."""

    def __init__(self, path: str | os.PathLike, allowed: Sequence[str]):
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"--splits {self.path} is a folder; give the splits.csv of a "
                             "dataset (columns key, split)")
        if not self.path.exists():
            raise InputError(f"--splits {self.path} does not exist; give the splits.csv of a "
                             "dataset (columns key, split)")
        if not self.path.is_file():
            raise InputError(f"--splits {self.path} is not a regular file; give the splits.csv "
                             "of a dataset (columns key, split)")
        size = self.path.stat().st_size
        if size > MAX_SPLIT_FILE:
            raise InputError(f"--splits {self.path} holds {size / 1e6:.0f} MB, more than a split "
                             f"file of any benchmark ({MAX_SPLIT_FILE / 1e6:.0f} MB at most); "
                             "give the splits.csv of a dataset")
        try:
            frame = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise InputError(f"--splits {self.path} does not exist; give the splits.csv of a "
                             "dataset (columns key, split)") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"--splits {self.path} is not a readable CSV ({exc})") from None
        if list(frame.columns[:2]) != ["key", "split"]:
            raise InputError(f"--splits {self.path} must have the columns key, split (found "
                             f"{', '.join(map(str, frame.columns)) or 'none'})")
        dup = frame["key"][frame["key"].duplicated()].unique()
        if len(dup):
            raise InputError(f"--splits {self.path} lists {len(dup)} key(s) twice: "
                             f"{_first(dup)}; keep one row per key")
        bad = sorted(set(frame["split"]) - set(allowed))
        if bad:
            raise InputError(f"--splits {self.path} has split name(s) {_first(bad)}; this "
                             f"builder uses {', '.join(allowed)}")
        if "train" in allowed and not (frame["split"] == "train").any():
            raise InputError(f"--splits {self.path} puts no sample in train (splits: "
                             f"{', '.join(sorted(set(frame['split']))) or 'none'}); a benchmark "
                             "needs training samples: give a split file with train rows")
        self.table = dict(zip(frame["key"], frame["split"]))
        self.sha256 = sha256_file(self.path)

    def assign(self, keys: Sequence[str]) -> np.ndarray:
        """The split of each key; every key must be in the file and every file key used."""
        keys = [str(k) for k in keys]
        missing = [k for k in keys if k not in self.table]
        if missing:
            raise InputError(f"--splits {self.path} does not cover {len(missing)} sample(s) of "
                             f"these sources: {_first(missing)}; use the split file of a build "
                             "from the same sources and options")
        unknown = sorted(set(self.table) - set(keys))
        if unknown:
            raise InputError(f"--splits {self.path} has {len(unknown)} key(s) these sources do "
                             f"not have: {_first(unknown)}; use the split file of a build from "
                             "the same sources and options")
        return np.array([self.table[k] for k in keys], dtype=object)

    def describe(self) -> dict:
        """The manifest's record of where the split came from."""
        return {"path": str(self.path.resolve()), "sha256": self.sha256}
