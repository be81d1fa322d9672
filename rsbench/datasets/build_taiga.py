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
Each pass is a resumable stage; rows are read strip by strip (see :mod:`rsbench.datasets.envi`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter, maximum_filter1d

from rsbench.datasets.envi import EnviRaster
from rsbench.datasets.format import DatasetWriter, TaskSpec, describe_source
from rsbench.datasets.taiga import find_taiga, read_variables
from rsbench.errors import InputError, UsageError
from rsbench.progress import progress

SPLITS = ("train", "val", "test")  # split codes 1, 2, 3 in region rasters; 0 = no region
IGNORE = 255
WINDOW_COLUMNS = ["win_row", "win_col", "win_h", "win_w"]
HASH_LIMIT = 1 << 30
STATS_EVERY = 4  # band mean/std use every 4th training pixel (min/max use all)  # source files larger than this are described by size, not SHA-256


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


def parse_bands(spec: str, total: int) -> np.ndarray:
    """``0:110`` / ``0:110,115`` / ``3,7,9`` -> sorted unique band indices (checked)."""
    out: list[int] = []
    try:
        for part in str(spec).split(","):
            part = part.strip()
            if ":" in part:
                a, b = part.split(":")
                out.extend(range(int(a or 0), int(b) if b else total))
            elif part:
                out.append(int(part))
    except ValueError:
        raise UsageError(f"--bands {spec!r} is not like 0:110 or 0,5,10") from None
    idx = np.unique(np.array(out, dtype=np.int64))
    if len(idx) == 0 or idx[0] < 0 or idx[-1] >= total:
        raise UsageError(f"--bands {spec!r} selects bands outside 0..{total - 1} "
                         f"(the cube has {total} bands)")
    return idx


def weighted_percentile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """np.percentile (linear) of the data where ``values[i]`` occurs ``counts[i]`` times."""
    order = np.argsort(values)
    v, c = values[order], np.asarray(counts)[order]
    cum = np.cumsum(c)
    n = int(cum[-1])
    pos = q / 100 * (n - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    v_lo = v[np.searchsorted(cum, lo + 1)]
    v_hi = v[np.searchsorted(cum, hi + 1)]
    return float(v_lo + (v_hi - v_lo) * (pos - lo))


def inverse_median_frequency(counts: np.ndarray) -> np.ndarray:
    """w_c = median(f) / f_c over the classes present (absent classes get weight 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    if present.any():
        freq = counts[present] / counts[present].sum()
        w[present] = np.median(freq) / freq
    return w


def no_data_free(x: np.ndarray, nodata: float) -> np.ndarray:
    """(h, w) bool: pixel is image data (not every band equals ``nodata``); exact, but only
    pixels whose first, middle and last bands are all no-data get the full check."""
    nb = x.shape[-1]
    ok = (x[..., 0] != nodata) | (x[..., nb // 2] != nodata) | (x[..., nb - 1] != nodata)
    maybe = ~ok
    if maybe.any():
        ok[maybe] = (x[maybe] != nodata).any(-1)
    return ok


def window_any(src: np.ndarray, rows: np.ndarray, cols: np.ndarray, half: int,
               fn: Any = None, chunk: int = 32) -> np.ndarray:
    """(len(rows), len(cols)) bool: any True pixel of ``fn(src)`` in the window at each centre.

    ``fn`` maps a block of rows of ``src`` to a bool mask, so full-size masks never exist.
    """
    out = np.zeros((len(rows), len(cols)), dtype=bool)
    size = 2 * half + 1
    for i in range(0, len(rows), chunk):
        rr = rows[i:i + chunk]
        a, b = rr[0] - half, rr[-1] + half + 1
        sub = np.ascontiguousarray(fn(src[a:b]) if fn is not None else src[a:b])
        colmax = maximum_filter1d(sub.view(np.uint8), size, axis=1, mode="constant")[:, cols]
        out[i:i + chunk] = maximum_filter1d(colmax, size, axis=0, mode="constant")[rr - a] > 0
    return out


class _RasterFile:
    """A .npy array written row-block by row-block with plain file writes (bounded memory)."""

    def __init__(self, path: Path, dtype: Any, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape = path, np.dtype(dtype), shape
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=shape)
        self.offset = mm.offset
        del mm
        self.row_bytes = int(np.prod(shape[1:])) * self.dtype.itemsize
        self.f = open(path, "r+b")  # noqa: SIM115

    def write_rows(self, r0: int, block: np.ndarray) -> None:
        self.f.seek(self.offset + r0 * self.row_bytes)
        self.f.write(memoryview(np.ascontiguousarray(block, dtype=self.dtype)).cast("B"))

    def close(self) -> None:
        self.f.close()


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


class TaigaBuilder:
    """One build: survey, split, image, windows, targets, finalize (see the module docstring)."""

    def __init__(self, taiga: str | os.PathLike, out: str | os.PathLike, opts: TaigaOptions,
                 resume: bool = False, strip_bytes: int = 48 << 20):
        opts.check()
        self.opts, self.root, self.strip_bytes = opts, Path(taiga), strip_bytes
        cube_hdr, stands_hdr = find_taiga(taiga)
        self.cube = EnviRaster.open(cube_hdr)
        self.stands = EnviRaster.open(stands_hdr)
        if self.cube.shape[:2] != self.stands.shape[:2]:
            raise InputError(f"{self.stands.header} is {self.stands.lines}x"
                             f"{self.stands.samples} but the cube {self.cube.header} is "
                             f"{self.cube.lines}x{self.cube.samples}; they must share one grid")
        self.variables, self.sid_band = read_variables(self.stands)
        self.cat = [v for v in self.variables if v.kind == "categorical"]
        self.cont = [v for v in self.variables if v.kind == "continuous"]
        self.bands = parse_bands(opts.bands, self.cube.bands)
        self.half = opts.patch // 2
        self.block = opts.block_size or 8 * opts.patch
        params = {"taiga": str(self.root.resolve()), **opts.__dict__}
        self.test_ids = self._read_test_stands(opts.test_stands) if opts.test_stands else None
        self.writer = DatasetWriter(out, builder="build-taiga", params=params, resume=resume)
        self.staging = self.writer.staging

    # ------------------------------------------------------------------ helpers
    def _strip(self, bands: int, itemsize: int) -> int:
        return max(1, self.strip_bytes // max(1, self.cube.samples * bands * itemsize))

    def _stage_info(self, key: str) -> dict | None:
        return self.writer.parts([key])[0].info if self.writer.part_done(key) else None

    def _finish_stage(self, key: str, info: dict) -> None:
        pw = self.writer.part_writer(key)
        pw.close(info)

    @staticmethod
    def _read_test_stands(path: str) -> np.ndarray:
        p = Path(path)
        if p.is_dir():
            raise UsageError(f"--test-stands {p} is a folder; give a text file with one "
                             "stand id per line")
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

    # ------------------------------------------------------------------ pass 1: survey
    def survey(self) -> dict:
        """Stand ids to staging, value counts per (region, variables), labelled bounding box."""
        info = self._stage_info("survey")
        if info is not None:
            return info
        H, W = self.cube.lines, self.cube.samples
        step = self._strip(self.stands.bands, 4)
        frames = []
        rmin, rmax, cmin, cmax = H, -1, W, -1
        sid_file = _RasterFile(self.staging / "stand_id.npy", np.int32, (H, W))
        cols = [v.band for v in self.variables]
        names = [v.name for v in self.variables]
        for r0 in progress(range(0, H, step), desc="survey stands", unit="strip"):
            r1 = min(H, r0 + step)
            lab = self.stands.read_rows(r0, r1)
            sid = lab[..., self.sid_band].astype(np.int32)
            sid[sid < 0] = 0
            sid_file.write_rows(r0, sid)
            rr, cc = np.nonzero(sid > 0)
            if not len(rr):
                continue
            rmin, rmax = min(rmin, r0 + rr.min()), max(rmax, r0 + rr.max())
            cmin, cmax = min(cmin, cc.min()), max(cmax, cc.max())
            vals = lab[rr, cc][:, cols]
            region = sid[rr, cc] if self.opts.split == "stands" else \
                ((r0 + rr) // self.block) * (W // self.block + 1) + cc // self.block
            df = pd.DataFrame(vals, columns=names)
            df.insert(0, "stand", sid[rr, cc])
            df.insert(0, "region", region.astype(np.int64))
            frames.append(df.value_counts().rename("n").reset_index())
        sid_file.close()
        if rmax < 0:
            raise InputError(f"{self.stands.data} has no labelled pixel (standID > 0); it is "
                             "not a TAIGA reference raster or it is empty")
        table = pd.concat(frames, ignore_index=True)
        table = table.groupby(list(table.columns[:-1]), as_index=False)["n"].sum()
        table.to_parquet(self.staging / "survey.parquet", index=False)
        info = {"bbox": [int(rmin), int(rmax) + 1, int(cmin), int(cmax) + 1]}
        self._finish_stage("survey", info)
        return info

    # ------------------------------------------------------------------ splits
    def assign_regions(self, table: pd.DataFrame) -> dict[int, int]:
        """Region (stand or block) -> split code 1/2/3, drawn by seed, by labelled-pixel share."""
        px = table.groupby("region")["n"].sum().sort_index()
        total = float(px.sum())
        rng = np.random.default_rng(self.opts.seed)
        regions = px.index.to_numpy()
        out: dict[int, int] = {}
        if self.test_ids is not None:
            missing = np.setdiff1d(self.test_ids, regions)
            if len(missing) == len(self.test_ids):
                raise InputError(f"{self.opts.test_stands}: none of its stand ids occur in "
                                 f"{self.stands.data}; give standID values of that raster")
            for r in regions[np.isin(regions, self.test_ids)]:
                out[int(r)] = 3
            rest = regions[~np.isin(regions, self.test_ids)]
            targets = [(2, self.opts.val_fraction)]
        else:
            rest = regions
            targets = [(3, self.opts.test_fraction), (2, self.opts.val_fraction)]
        order = rng.permutation(rest)
        i = 0
        for code, frac in targets:
            acc = 0.0
            while i < len(order) and acc < frac * total and frac > 0:
                out[int(order[i])] = code
                acc += float(px[order[i]])
                i += 1
        for r in order[i:]:
            out[int(r)] = 1
        return out

    def region_codes(self, region_split: dict[int, int], crop: tuple[int, int, int, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(split code, labelled) rasters over the crop, from the staged stand ids."""
        r0, r1, c0, c1 = crop
        f = open(self.staging / "stand_id.npy", "rb")  # noqa: SIM115 - plain reads, bounded RSS
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        base = f.tell()
        code = np.zeros((r1 - r0, c1 - c0), dtype=np.uint8)
        labelled = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        keys = np.array(sorted(region_split), dtype=np.int64)
        vals = np.array([region_split[k] for k in keys], dtype=np.uint8)
        W = self.cube.samples
        step = self._strip(4, 4)
        for a in range(r0, r1, step):
            b = min(r1, a + step)
            f.seek(base + a * W * 4)
            s = np.fromfile(f, dtype=np.int32, count=(b - a) * W).reshape(b - a, W)[:, c0:c1]
            labelled[a - r0:b - r0] = s > 0
            if self.opts.split == "stands":
                reg = s.astype(np.int64)
                ok = s > 0
            else:
                rr = np.arange(a, b)[:, None] // self.block
                cc = np.arange(c0, c1)[None, :] // self.block
                reg = rr * (W // self.block + 1) + cc
                ok = np.ones_like(s, dtype=bool)
            pos = np.clip(np.searchsorted(keys, reg), 0, len(keys) - 1)
            hit = ok & (keys[pos] == reg)
            code[a - r0:b - r0] = np.where(hit, vals[pos], 0)
        f.close()
        return code, labelled

    # ------------------------------------------------------------------ pass 2: image
    def copy_image(self, crop: tuple[int, int, int, int], code: np.ndarray) -> dict:
        """Cropped band subset of the cube into staging image.npy; validity; train band stats."""
        info = self._stage_info("image")
        if info is not None:
            return info
        r0, r1, c0, c1 = crop
        nb = len(self.bands)
        dtype = self.cube.dtype.newbyteorder("=")
        img = _RasterFile(self.staging / "image.npy", dtype, (r1 - r0, c1 - c0, nb))
        valid = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        nodata = self.cube.ignore_value()
        nodata = 0 if nodata is None else nodata
        vmin = np.full(nb, np.inf)
        vmax = np.full(nb, -np.inf)
        s1 = np.zeros(nb)
        s2 = np.zeros(nb)
        n = n_all = 0
        step = self._strip(nb, dtype.itemsize)
        for a in progress(range(r0, r1, step), desc="copy cube", unit="strip"):
            b = min(r1, a + step)
            x = self.cube.read_rows(a, b, self.bands, c0, c1)
            img.write_rows(a - r0, x)
            ok = no_data_free(x, nodata)
            valid[a - r0:b - r0] = ok
            sel = x[ok & (code[a - r0:b - r0] == 1)]
            if len(sel):
                vmin = np.minimum(vmin, sel.min(0))
                vmax = np.maximum(vmax, sel.max(0))
                sub = sel[::STATS_EVERY].astype(np.float64)  # mean/std from a pixel sample
                s1 += sub.sum(0)
                s2 += (sub * sub).sum(0)
                n += len(sub)
                n_all += len(sel)
        img.close()
        np.save(self.staging / "valid.npy", valid)
        if n == 0:
            raise InputError(f"{self.cube.data}: no valid image pixel lies in the training "
                             "region; check that the cube and forestdata_stands overlap")
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean ** 2, 0))
        info = {"min": vmin.tolist(), "max": vmax.tolist(), "mean": mean.tolist(),
                "std": std.tolist(), "pixels": int(n_all),
                "mean_std_from_every": STATS_EVERY, "nodata": nodata}
        self._finish_stage("image", info)
        return info

    # ------------------------------------------------------------------ windows
    def select_windows(self, crop, code: np.ndarray, labelled: np.ndarray, valid: np.ndarray
                       ) -> tuple[pd.DataFrame, dict]:
        """Patch centres on the stride grid; drop invalid, impure and train-overlapping ones."""
        r0, r1, c0, c1 = crop
        h, p, s = self.half, self.opts.patch, self.opts.stride
        # grid in full-image coordinates: windows start at multiples of the stride
        rows = np.arange(h + s * math.ceil(r0 / s), r1 - h, s) - r0
        cols = np.arange(h + s * math.ceil(c0 / s), c1 - h, s) - c0
        if not len(rows) or not len(cols):
            if min(r1 - r0, c1 - c0) < p:
                raise InputError(f"{self.stands.data}: the labelled area ({r1 - r0}x{c1 - c0} "
                                 f"px) is smaller than one {p}x{p} window; use a smaller --patch")
            raise UsageError(f"--stride {s} leaves no window centre inside the labelled area "
                             f"({r1 - r0}x{c1 - c0} px) with --patch {p}; use a --stride "
                             f"below {max(1, min(r1 - r0, c1 - c0) - p + 1)}")
        ok = ~window_any(valid, rows, cols, h, np.logical_not)
        ctr_code = code[np.ix_(rows, cols)]
        ok &= labelled[np.ix_(rows, cols)] & (ctr_code > 0)
        dropped = {sp: {"straddling_split_boundary": 0, "overlapping_train_window": 0}
                   for sp in SPLITS}
        keep = np.zeros_like(ok)
        for k, sp in enumerate(SPLITS, start=1):
            cand = ok & (ctr_code == k)
            if not cand.any():
                continue
            pure = ~window_any(code, rows, cols, h, lambda c, k=k: (c != 0) & (c != k))
            dropped[sp]["straddling_split_boundary"] = int((cand & ~pure).sum())
            keep |= cand & pure
        # no pixel of a val/test window inside any kept training window
        m = math.ceil(p / s) - 1
        train_near = maximum_filter((keep & (ctr_code == 1)).astype(np.uint8), size=2 * m + 1,
                                    mode="constant") > 0
        for k, sp in ((2, "val"), (3, "test")):
            bad = keep & (ctr_code == k) & train_near
            dropped[sp]["overlapping_train_window"] = int(bad.sum())
            keep &= ~bad
        gi, gj = np.nonzero(keep)
        rr, cc = rows[gi], cols[gj]
        split = np.array(SPLITS)[ctr_code[gi, gj] - 1]
        df = pd.DataFrame({"task": "taiga", "split": split,
                           "win_row": rr - h, "win_col": cc - h, "win_h": p, "win_w": p,
                           "row": rr, "col": cc, "image_row": rr + r0, "image_col": cc + c0})
        df = df.sort_values(["row", "col"], kind="stable").reset_index(drop=True)
        counts = {"grid_centres": int(ok.size), "candidates": int(ok.sum()),
                  "kept": int(keep.sum()), "dropped": dropped}
        return df, counts

    # ------------------------------------------------------------------ statistics
    def target_stats(self, table: pd.DataFrame, region_split: dict[int, int]) -> dict:
        """Class sets (all labelled pixels), weights and scaling (training pixels only)."""
        is_train = table["region"].map(region_split).fillna(0).to_numpy() == 1
        train = table[is_train]
        total = table["n"].sum()
        out: dict[str, dict] = {}
        for v in self.cat:
            counts = table.groupby(v.name)["n"].sum()
            counts = counts[counts.index > 0]
            frac = counts / total
            kept = [int(c) for c in counts.index if frac[c] >= self.opts.min_class_fraction]
            dropped = [int(c) for c in counts.index if int(c) not in kept]
            tc = train.groupby(v.name)["n"].sum()
            train_counts = np.array([int(tc.get(c, 0)) for c in kept])
            names = [v.values.get(c, f"class {c}") for c in kept]
            out[v.name] = {"codes": kept, "dropped_codes": dropped, "classes": names,
                           "pixel_fraction": {str(int(c)): float(frac[c]) for c in counts.index},
                           "train_pixels": train_counts.tolist(),
                           "class_weights": inverse_median_frequency(train_counts).tolist()}
            if not kept:
                raise InputError(f"{self.stands.data}: no category of {v.name} holds "
                                 f"{self.opts.min_class_fraction:.0%} of the labelled pixels; "
                                 "lower --min-class-fraction")
        for v in self.cont:
            g = train.groupby(v.name)["n"].sum()
            g = g[g.index >= 0]
            if g.empty:
                raise InputError(f"{self.stands.data}: the training split has no {v.name} "
                                 "values; use other --seed/--test-fraction")
            phys = g.index.to_numpy(dtype=np.float64) * v.scale
            nz = phys != 0
            clip = weighted_percentile(phys[nz], g.to_numpy()[nz], self.opts.clip_percentile) \
                if nz.any() else float(phys.max())
            lo = float(phys.min())
            hi = float(clip) if clip > lo else lo + 1.0
            out[v.name] = {"unit": v.unit, "band_name": v.band_name, "stored_scale": v.scale,
                           "clip": float(clip), "min": lo, "max": hi,
                           "true_max": float(phys.max()), "train_pixels": int(g.sum()),
                           "clip_percentile": self.opts.clip_percentile}
        return out

    # ------------------------------------------------------------------ pass 3: targets
    def write_targets(self, crop, valid: np.ndarray, stats: dict, windows: pd.DataFrame
                      ) -> pd.DataFrame:
        """targets_cls / targets_reg over the crop; centre-pixel targets into the index."""
        r0, r1, c0, c1 = crop
        H, W = r1 - r0, c1 - c0
        luts = []
        for v in self.cat:
            codes = stats[v.name]["codes"]
            lut = np.full(max(max(codes), max(v.values, default=0)) + 2, IGNORE, np.uint8)
            for i, c in enumerate(codes):
                lut[c] = i
            luts.append(lut)
        centre_r = windows["row"].to_numpy()
        centre_c = windows["col"].to_numpy()
        cls_out = np.full((len(windows), len(self.cat)), IGNORE, dtype=np.int64)
        reg_out = np.full((len(windows), len(self.cont)), np.nan, dtype=np.float32)
        sid_out = np.zeros(len(windows), dtype=np.int64)
        done = self._stage_info("targets") is not None
        if not done:
            fc = _RasterFile(self.staging / "targets_cls.npy", np.uint8, (H, W, len(self.cat)))
            fr = _RasterFile(self.staging / "targets_reg.npy", np.float32,
                             (H, W, len(self.cont)))
        step = self._strip(self.stands.bands, 4 * 4)
        for a in progress(range(r0, r1, step), desc="targets", unit="strip"):
            b = min(r1, a + step)
            lab = self.stands.read_rows(a, b, c0=c0, c1=c1)
            ok = (lab[..., self.sid_band] > 0) & valid[a - r0:b - r0]
            cls = np.full((b - a, W, len(self.cat)), IGNORE, dtype=np.uint8)
            for j, (v, lut) in enumerate(zip(self.cat, luts)):
                x = lab[..., v.band]
                inside = ok & (x >= 0) & (x < len(lut))
                cls[..., j][inside] = lut[x[inside]]
            reg = np.full((b - a, W, len(self.cont)), np.nan, dtype=np.float32)
            for j, v in enumerate(self.cont):
                st = stats[v.name]
                x = lab[..., v.band]
                good = ok & (x >= 0)
                phys = np.minimum(x[good] * v.scale, st["clip"])
                reg[..., j][good] = (phys - st["min"]) / (st["max"] - st["min"])
            if not done:
                fc.write_rows(a - r0, cls)
                fr.write_rows(a - r0, reg)
            sel = np.flatnonzero((centre_r >= a - r0) & (centre_r < b - r0))
            if len(sel):
                lr, lc = centre_r[sel] - (a - r0), centre_c[sel]
                cls_out[sel] = cls[lr, lc]
                reg_out[sel] = reg[lr, lc]
                sid_out[sel] = lab[lr, lc, self.sid_band]
        if not done:
            fc.close()
            fr.close()
            self._finish_stage("targets", {})
        windows = windows.copy()
        windows["stand_id"] = sid_out
        for j, v in enumerate(self.cat):
            windows[v.name] = cls_out[:, j]
        for j, v in enumerate(self.cont):
            windows[v.name] = reg_out[:, j]
        return windows

    # ------------------------------------------------------------------ run
    def run(self) -> dict:
        opts = self.opts
        bbox = self.survey()["bbox"]
        table = pd.read_parquet(self.staging / "survey.parquet")
        region_split = self.assign_regions(table)
        H, W = self.cube.lines, self.cube.samples
        h = self.half
        crop = (max(0, bbox[0] - h), min(H, bbox[1] + h), max(0, bbox[2] - h),
                min(W, bbox[3] + h))
        code, labelled = self.region_codes(region_split, crop)
        image_stats = self.copy_image(crop, code)
        valid = np.load(self.staging / "valid.npy")
        windows, counts = self.select_windows(crop, code, labelled, valid)
        if not (windows["split"] == "train").any():
            raise InputError(f"{self.root}: no training window survives (patch {opts.patch}); "
                             "use a smaller --patch or lower --test-fraction/--val-fraction")
        stats = self.target_stats(table, region_split)
        windows = self.write_targets(crop, valid, stats, windows)
        transform, crs = _georef(self.cube.data)
        xs, ys = transform * (windows["image_col"].to_numpy() + 0.5,
                              windows["image_row"].to_numpy() + 0.5)
        windows["x"], windows["y"] = xs, ys
        tasks = self._tasks(stats)
        wl = self.cube.wavelengths()
        regions_by_split = {sp: sorted(int(r) for r, c in region_split.items() if c == k)
                            for k, sp in enumerate(SPLITS, start=1)}
        scale = self.cube.fields.get("reflectance scale factor", 10000)
        extra = {"taiga": {
            "conventions": "see rsbench.datasets.build_taiga module docstring",
            "patch": opts.patch, "stride": opts.stride,
            "crop": {"row_off": crop[0], "col_off": crop[2], "rows": crop[1] - crop[0],
                     "cols": crop[3] - crop[2],
                     "transform": list(transform)[:6], "crs": crs.to_string() if crs else None},
            "bands": self.bands.tolist(),
            "wavelengths": wl[self.bands].tolist() if wl is not None else None,
            "wavelength_units": self.cube.fields.get("wavelength units"),
            "image_stats": {**image_stats, "scale_factor": float(scale), "dtype": "int16",
                            "stored_units": "reflectance x scale_factor"},
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
        }}
        pixel_cols = {"window_columns": WINDOW_COLUMNS}
        raster_arrays = {
            "image": {"file": self.staging / "image.npy", **pixel_cols,
                      "scale_factor": float(scale), "band_indices": self.bands.tolist()},
            "targets_cls": {"file": self.staging / "targets_cls.npy", **pixel_cols,
                            "channels": [v.name for v in self.cat], "ignore_index": IGNORE},
            "targets_reg": {"file": self.staging / "targets_reg.npy", **pixel_cols,
                            "channels": [v.name for v in self.cont], "missing": "NaN",
                            "scaled": "min-max with training statistics"},
        }
        footprints = split_regions(windows, transform, crs)
        sources = [_describe(p, self.root) for p in (self.cube.header, self.cube.data,
                                                     self.stands.header, self.stands.data)]
        from rsbench.datasets.preview_taiga import taiga_previews

        def previews(folder: Path, ds: Any) -> None:
            taiga_previews(folder, ds, code, valid)

        return self.writer.finalize(windows, keys=[], name="taiga", tasks=tasks,
                                    sources=sources, extra=extra, raster_arrays=raster_arrays,
                                    footprints=footprints, previews=previews)

    def _tasks(self, stats: dict) -> list[TaskSpec]:
        tasks = []
        for j, v in enumerate(self.cat):
            st = stats[v.name]
            tasks.append(TaskSpec(v.name, "classification", rows="taiga", target=v.name,
                                  classes=st["classes"], ignore_index=IGNORE,
                                  extra={"raster": "targets_cls", "channel": j,
                                         "codes": st["codes"],
                                         "dropped_codes": st["dropped_codes"],
                                         "train_pixels": st["train_pixels"],
                                         "class_weights": st["class_weights"]}))
        for j, v in enumerate(self.cont):
            st = stats[v.name]
            tasks.append(TaskSpec(v.name, "regression", rows="taiga", target=v.name,
                                  extra={"raster": "targets_reg", "channel": j,
                                         "unit": st["unit"], "min": st["min"], "max": st["max"],
                                         "clip": st["clip"],
                                         "clip_percentile": st["clip_percentile"],
                                         "to_physical": "scaled * (max - min) + min"}))
        return tasks


def split_regions(windows: pd.DataFrame, transform: Any, crs: Any) -> Any:
    """GeoDataFrame: per split, the union of its windows in map coordinates."""
    import geopandas as gpd
    import shapely
    from shapely import affinity

    rows = []
    a = list(transform)[:6]
    for sp in SPLITS:
        w = windows[windows["split"] == sp]
        if w.empty:
            continue
        r, c = w["image_row"].to_numpy() - w["win_h"].to_numpy() // 2, \
            w["image_col"].to_numpy() - w["win_w"].to_numpy() // 2
        boxes = shapely.box(c, r, c + w["win_w"].to_numpy(), r + w["win_h"].to_numpy())
        geom = affinity.affine_transform(shapely.union_all(boxes),
                                         [a[0], a[1], a[3], a[4], a[2], a[5]])
        rows.append({"split": sp, "windows": len(w), "area": float(geom.area), "geometry": geom})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


def build_taiga(taiga: str | os.PathLike, out: str | os.PathLike, resume: bool = False,
                **options: Any) -> dict:
    """Build the TAIGA patch dataset; returns the manifest (see the module docstring)."""
    return TaigaBuilder(taiga, out, TaigaOptions(**options), resume=resume).run()


def manifest_json(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, default=str)
