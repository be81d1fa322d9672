"""Import heavy modules in a background thread, so their import overlaps a builder's I/O.

matplotlib (previews) and geopandas/pyogrio (footprints) take about a second to import and are
needed only at the end of a build; importing them while the first source files are read and
decoded (rasterio and numpy release the GIL) takes that second off the wall time.
"""

from __future__ import annotations

import importlib
import threading

PREVIEW_AND_FOOTPRINT_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_agg",
                                 "geopandas", "pyogrio", "shapely")


def warm_imports(modules: tuple[str, ...] = PREVIEW_AND_FOOTPRINT_MODULES) -> threading.Thread:
    """Start importing ``modules`` in a daemon thread; a later plain import finds them loaded."""

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError:  # the real import later reports it properly
                return

    thread = threading.Thread(target=load, name="rsbench-warm-imports", daemon=True)
    thread.start()
    return thread
