"""A synthetic TAIGA in the real ENVI layout, for the demo, tests and benchmarks.

Writes ``20170615_reflectance_mosaic_128b`` (int16 reflectance ×10000, BSQ, wavelengths in
micrometres, 0 = no data outside an irregular flight-line border) and ``forestdata_stands``
(int32 BIP, the 14 real band names, ``band descriptions`` JSON as the TAIGA code writes it).
Stands are Voronoi polygons shrunk by a road gap and rasterised, so every pixel of a stand shares
its variables; label pixels within 22 px of image no-data are zeroed as in TAIGA, so 45×45
windows around labels are safe. Spectra are a vegetation model whose red edge, NIR plateau,
green peak, canopy cover (basal area) and skylit shadow (height) depend on the stand's species,
fertility, soil, LAI, height, basal area and species shares, plus correlated per-pixel
illumination and band noise (larger in the noisy bands above 930 nm). Every continuous
variable is a function of those up to a small per-stand scatter, so models can learn each one
from the image. Deterministic by seed; written in row strips, so memory stays bounded for any
size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from scipy.ndimage import minimum_filter

from rsbench.datasets.sources.envi import format_header, map_info
from rsbench.datasets.sources.taiga import (
    BAND_NAMES,
    CUBE_NAMES,
    STANDS_NAME,
    reference_band_descriptions,
)
from rsbench.errors import UsageError
from rsbench.progress import progress

PIXEL = 0.7  # m, as TAIGA
ORIGIN = (360000.0, 6860000.0)  # UTM 35N, southern boreal Finland
LABEL_BUFFER = 22  # label pixels this close to no-data are zeroed (TAIGA's buffer)
ROAD_GAP = 1.5  # px: stands are shrunk by this much, leaving unlabelled gaps between them


def wavelengths_um(bands: int) -> np.ndarray:
    """AISA Eagle II-like band centres from 400 to 1000 nm, in micrometres."""
    return np.round(np.linspace(0.4005, 0.9975, bands), 4)


def stand_table(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-stand variables in physical units, correlated as in boreal forest inventories.

    Every continuous variable is a function of what :func:`stand_spectra` shows (species,
    fertility, height, basal area, species shares, LAI) up to a small per-stand scatter that no
    spectrum can see, so a model can learn each one from the image.
    """
    species = rng.choice([1, 2, 3], size=n, p=[0.5, 0.33, 0.17])
    fert = rng.choice(np.arange(1, 7), size=n, p=[0.03, 0.15, 0.42, 0.30, 0.07, 0.03])
    soil = np.where(rng.random(n) < 0.15 + 0.1 * (fert >= 5), 2, 1)
    height = np.clip(8 + 3.5 * (4 - fert) + np.select([species == 1, species == 2], [1.0, 2.5],
                                                       -1.0) + rng.normal(0, 3, n) + 8, 3, 32)
    dbh = np.clip(height * 1.25 + rng.normal(0, 1, n), 4, 45)
    basal = np.clip(8 + 0.6 * height + rng.normal(0, 3, n), 2, 45)
    stems = basal / (np.pi * (dbh / 200) ** 2) * rng.uniform(0.97, 1.03, n)
    alpha = np.ones((n, 3)) + 6 * np.eye(3)[species - 1]
    shares = rng.gamma(alpha)
    shares = shares / shares.sum(1, keepdims=True)
    pct = np.floor(shares * 100)
    biomass = 0.5 * basal * height * rng.uniform(0.98, 1.02, n)
    lai_base = np.select([species == 1, species == 2], [2.4, 3.6], 3.0)
    lai = np.clip(lai_base * basal / 20 + rng.normal(0, 0.3, n), 0.3, 7)
    clump = np.select([species == 1, species == 2], [0.55, 0.45], 0.85)
    t = {"fertility_class": fert, "soil_class": soil, "main_tree_species_class": species,
         "basal_area": basal, "mean_dbh": dbh, "stem_density": stems, "mean_height": height,
         "percentage_of_pine": pct[:, 0], "percentage_of_spruce": pct[:, 1],
         "percentage_of_birch": pct[:, 2], "woody_biomass": biomass, "leaf_area_index": lai,
         "effective_leaf_area_index": lai * clump}
    # a few stands without tree data, as in the real raster (species 0, continuous 0)
    empty = rng.random(n) < 0.02
    for k in t:
        if k not in ("fertility_class", "soil_class"):
            t[k] = np.where(empty, 0, t[k])
    return t


def stand_spectra(t: dict[str, np.ndarray], wl: np.ndarray) -> np.ndarray:
    """Reflectance spectra (n, bands) of a stand from its variables (a vegetation model).

    Sunlit canopy: visible level (soil, pine and spruce shares), green peak (birch and spruce
    shares, fertility), red absorption and NIR plateau (LAI, species and its shares, fertility),
    red-edge position, NIR slope (birch). Canopy cover rises with basal area; the gaps show
    understory (brighter red, weaker red edge). Shadow grows with tree height and is lit by
    blue skylight, so it darkens NIR more than blue.
    """
    sp, fert, soil = t["main_tree_species_class"], t["fertility_class"], t["soil_class"]
    lai, height, basal = t["leaf_area_index"], t["mean_height"], t["basal_area"]
    pine, spruce, birch = (t[f"percentage_of_{s}"][:, None] / 100
                           for s in ("pine", "spruce", "birch"))
    f = (4 - fert)[:, None]
    vis = 0.035 + 0.006 * (soil[:, None] == 1) - 0.12 * pine * (0.55 - wl) - 0.008 * spruce
    green = (0.025 + 0.015 * birch - 0.01 * spruce + 0.004 * f) \
        * np.exp(-((wl - 0.55) / 0.03) ** 2)
    red = -(0.012 + 0.003 * lai[:, None]) * np.exp(-((wl - 0.675) / 0.02) ** 2)
    nir = (0.16 + 0.045 * lai + 0.04 * (sp == 3) - 0.015 * (sp == 1) + 0.012 * (4 - fert))[:, None] \
        + 0.06 * birch - 0.04 * pine
    edge = (0.705 + 0.004 * lai + 0.003 * (4 - fert))[:, None]
    slope = 0.15 * birch * (wl - 0.75)
    canopy = vis + green + red + (nir - vis) * (1 / (1 + np.exp(-(wl - edge) / 0.012))) \
        + slope * (wl > 0.72)
    under = 0.04 + 0.25 * (wl - 0.4) + 0.1 / (1 + np.exp(-(wl - 0.72) / 0.02))
    cover = (1 - np.exp(-basal / 15))[:, None]
    shade = (0.1 + 0.02 * (height - 3)).clip(0, 0.8)[:, None]
    sky = 0.3 * (0.45 / wl) ** 4  # skylight: what shadows still reflect, relative to sunlit
    r = (cover * canopy + (1 - cover) * under) * (1 - shade * (1 - sky))
    r = r * (1 - 0.25 * np.exp(-((wl - 0.94) / 0.015) ** 2))  # water absorption
    empty = sp == 0
    r[empty] = 0.06 + 0.12 * (wl > 0.7)  # clear-cut: soil and low vegetation
    return r.astype(np.float32)


def other_spectra(wl: np.ndarray) -> np.ndarray:
    """Spectra of road (0), field (1) and water (2)."""
    road = 0.12 + 0.06 * (wl - 0.4)
    field = 0.05 + 0.04 * np.exp(-((wl - 0.55) / 0.03) ** 2) + 0.38 / (1 + np.exp(-(wl - 0.71)
                                                                                   / 0.01))
    water = 0.04 * np.exp(-(wl - 0.45) / 0.15)
    return np.stack([road, field, water]).astype(np.float32)


def valid_rows(r0: int, r1: int, rows: int, cols: int, seed: int) -> np.ndarray:
    """No-data border of a flight-line mosaic: (r1-r0, cols) bool, True = image data."""
    rr = np.arange(r0, r1)[:, None].astype(np.float64)
    cc = np.arange(cols)[None, :]
    ph = (seed % 97) / 97 * 6.28
    m = max(4, min(rows, cols) // 25)
    left = m + 0.06 * cols * (rr / rows) + m * 0.6 * np.sin(rr / max(rows, 1) * 9 + ph)
    right = cols - m - 0.05 * cols * (1 - rr / rows) + m * 0.5 * np.sin(rr / rows * 7 + 2 * ph)
    top = m + m * 0.5 * np.sin(cc / cols * 8 + ph)
    bottom = rows - m - m * 0.5 * np.sin(cc / cols * 5 + 3 * ph)
    return (cc >= left) & (cc < right) & (rr >= top) & (rr < bottom)


def cell_polygons(rows: int, cols: int, n: int, rng: np.random.Generator) -> list:
    """Voronoi cells of ``n`` random seeds over the image (x = col, y = row), shrunk by roads."""
    pts = shapely.points(rng.uniform([0, 0], [cols, rows], size=(n, 2)))
    frame = shapely.box(0, 0, cols, rows)
    cells = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame)
    polys = [shapely.intersection(c, frame) for c in shapely.get_parts(cells)]
    # voronoi_polygons does not keep input order; order cells by their seed for determinism
    order = [int(np.argmin(shapely.distance(pts, p.centroid))) for p in polys]
    polys = [p for _, p in sorted(zip(order, polys), key=lambda x: x[0])]
    return [p.buffer(-ROAD_GAP) for p in polys]


def synth_taiga(out: str | Path, size: tuple[int, int] = (768, 768), bands: int = 128,
                stands: int = 24, seed: int = 0, strip_bytes: int = 64 << 20) -> Path:
    """Write a synthetic TAIGA under ``out`` (cube + forestdata_stands); returns ``out``."""
    rows, cols = size
    if rows < 64 or cols < 64:
        raise UsageError(f"--size {rows}x{cols} is too small; use at least 64x64")
    if not 8 <= bands <= 512:
        raise UsageError(f"--bands {bands} is out of range; use 8..512 (TAIGA has 128)")
    if stands < 4:
        raise UsageError("--stands must be at least 4")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_cells = int(stands / 0.88) + 1
    polys = cell_polygons(rows, cols, n_cells, rng)
    kind = np.where(rng.random(n_cells) < 0.12, rng.choice([1, 2], size=n_cells), 0)  # 0 forest
    forest = np.flatnonzero(kind == 0)
    ids = np.zeros(n_cells, dtype=np.int64)
    ids[forest] = 100000 + rng.choice(900000, size=len(forest), replace=False)
    t = stand_table(n_cells, rng)
    wl = wavelengths_um(bands)
    # lookup tables indexed by cell + 1 (0 = road gap / outside every cell)
    spectra = np.concatenate([other_spectra(wl)[:1], stand_spectra(t, wl)])
    spectra[1:][kind == 1] = other_spectra(wl)[1]
    spectra[1:][kind == 2] = other_spectra(wl)[2]
    labels = np.zeros((n_cells + 1, len(BAND_NAMES)), dtype=np.int32)
    for j, name in enumerate(BAND_NAMES[:-1]):
        var = name.split("*")[0].split("_[")[0]
        factor = 100 if "*100" in name else 1
        labels[1:, j] = np.round(t[var] * factor).astype(np.int32)
    labels[1:, -1] = ids
    labels[1:][kind != 0] = 0
    noise_scale = np.where(wl > 0.93, 0.012, 0.003).astype(np.float32)
    nir_shape = (1 / (1 + np.exp(-(wl - 0.71) / 0.012))).astype(np.float32)

    cube_path = out / CUBE_NAMES[0]
    stands_path = out / STANDS_NAME
    strip = max(1, min(rows, strip_bytes // (cols * bands * 4 * 3)))
    shapes = [(p, i + 1) for i, p in enumerate(polys) if not p.is_empty]
    tree = shapely.STRtree([p for p, _ in shapes])
    with open(cube_path, "wb") as fc, open(stands_path, "wb") as fs:
        fc.truncate(rows * cols * bands * 2)
        for r0 in progress(range(0, rows, strip), desc="synth TAIGA", unit="strip"):
            r1 = min(rows, r0 + strip)
            h = r1 - r0
            near = tree.query(shapely.box(0, r0, cols, r1))
            cell = rasterize([shapes[i] for i in near], out_shape=(h, cols),
                             transform=Affine(1, 0, 0, 0, 1, r0), fill=0, dtype="int32") \
                if len(near) else np.zeros((h, cols), np.int32)
            valid = valid_rows(r0, r1, rows, cols, seed)
            srng = np.random.default_rng([seed, r0])
            illum = srng.normal(1.0, 0.04, size=(h, cols, 1)).astype(np.float32)
            crown = srng.normal(0.0, 0.02, size=(h, cols, 1)).astype(np.float32)
            refl = spectra[cell] * illum + crown * nir_shape
            refl += srng.normal(0, 1, size=refl.shape).astype(np.float32) * noise_scale
            cube = np.clip(np.rint(refl * 10000), 1, 32767).astype("<i2")
            cube[~valid] = 0
            for b in range(bands):
                fc.seek((b * rows + r0) * cols * 2)
                fc.write(np.ascontiguousarray(cube[:, :, b]).tobytes())
            # labels: zero within LABEL_BUFFER px of no-data (and outside the image)
            g0, g1 = max(0, r0 - LABEL_BUFFER), min(rows, r1 + LABEL_BUFFER)
            safe = minimum_filter(valid_rows(g0, g1, rows, cols, seed).astype(np.uint8),
                                  size=2 * LABEL_BUFFER + 1, mode="constant", cval=0)
            safe = safe[r0 - g0:r0 - g0 + h].astype(bool)
            lab = labels[cell]
            lab[~safe] = 0
            fs.write(lab.astype("<i4").tobytes())
    mi = map_info(ORIGIN[0], ORIGIN[1], PIXEL, 35)
    cube_hdr = {
        "description": f"synthetic TAIGA reflectance mosaic (rsbench synth taiga, seed {seed})",
        "samples": cols, "lines": rows, "bands": bands, "header offset": 0,
        "file type": "ENVI Standard", "data type": 2, "interleave": "bsq", "byte order": 0,
        "map info": mi, "data ignore value": 0, "reflectance scale factor": 10000,
        "wavelength units": "Micrometers", "wavelength": [f"{w:.4f}" for w in wl],
        "fwhm": ["0.0047"] * bands,
    }
    desc = json.dumps(reference_band_descriptions())[1:-1]  # without outermost braces, as TAIGA
    stands_hdr = {
        "description": "Standlevel forest variable data (synthetic, rsbench synth taiga)",
        "samples": cols, "lines": rows, "bands": len(BAND_NAMES), "header offset": 0,
        "file type": "ENVI Standard", "data type": 3, "interleave": "bip", "byte order": 0,
        "map info": mi, "band names": BAND_NAMES, "band descriptions": desc,
    }
    (out / f"{CUBE_NAMES[0]}.hdr").write_text(format_header(cube_hdr))
    (out / f"{STANDS_NAME}.hdr").write_text(format_header(stands_hdr))
    return out
