"""Progress bars for long loops: tqdm, silent with --quiet or when stderr is not a terminal."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

_QUIET = os.environ.get("RSBENCH_QUIET", "") not in ("", "0")


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    global _QUIET
    _QUIET = quiet
    os.environ["RSBENCH_QUIET"] = "1" if quiet else ""


def is_quiet() -> bool:
    return _QUIET


def progress(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar that is off when quiet, and off without a TTY (tqdm's disable=None)."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, disable=True if _QUIET else None, **kwargs)
