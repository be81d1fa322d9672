"""A synthetic GID in the real on-disk layout, for the demo, tests and benchmarks.

Each image is a mosaic of contiguous land-cover regions (warped Voronoi cells) with a
class-dependent colour and texture; the RGB label uses GID's real colours. Some regions are
unlabelled (black), and a few label pixels get off-palette colours like real GID labels
(near-black noise, near-class colours), so the builder's rules have real work to do.
Images are written in row strips, so very large images need little memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from rsbench.datasets.sources.gid import class_colors, scheme
from rsbench.errors import UsageError
from rsbench.progress import progress

SCHEME_FOLDERS = {5: "Large-scale Classification_5classes",
                  15: "Fine Land-cover Classification_15classes"}
CRS_UTM50N = CRS.from_epsg(32650)
PIXEL_SIZE = 4.0
COARSE = 8  # region map resolution: one coarse cell per COARSE×COARSE pixels
OFF_PALETTE_5 = [(14, 11, 11), (15, 5, 0), (255, 0, 3), (0, 0, 233), (0, 225, 0)]
OFF_PALETTE_15 = [(14, 11, 11), (201, 0, 0)]


def stem_for(i: int, seed: int) -> str:
    sensor = 1 + (i % 2)
    return f"GF2_PMS{sensor}__L1A{(seed * 7919 + i * 104729) % 10**10:010d}-MSS{sensor}"


def region_map(rows: int, cols: int, classes: int, rng: np.random.Generator,
               unlabelled_share: float = 0.12) -> np.ndarray:
    """Coarse (rows/COARSE × cols/COARSE) class map of warped Voronoi regions (0 = unlabelled)."""
    cr, cc = -(-rows // COARSE), -(-cols // COARSE)
    n_regions = max(6, int(cr * cc / 900))
    seeds = rng.uniform([0, 0], [cr, cc], size=(n_regions, 2))
    # a few dominant classes per image, so many patches have a clear majority
    main = rng.choice(np.arange(1, classes + 1), size=min(classes, 3), replace=False)
    probs = np.full(classes, 0.4 / classes)
    probs[main - 1] += 0.6 / len(main)
    region_class = rng.choice(np.arange(1, classes + 1), size=n_regions, p=probs / probs.sum())
    region_class[rng.random(n_regions) < unlabelled_share] = 0
    yy, xx = np.mgrid[0:cr, 0:cc].astype(np.float32)
    # warp coordinates with smooth waves so boundaries are irregular
    for _ in range(2):
        a, f, ph = rng.uniform(2, 6), rng.uniform(0.02, 0.08), rng.uniform(0, 6.3)
        yy = yy + a * np.sin(f * xx + ph)
        xx = xx + a * np.cos(f * yy + ph)
    best = np.zeros((cr, cc), dtype=np.int32)
    best_d = np.full((cr, cc), np.inf, dtype=np.float32)
    for k, (sy, sx) in enumerate(seeds):
        d = (yy - sy) ** 2 + (xx - sx) ** 2
        closer = d < best_d
        best[closer] = k
        best_d[closer] = d[closer]
    return region_class[best].astype(np.uint8)


def _class_looks(classes: int, rng: np.random.Generator) -> np.ndarray:
    """Per class (index 0 = unlabelled look): base NIR,R,G,B colour and texture strength."""
    looks = np.zeros((classes + 1, 5), dtype=np.float32)
    for k in range(classes + 1):
        base = rng.uniform(40, 200, size=4)
        looks[k, :4] = base
        looks[k, 4] = rng.uniform(4, 30)
    return looks


def _strip_pixels(coarse_strip: np.ndarray, r0: int, rows: int, cols: int) -> np.ndarray:
    """Upsample coarse class rows to full resolution for image rows r0..r0+rows."""
    rr = (np.arange(r0, r0 + rows) // COARSE)
    return np.repeat(coarse_strip[rr - rr[0]], COARSE, axis=1)[:, :cols]


def write_image_pair(folder: Path, stem: str, classes: int, rows: int, cols: int,
                     seed: int, index: int, strip: int = 512) -> None:
    """Write one RGB image, one NirRGB image and one colour label, strip by strip."""
    rng = np.random.default_rng([seed, index])
    coarse = region_map(rows, cols, classes, rng)
    looks = _class_looks(classes, np.random.default_rng([seed, 999]))
    colors = np.array([(0, 0, 0), *class_colors(classes)], dtype=np.uint8)
    off_colors = np.array(OFF_PALETTE_5 if classes == 5 else OFF_PALETTE_15, dtype=np.uint8)
    off_rate = 0.004 if classes == 5 else 2e-6
    transform = from_origin(300000 + 40000 * index, 3500000 - 30000 * index, PIXEL_SIZE,
                            PIXEL_SIZE)
    common = dict(driver="GTiff", height=rows, width=cols, dtype="uint8", crs=CRS_UTM50N,
                  transform=transform)
    label_dir = folder / f"label_{classes}classes"
    paths = {
        "rgb": folder / "image_RGB" / f"{stem}.tif",
        "nir": folder / "image_NirRGB" / f"{stem}.tif",
        "label": label_dir / f"{stem}_label.tif",
    }
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(paths["rgb"], "w", count=3, **common) as rgb_ds, \
            rasterio.open(paths["nir"], "w", count=4, **common) as nir_ds, \
            rasterio.open(paths["label"], "w", count=3, **common) as lab_ds:
        for r0 in range(0, rows, strip):
            h = min(strip, rows - r0)
            srng = np.random.default_rng([seed, index, r0])
            cls = _strip_pixels(coarse[r0 // COARSE: (r0 + h - 1) // COARSE + 1], r0, h, cols)
            # unlabelled regions still show some land cover in the image
            look_cls = np.where(cls == 0, (np.arange(cols)[None, :] // 97) % classes + 1, cls)
            base = looks[look_cls]  # h, w, 5
            noise = srng.normal(0, 1, size=(h, cols)).astype(np.float32)
            yy = np.arange(r0, r0 + h, dtype=np.float32)[:, None]
            xx = np.arange(cols, dtype=np.float32)[None, :]
            pattern = np.sin(yy * (0.05 + 0.02 * (look_cls % 4)) + xx * 0.03 * (look_cls % 3))
            tex = base[..., 4] * (0.6 * noise + 0.4 * pattern)
            img = np.clip(base[..., :4] + tex[..., None], 0, 255).astype(np.uint8)
            img = np.moveaxis(img, -1, 0)  # NIR, R, G, B
            lab = colors[cls]  # h, w, 3
            n_off = srng.binomial(h * cols, off_rate)
            if n_off:
                flat = lab.reshape(-1, 3)
                where = srng.choice(h * cols, size=n_off, replace=False)
                flat[where] = off_colors[srng.integers(0, len(off_colors), size=n_off)]
            window = rasterio.windows.Window(0, r0, cols, h)
            nir_ds.write(img, window=window)
            rgb_ds.write(img[1:], window=window)
            lab_ds.write(np.moveaxis(lab, -1, 0), window=window)


def synth_gid(out: str | Path, classes: int = 5, images: int = 4,
              size: tuple[int, int] = (1024, 1024), seed: int = 0) -> Path:
    """Write a synthetic GID ``classes``-class set under ``out``; returns the scheme folder."""
    scheme(classes)
    rows, cols = size
    if rows < 64 or cols < 64:
        raise UsageError(f"--size {rows}x{cols} is too small; use at least 64x64")
    if images < 1:
        raise UsageError("--images must be at least 1")
    folder = Path(out) / SCHEME_FOLDERS[classes]
    for i in progress(range(images), desc=f"synth GID-{classes}", unit="image"):
        write_image_pair(folder, stem_for(i, seed), classes, rows, cols, seed, i)
    return folder
