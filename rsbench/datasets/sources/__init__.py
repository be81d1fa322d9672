"""Readers of the public source datasets in their published on-disk layouts.

Scene classification: one file per source describing its download (``merced``, ``aid``,
``nwpu``, ``patternnet``, ``eurosat``; a ``SceneSpec`` registered in ``base``), read by
``scenes`` and decoded by ``scene_images``. GID image/label pairs: ``gid``. Hyperspectral: the
ENVI raster reader ``envi`` and the TAIGA files and bands ``taiga``. Registration order of the
scene sources is the task order of MSC and of every list shown to users.
"""

from __future__ import annotations

from importlib import import_module

from rsbench.datasets.sources.base import (
    SCENE_SOURCES,
    SceneSpec,
    register_source,
    sources_for,
    spec,
)

# One line per source module (each calls register_source); the order is the paper's.
SOURCE_MODULES = (
    "merced",
    "aid",
    "nwpu",
    "patternnet",
    "eurosat",
)
for _name in SOURCE_MODULES:
    import_module(f"{__name__}.{_name}")

__all__ = ["SCENE_SOURCES", "SceneSpec", "register_source", "sources_for", "spec"]
