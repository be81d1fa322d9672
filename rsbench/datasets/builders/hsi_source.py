"""``build-hsi``: a declared hyperspectral source -> patch dataset, through the TAIGA passes.

The source's file is read by its declared reader (:mod:`rsbench.datasets.sources.hsi`), its
labels brought onto the image grid by its declared rule, and the two handed to
:class:`~rsbench.datasets.builders.taiga.TaigaBuilder` as in-memory rasters: the image as the
cube, and the label raster as TAIGA's ``forestdata_stands`` (one band per target, class codes
with 0 = unlabelled, then a band marking labelled pixels in place of ``standID``). So the
dataset follows the TAIGA conventions (``rsbench.datasets.builders.taiga``): raster arrays
``image`` and ``targets_cls`` indexed by windows, training-pixel band statistics, one
classification TaskSpec per target with class weights, and the same leak-free window choice.

Choices, stated: splits are always ``blocks`` (square blocks of ``block_size`` pixels to
train/val/test by labelled-pixel share; a declared source has no stands); every class with a
labelled pixel is kept (``min_class_fraction`` 0, unlike TAIGA's 5 %, which is the HSI paper's
rule for its forest variables); defaults fit small scenes (9-pixel windows every 3 pixels in
32-pixel blocks). The manifest's ``taiga`` section also names the source, where its
wavelengths come from, and the label grid and rule. Georeferencing: pixel coordinates (the
file holds none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from rsbench.datasets.builders.base import run_build
from rsbench.datasets.builders.taiga import TaigaBuilder, TaigaOptions
from rsbench.datasets.builders.taiga_windows import SPLITS
from rsbench.datasets.format.manifest import describe_source
from rsbench.datasets.format.split_files import SplitFile
from rsbench.datasets.sources.hsi import SceneRaster, hsi_source, read_scene
from rsbench.datasets.sources.taiga import Variable
from rsbench.errors import UsageError


@dataclass
class HsiOptions(TaigaOptions):
    """TAIGA's options with defaults for small scenes; splits are always blocks."""

    patch: int = 9
    stride: int = 3
    bands: str = "0:"
    split: str = "blocks"
    block_size: int | None = 32
    min_class_fraction: float = 0.0

    def check(self) -> None:
        if self.split != "blocks":
            raise UsageError(f"build-hsi splits by blocks, not {self.split!r}: a declared "
                             "source has no stands")
        super().check()


class HsiSourceBuilder(TaigaBuilder):
    """One build of a registered hyperspectral source (see the module docstring)."""

    name = "build-hsi"

    def __init__(self, source: str, path: str | os.PathLike, opts: HsiOptions,
                 strip_bytes: int = 48 << 20, splits: str | os.PathLike | None = None):
        opts.check()
        self.source = hsi_source(source)
        self.dataset = self.source.key
        self.split_map_title = f"{self.source.title}: splits"
        self.split_file = SplitFile(splits, SPLITS) if splits else None
        self.opts, self.root, self.strip_bytes = opts, Path(path), strip_bytes
        image, labels = read_scene(self.source, self.root)
        self.cube = SceneRaster(image, self.root, self.source.nodata)
        marker = (labels > 0).any(-1, keepdims=True)
        self.stands = SceneRaster(np.concatenate([labels, marker], -1).astype(np.int32),
                                  self.root)
        if opts.patch > min(self.cube.lines, self.cube.samples):
            raise UsageError(f"--patch {opts.patch} is larger than the image "
                             f"({self.cube.lines}x{self.cube.samples}); use a smaller --patch")
        self.use_variables([Variable(t.name, j, t.name, "categorical", values=dict(t.classes))
                            for j, t in enumerate(self.source.targets)], len(self.source.targets))
        self.test_ids = None

    def params(self) -> dict:
        return {"source": self.source.key, "input": str(self.root.resolve()),
                **self.opts.__dict__}

    def stage(self, writer) -> None:
        super().stage(writer)
        self.windows = self.windows.drop(columns="stand_id")  # only the labelled marker here

    def georef(self) -> tuple[Any, Any]:
        return Affine.identity(), None

    def spectral(self) -> dict[str, Any]:
        s = self.source
        return {"wavelengths": [float(s.wavelengths[b]) for b in self.bands],
                "wavelength_units": s.wavelength_units, "scale_factor": float(s.scale_factor),
                "stored_units": s.stored_units}

    def source_files(self) -> list[dict]:
        return [describe_source(self.root, self.root.parent)]

    def section_extra(self) -> dict:
        s = self.source
        return {"source": {"key": s.key, "title": s.title,
                           "wavelength_source": s.wavelength_source,
                           "label_grid": {"scale": s.label_scale, "rule": s.label_rule,
                                          "rule_meaning": "see rsbench.datasets.sources.hsi"}}}


def build_hsi(source: str, path: str | os.PathLike, out: str | os.PathLike,
              resume: bool = False, splits: str | os.PathLike | None = None,
              **options: Any) -> dict:
    """Build the patch dataset of registered source ``source`` from its file ``path``;
    returns the manifest. ``splits``: a split file (block -> split) to reproduce."""
    return run_build(HsiSourceBuilder(source, path, HsiOptions(**options), splits=splits),
                     out, resume)
