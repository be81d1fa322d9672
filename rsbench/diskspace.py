"""Check the free space of a disk before a large write, so a full disk is named up front."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rsbench.errors import InputError

MARGIN = 16 << 20  # headroom kept free besides the bytes a write needs (file system overhead)


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
        raise InputError(f"{folder}: writing {what} needs {need / 1e6:.1f} MB but its disk has "
                         f"{free / 1e6:.1f} MB free; free at least "
                         f"{(need + MARGIN - free) / 1e6:.1f} MB there (or choose an --out on "
                         "another disk) and rerun with --resume")
