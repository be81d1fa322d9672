"""Build the TAIGA hyperspectral multitask dataset (HSI paper, Sec. III-A/B) with bounded memory.

Conventions (relied on by ``rsbench run taiga`` and the HSI multitask model):

- manifest ``name`` is ``"taiga"``; every index row has ``task == "taiga"`` and ``split`` in
  {train, val, test}; one row = one patch window.
- raster arrays, stored ONCE and indexed by the window columns ``win_row, win_col, win_h,
  win_w`` (crop coordinates; ``Dataset.sample_array(name, i)`` returns the window):
  ``image`` H×W×B **int16** reflectance ×10000 (the source values, cropped, band subset
  ``bands``); ``targets_cls`` H×W×3 uint8 class indices (255 = ignore: no data, category 0 or a
  dropped rare category); ``targets_reg`` H×W×10 float32 targets min–max scaled to [0, 1]
  (NaN = no data).
- ``manifest["taiga"]["image_stats"]`` holds per-band ``min``/``max``/``mean``/``std`` of the
  training pixels in stored units (divide by ``scale_factor`` for reflectance), for min–max or
  z-score input normalisation.
- one TaskSpec per variable, all with ``rows="taiga"``: 3 ``classification`` (fertility_class,
  soil_class, main_tree_species_class; classes named from the header, ``ignore_index`` 255,
  ``extra``: raster/channel, source codes, dropped codes, train class counts and
  inverse-median-frequency ``class_weights``) and 10 ``regression`` (``extra``: raster/channel,
  physical ``unit``, ``min``/``max`` used for scaling, ``clip`` value, so
  ``physical = scaled * (max - min) + min``). The index column named after each task holds the
  target of the window's centre pixel, so centre-pixel training needs no raster read.

Splits cannot leak: ``stands`` keeps every stand in one split, ``blocks`` assigns square blocks;
in both a window is kept only if no pixel of it belongs to another split's region, and a
validation/test window is dropped if any of its pixels lies in a kept training window. Continuous
targets are clipped at the ``clip_percentile`` of the non-zero training values (as the TAIGA
baseline) and min–max scaled with training statistics; rare categories (< ``min_class_fraction``
of all labelled pixels, as the paper) are dropped to ignore.

Passes: (1) survey of ``forestdata_stands`` (stand ids, value counts per split region), (2) one
read of the cube's bands into ``image`` (validity mask, training band statistics), (3) targets.
Each pass is a resumable stage; rows are read strip by strip (see :mod:`rsbench.datasets.sources.envi`).

The same builder, passes and conventions serve every declared hyperspectral source
(``build-hsi``, :mod:`rsbench.datasets.builders.hsi_source`): a subclass supplies the rasters,
the dataset name (manifest ``name``, index ``task``, TaskSpec ``rows``) and the hooks
:meth:`TaigaBuilder.georef`, :meth:`~TaigaBuilder.spectral` and
:meth:`~TaigaBuilder.source_files`. The manifest section keeps the key ``"taiga"``
(:data:`SECTION`) for all of them, so one training reader and ``taiga-map`` read them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsbench.datasets.builders.base import Builder, run_build
from rsbench.datasets.builders.splits import split_regions_by_share
from rsbench.datasets.builders.taiga_passes import TaigaPasses
from rsbench.datasets.builders.taiga_stats import (  # noqa: F401 - re-exported for callers and tests
    IGNORE,
    inverse_median_frequency,
    parse_bands,
    target_stats,
    task_specs,
    weighted_percentile,
)
from rsbench.datasets.builders.taiga_windows import (
    SPLITS,
    grid,
    select_windows,
    split_regions,
)
from rsbench.datasets.format.manifest import describe_source
from rsbench.datasets.format.split_files import SplitFile
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.datasets.sources.envi import EnviRaster
from rsbench.datasets.sources.taiga import find_taiga, read_variables
from rsbench.errors import InputError, UsageError

WINDOW_COLUMNS = ["win_row", "win_col", "win_h", "win_w"]
SECTION = "taiga"  # manifest key of the window settings of every hyperspectral patch dataset
HASH_LIMIT = 1 << 30  # source files larger than this are described by size, not SHA-256


@dataclass
class TaigaOptions:
    patch: int = 45
    stride: int = 13
    bands: str = "0:110"
    split: str = "stands"
    test_fraction: float = 0.15
    val_fraction: float = 0.10
    block_size: int | None = None
    test_stands: str | None = None
    min_class_fraction: float = 0.05
    clip_percentile: float = 98.0
    seed: int = 0

    def check(self) -> None:
        if self.patch < 3 or self.patch % 2 == 0:
            raise UsageError(f"--patch {self.patch} must be odd and at least 3 (the centre "
                             "pixel carries the window's labels), e.g. 45")
        if self.stride < 1:
            raise UsageError("--stride must be at least 1")
        if self.split not in ("stands", "blocks"):
            raise UsageError(f"--split must be stands or blocks, not {self.split!r}")
        if not (0 <= self.test_fraction < 1 and 0 <= self.val_fraction < 1
                and self.test_fraction + self.val_fraction < 1):
            raise UsageError("--test-fraction and --val-fraction must be in [0, 1) and sum to "
                             "less than 1")
        if not 0 <= self.min_class_fraction < 1:
            raise UsageError("--min-class-fraction must be in [0, 1)")
        if not 50 <= self.clip_percentile <= 100:
            raise UsageError("--clip-percentile must be between 50 and 100")
        if self.block_size is not None and self.block_size < self.patch:
            raise UsageError(f"--block-size {self.block_size} is smaller than --patch "
                             f"{self.patch}; no window would fit in a block")
        if self.test_stands and self.split != "stands":
            raise UsageError("--test-stands only works with --split stands")


def _describe(path: Path, root: Path) -> dict:
    if path.stat().st_size > HASH_LIMIT:
        return {"path": os.path.relpath(path, root), "size": path.stat().st_size,
                "sha256": None, "note": "not hashed (larger than 1 GiB)"}
    return describe_source(path, root)


def _georef(path: Path) -> tuple[Any, Any]:
    """(affine transform, CRS) of an ENVI file via rasterio, or pixel coordinates."""
    import rasterio
    from affine import Affine

    try:
        with rasterio.open(path) as ds:
            return ds.transform, ds.crs
    except Exception:  # noqa: BLE001 - georeferencing is optional
        return Affine.identity(), None


class TaigaBuilder(TaigaPasses, Builder):
    """One build: survey, split, image, windows, targets, finalize (see the module docstring).

    Everything that can be checked before reading the cube is checked in ``__init__``.
    """

    name = "build-taiga"
    dataset = "taiga"  # manifest name, index ``task`` and TaskSpec ``rows``
    split_map_title = "TAIGA splits"  # title of preview/splits.png

    def __init__(self, taiga: str | os.PathLike, opts: TaigaOptions,
                 strip_bytes: int = 48 << 20, splits: str | os.PathLike | None = None):
        opts.check()
        if splits and opts.test_stands:
            raise UsageError("--splits and --test-stands both set the test split; give one")
        self.split_file = SplitFile(splits, SPLITS) if splits else None
        self.opts, self.root, self.strip_bytes = opts, Path(taiga), strip_bytes
        cube_hdr, stands_hdr = find_taiga(taiga)
        self.cube = EnviRaster.open(cube_hdr)
        self.stands = EnviRaster.open(stands_hdr)
        if self.cube.shape[:2] != self.stands.shape[:2]:
            raise InputError(f"{self.stands.header} is {self.stands.lines}x"
                             f"{self.stands.samples} but the cube {self.cube.header} is "
                             f"{self.cube.lines}x{self.cube.samples}; they must share one grid")
        if opts.patch > min(self.cube.lines, self.cube.samples):
            raise UsageError(f"--patch {opts.patch} is larger than the cube "
                             f"({self.cube.lines}x{self.cube.samples}); use a smaller --patch")
        self.use_variables(*read_variables(self.stands))
        self.test_ids = self._read_test_stands(opts.test_stands) if opts.test_stands else None

    def use_variables(self, variables: list, sid_band: int) -> None:
        """The reference bands to build targets of (``Variable`` objects of ``stands``), the band
        that marks labelled pixels (> 0; TAIGA's standID), and what follows from the options."""
        self.variables, self.sid_band = variables, sid_band
        self.cat = [v for v in self.variables if v.kind == "categorical"]
        self.cont = [v for v in self.variables if v.kind == "continuous"]
        self.bands = parse_bands(self.opts.bands, self.cube.bands)
        self.half = self.opts.patch // 2
        self.block = self.opts.block_size or 8 * self.opts.patch

    def params(self) -> dict:
        return {"taiga": str(self.root.resolve()), **self.opts.__dict__}

    # ------------------------------------------------------------------ source hooks
    def georef(self) -> tuple[Any, Any]:
        """(affine transform, CRS) of the cube."""
        return _georef(self.cube.data)

    def spectral(self) -> dict[str, Any]:
        """Wavelengths of the kept bands, their units, the stored values' scale and units."""
        wl = self.cube.wavelengths()
        return {"wavelengths": wl[self.bands].tolist() if wl is not None else None,
                "wavelength_units": self.cube.fields.get("wavelength units"),
                "scale_factor": float(self.cube.fields.get("reflectance scale factor", 10000)),
                "stored_units": "reflectance x scale_factor"}

    def source_files(self) -> list[dict]:
        """Manifest entries of the source files (path, size, SHA-256)."""
        return [_describe(p, self.root) for p in (self.cube.header, self.cube.data,
                                                  self.stands.header, self.stands.data)]

    def section_extra(self) -> dict:
        """Keys a source adds at the end of the manifest's hyperspectral section."""
        return {}

    # ------------------------------------------------------------------ helpers
    def _check_grid(self, bbox: list[int]) -> None:
        """The labelled area must hold at least one window of the stride grid."""
        h, H, W = self.half, self.cube.lines, self.cube.samples
        crop = (max(0, bbox[0] - h), min(H, bbox[1] + h), max(0, bbox[2] - h),
                min(W, bbox[3] + h))
        rows, cols = grid(crop, self.opts.patch, self.opts.stride)
        if not len(rows) or not len(cols):
            r, c, p, st = crop[1] - crop[0], crop[3] - crop[2], self.opts.patch, self.opts.stride
            if min(r, c) < p:
                raise InputError(f"{self.stands.data}: the labelled area ({r}x{c} px) is "
                                 f"smaller than one {p}x{p} window; use a smaller --patch")
            raise UsageError(f"--stride {st} leaves no window centre inside the labelled area "
                             f"({r}x{c} px) with --patch {p}; use a --stride below "
                             f"{max(1, min(r, c) - p + 1)}")

    @staticmethod
    def _read_test_stands(path: str) -> np.ndarray:
        p = Path(path)
        if p.is_dir():
            raise UsageError(f"--test-stands {p} is a folder; give a text file with one stand "
                             "id per line")
        if not p.is_file():
            raise UsageError(f"--test-stands {p} does not exist; give a text file with one "
                             "stand id per line")
        ids = []
        for tok in p.read_text().replace(",", "\n").split():
            if tok.strip().lstrip("-").isdigit():
                ids.append(int(tok))
        if not ids:
            raise InputError(f"{p} holds no stand ids; write one integer standID per line")
        return np.unique(np.array(ids, dtype=np.int64))

    # ------------------------------------------------------------------ splits
    def assign_regions(self, table: pd.DataFrame) -> dict[int, int]:
        """Region (stand or block) -> split code 1/2/3, drawn by seed, by labelled-pixel share."""
        px = table.groupby("region")["n"].sum().sort_index()
        if self.split_file is not None:
            names = self.split_file.assign(self.region_keys(px.index))
            return {int(r): SPLITS.index(n) + 1 for r, n in zip(px.index, names)}
        fixed = None
        if self.test_ids is not None:
            regions = px.index.to_numpy()
            if not np.isin(self.test_ids, regions).any():
                raise InputError(f"{self.opts.test_stands}: none of its stand ids occur in "
                                 f"{self.stands.data}; give standID values of that raster")
            fixed = {int(r): 3 for r in regions[np.isin(regions, self.test_ids)]}
            shares = [(2, self.opts.val_fraction)]
        else:
            shares = [(3, self.opts.test_fraction), (2, self.opts.val_fraction)]
        return split_regions_by_share(px, self.opts.seed, shares, fixed)

    def stage(self, writer: DatasetWriter) -> None:
        """Survey, region split, image pass, windows and targets (each pass resumable)."""
        self.writer, opts = writer, self.opts
        bbox = self.survey()["bbox"]
        table = pd.read_parquet(writer.staged("survey.parquet"))
        self.region_split = self.assign_regions(table)
        H, W = self.cube.lines, self.cube.samples
        h = self.half
        self.crop = crop = (max(0, bbox[0] - h), min(H, bbox[1] + h), max(0, bbox[2] - h),
                            min(W, bbox[3] + h))
        self.code, labelled = self.region_codes(self.region_split, crop)
        self.image_stats = self.copy_image(crop, self.code)
        self.valid = np.load(writer.staged("valid.npy"))
        windows, self.window_counts = select_windows(crop, self.code, labelled, self.valid,
                                                     opts.patch, opts.stride, self.dataset)
        if not (windows["split"] == "train").any():
            raise InputError(f"{self.root}: no training window survives (patch {opts.patch}); "
                             "use a smaller --patch or lower --test-fraction/--val-fraction")
        self.stats = target_stats(table, self.region_split, self.cat, self.cont,
                                  opts.min_class_fraction, opts.clip_percentile,
                                  self.stands.data)
        self.windows = self.write_targets(crop, self.valid, self.stats, windows)

    def finish(self, writer: DatasetWriter) -> dict:
        """The manifest's TAIGA section, the three rasters and footprints into finalize."""
        opts, crop, stats, windows = self.opts, self.crop, self.stats, self.windows
        region_split, image_stats, counts = self.region_split, self.image_stats, \
            self.window_counts
        code, valid = self.code, self.valid
        transform, crs = self.georef()
        xs, ys = transform * (windows["image_col"].to_numpy() + 0.5,
                              windows["image_row"].to_numpy() + 0.5)
        windows["x"], windows["y"] = xs, ys
        tasks = task_specs(stats, self.cat, self.cont, rows=self.dataset)
        spectral = self.spectral()
        scale = spectral["scale_factor"]
        regions_by_split = {sp: sorted(int(r) for r, c in region_split.items() if c == k)
                            for k, sp in enumerate(SPLITS, start=1)}
        extra = {SECTION: {
            "conventions": "see rsbench.datasets.builders.taiga module docstring",
            "patch": opts.patch, "stride": opts.stride,
            "crop": {"row_off": crop[0], "col_off": crop[2], "rows": crop[1] - crop[0],
                     "cols": crop[3] - crop[2],
                     "transform": list(transform)[:6], "crs": crs.to_string() if crs else None},
            "bands": self.bands.tolist(),
            "wavelengths": spectral["wavelengths"],
            "wavelength_units": spectral["wavelength_units"],
            "image_stats": {**image_stats, "scale_factor": scale,
                            "dtype": self.cube.dtype.newbyteorder("=").name,
                            "stored_units": spectral["stored_units"]},
            "split": {"mode": opts.split, "seed": opts.seed,
                      "test_fraction": opts.test_fraction, "val_fraction": opts.val_fraction,
                      "block_size": self.block if opts.split == "blocks" else None,
                      "region_ids": "standID" if opts.split == "stands" else
                      "(image_row // block_size) * (samples // block_size + 1) "
                      "+ image_col // block_size",
                      "test_stands_file": opts.test_stands,
                      "regions": regions_by_split, "windows": counts},
            "targets": stats,
            "categorical": [v.name for v in self.cat],
            "continuous": [v.name for v in self.cont],
            **self.section_extra(),
        }}
        pixel_cols = {"window_columns": WINDOW_COLUMNS}
        rasters = {
            "image": {**pixel_cols, "scale_factor": scale,
                      "band_indices": self.bands.tolist()},
            "targets_cls": {**pixel_cols, "channels": [v.name for v in self.cat],
                            "ignore_index": IGNORE},
            "targets_reg": {**pixel_cols, "channels": [v.name for v in self.cont],
                            "missing": "NaN", "scaled": "min-max with training statistics"},
        }
        if not self.cont:  # a declared hyperspectral source with classification targets only
            del rasters["targets_reg"]
        footprints = split_regions(windows, transform, crs)
        sources = self.source_files()
        from rsbench.datasets.previews.taiga import taiga_previews

        def previews(folder: Path, ds: Any) -> None:
            taiga_previews(folder, ds, code, valid, self.split_map_title)

        regions = sorted(region_split)
        return writer.finalize(
            windows, keys=[], name=self.dataset, tasks=tasks, sources=sources, extra=extra,
            rasters=rasters, footprints=footprints, previews=previews,
            split_keys=(self.region_keys(regions),
                        [SPLITS[region_split[r] - 1] for r in regions]),
            split_source=self.split_file.describe() if self.split_file else None)

    def region_keys(self, regions: Any) -> list[str]:
        """Stable split-file keys: ``stand <standID>`` or ``block <block id>``."""
        kind = "stand" if self.opts.split == "stands" else "block"
        return [f"{kind} {int(r)}" for r in regions]


def build_taiga(taiga: str | os.PathLike, out: str | os.PathLike, resume: bool = False,
                splits: str | os.PathLike | None = None, **options: Any) -> dict:
    """Build the TAIGA patch dataset; returns the manifest (see the module docstring).
    ``splits`` is a split file (stand or block -> split) to reproduce instead of drawing it."""
    return run_build(TaigaBuilder(taiga, TaigaOptions(**options), splits=splits), out, resume)
