"""Public scene-classification sources, one file each (UC Merced, AID, NWPU-RESISC45, PatternNet,
EuroSAT). Registration order is the task order of MSC and of every list shown to users.
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
