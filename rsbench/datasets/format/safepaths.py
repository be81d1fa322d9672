"""Paths built from file contents stay inside the folder they belong to.

Class names become export folder names, ``arrays.*.file`` entries become array paths and
mapping rows become class names: a received file must not be able to point any of them outside
its folder (``../..``, absolute paths, symlinks out).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from rsbench.errors import InputError


def check_plain_name(name: object, where: str) -> str:
    """``name`` if it is a plain file name (no separators, not ``.``/``..``, no NUL), else one
    line naming ``where`` (the file and field it came from)."""
    text = str(name)
    if not text.strip() or text in (".", "..") or any(c in text for c in "/\\\0"):
        raise InputError(f"{where}: {text!r} is not a plain file name (no '/', '\\', '..'); "
                         "rename it in that file")
    return text


def inside(root: str | os.PathLike, relative: str, where: str) -> Path:
    """``root / relative`` if that path (symlinks resolved) lies inside ``root``, else one line
    naming ``where``."""
    if (PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).is_absolute()
            or ".." in PurePosixPath(relative.replace("\\", "/")).parts):
        raise InputError(f"{where}: {relative!r} points outside the dataset folder; array files "
                         "must lie inside it (e.g. arrays/image.npy)")
    base = Path(root).resolve()
    path = (base / relative).resolve()
    if path != base and base not in path.parents:
        raise InputError(f"{where}: {relative!r} leads outside the dataset folder (a symbolic "
                         "link?); array files must lie inside it")
    return Path(root) / relative
