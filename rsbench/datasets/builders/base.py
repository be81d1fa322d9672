"""The one builder protocol: plan sources -> stage parts -> finalize.

A builder checks its options and reads its sources' listing when it is constructed (so bad
input fails before anything is written), then :func:`run_build` opens the locked output folder,
lets it stage its work into resumable parts and stages, and lets it finalize. Reports that a
builder makes while staging (crops, duplicates, skips) belong in the parts' ``info``, so they
survive ``--resume``.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from abc import ABC, abstractmethod
from typing import Any

from rsbench.datasets.format.writer import DatasetWriter


class Builder(ABC):
    """One dataset build; subclasses set :attr:`name` (the CLI command) and plan in __init__."""

    name: str = "build"
    # modules only finish() needs (plots, GIS writers): imported in a thread while the sources
    # are staged, since the staging leaves part of a core idle and these take ~0.6 s to load
    finish_imports: tuple[str, ...] = ()

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Everything that changes the output (an interrupted build resumes only with these)."""

    @abstractmethod
    def stage(self, writer: DatasetWriter) -> None:
        """Write the resumable parts/stages not yet finished in ``writer``'s staging folder."""

    @abstractmethod
    def finish(self, writer: DatasetWriter) -> dict:
        """Gather the staged work: ``writer.finalize(...)``; returns the manifest."""


def run_build(builder: Builder, out: str | os.PathLike, resume: bool = False) -> dict:
    """Run ``builder`` into ``out`` holding the folder's lock; returns the manifest.

    With ``resume`` on a finished folder there is nothing to do: it says so and returns the
    finished manifest.
    """
    with DatasetWriter(out, builder=builder.name, params=builder.params(),
                       resume=resume) as writer:
        if writer.finished is not None:
            print(f"{out} is already finished; --resume has nothing to do", file=sys.stderr)
            return writer.finished
        warm = threading.Thread(target=_import_all, args=(builder.finish_imports,),
                                name="finish-imports", daemon=True)
        warm.start()
        try:
            builder.stage(writer)
        finally:
            warm.join()
        return builder.finish(writer)


def _import_all(modules: tuple[str, ...]) -> None:
    """Import ``modules`` ahead of use; a failure is left for the real import to report."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - finish() imports it again and reports the error
            pass
