"""Check the free space of a disk before a large write, so a full disk is named up front."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rsbench.errors import InputError

MARGIN = 16 << 20  # headroom kept free besides the bytes a write needs (file system overhead)


def size_text(n: int) -> str:
    """Bytes for a message: MB from 0.1 MB up, kB below."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def require_free(folder: str | os.PathLike, need: int, what: str) -> None:
    """Raise one line naming ``folder``, ``need`` and the free space when the disk of
    ``folder`` cannot take ``need`` more bytes (``what``: what is about to be written)."""
    folder = Path(folder)
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell: let the write itself report a full disk
    if free < need + MARGIN:
        raise InputError(f"{folder}: writing {what} needs {size_text(need)} but its disk has "
                         f"{size_text(free)} free; free at least "
                         f"{size_text(need + MARGIN - free)} there (or choose an --out on "
                         "another disk) and rerun with --resume")


FULL = 1 << 20  # a disk with less free space than this after a failed write is taken as full


def nearly_full(folder: str | os.PathLike) -> bool:
    """True when the disk of ``folder`` has less than 1 MiB free (a write failed for space)."""
    try:
        return shutil.disk_usage(folder).free < FULL
    except OSError:
        return False


def disk_full(path: str | os.PathLike, written: int) -> InputError:
    """The one line for a write of ``path`` that filled its disk after ``written`` bytes (its
    temporary file already removed)."""
    free = shutil.disk_usage(Path(path).parent).free
    return InputError(f"no space left on the disk of {path} ({size_text(free)} free after "
                      f"removing the {size_text(written)} written of it); free more space there "
                      "(or choose an --out on another disk) and rerun with --resume")
