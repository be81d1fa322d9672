"""Readers of the public source datasets in their published on-disk layouts.

Scene classification: one file per source describing its download (``merced``, ``aid``,
``nwpu``, ``patternnet``, ``eurosat``; a ``SceneSpec`` registered in ``base``), read by
``scenes`` and decoded by ``scene_images``. GID image/label pairs: ``gid``. Hyperspectral: the
ENVI raster reader ``envi`` and the TAIGA files and bands ``taiga``; every other hyperspectral
source is one file declaring its reader, bands, wavelengths and targets (``houston``; an
``HsiSource`` registered in ``hsi``, read by format readers such as ``matfile``). Registration
order of the scene sources is the task order of MSC and of every list shown to users.
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
from rsbench.datasets.sources.hsi import HSI_SOURCES, HsiSource, HsiTarget, register_hsi_source

# One line per source module (each calls register_source); the order is the paper's.
SOURCE_MODULES = (
    "merced",
    "aid",
    "nwpu",
    "patternnet",
    "eurosat",
)
# One line per hyperspectral source module (each calls register_hsi_source).
HSI_SOURCE_MODULES = (
    "houston",
)
for _name in (*SOURCE_MODULES, *HSI_SOURCE_MODULES):
    import_module(f"{__name__}.{_name}")

__all__ = ["HSI_SOURCES", "SCENE_SOURCES", "HsiSource", "HsiTarget", "SceneSpec",
           "register_hsi_source", "register_source", "sources_for", "spec"]
