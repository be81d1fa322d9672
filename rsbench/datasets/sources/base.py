"""What a public scene-classification source looks like on disk, and the registry of sources.

Each source lives in its own file in this package and registers its ``SceneSpec`` with
``register_source``; the CLI options, the synthetic generator, the builders and the tests read
the registry, so adding a source is one file plus one line in ``__init__.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from rsbench.errors import UsageError


@dataclass(frozen=True)
class SceneSpec:
    """One public scene dataset: its layout, classes, published counts and file naming."""

    key: str  # rsbench name: task name and CLI value (--KEY on the builder it belongs to)
    title: str  # name people use
    top: tuple[str, ...]  # folder path from the unpacked top folder to the class folders
    classes: tuple[str, ...]  # class folder names, sorted as published
    ext: tuple[str, ...]  # accepted image file suffixes (lower case)
    size: tuple[int, int]  # nominal (rows, cols)
    counts: tuple[int, ...]  # published images per class, in ``classes`` order
    naming: Callable[[str, int], str]  # (class folder, image number) -> published file name
    first: int = 1  # number of the first image of a class
    benchmark: str = ""  # the builder that reads it: "msc" (build-msc) or "transfer"
    odd_sizes: tuple[tuple[int, int], ...] = ()  # off-nominal sizes the real download has

    def file_name(self, class_name: str, n: int) -> str:
        """The published file name of image ``n`` of ``class_name`` (see the dataset reference)."""
        return self.naming(class_name, n)

    def first_number(self) -> int:
        """Number of the first image of a class (UC Merced counts from 00, the others from 1)."""
        return self.first

    @property
    def layout(self) -> str:
        cls = self.classes[0]
        return "/".join((*self.top, "<class>", self.file_name(cls, self.first)
                         .replace(cls, "<class>", 1)))


SCENE_SOURCES: dict[str, SceneSpec] = {}


def register_source(spec: SceneSpec) -> SceneSpec:
    """Add ``spec`` to the registry (in registration order) and return it."""
    if spec.key in SCENE_SOURCES:
        raise ValueError(f"scene source {spec.key!r} is registered twice")
    if len(spec.counts) != len(spec.classes):
        raise ValueError(f"scene source {spec.key!r}: {len(spec.counts)} counts for "
                         f"{len(spec.classes)} classes")
    SCENE_SOURCES[spec.key] = spec
    return spec


def sources_for(benchmark: str) -> tuple[str, ...]:
    """Keys of the registered sources a builder reads, in registration order."""
    return tuple(k for k, s in SCENE_SOURCES.items() if s.benchmark == benchmark)


def spec(key: str) -> SceneSpec:
    """The spec of the registered source ``key``; a one-line UsageError names the choices."""
    if key not in SCENE_SOURCES:
        raise UsageError(f"unknown scene dataset {key!r}; choose one of "
                         f"{', '.join(SCENE_SOURCES)}")
    return SCENE_SOURCES[key]


def is_utf8(name: str) -> bool:
    """False for a file name whose bytes are not UTF-8 (Python holds them as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_path(path: str | os.PathLike) -> str:
    """A path as printable text: bytes that are not UTF-8 shown as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
