"""What build-psc's finish derives from the patch index: footprint polygons, the masks' pixel
counts per split, and the stable sample keys of ``splits.csv``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rsbench.datasets.format.manifest import TaskSpec
from rsbench.datasets.sources import gid


def footprints_frame(index: pd.DataFrame, infos: dict[str, dict], classes: int):
    """Patch polygons in the source CRS (one GeoDataFrame per CRS), or None without georef."""
    import geopandas as gpd
    import shapely

    names = ["unlabelled", *gid.class_names(classes)]
    frames = []
    by_crs: dict[str, list[int]] = {}
    for i, stem in enumerate(index["image_id"]):
        crs = infos.get(stem, {}).get("crs")
        if crs:
            by_crs.setdefault(crs, []).append(i)
    for crs, rows in by_crs.items():
        sub = index.iloc[rows].drop(columns=["class_fractions"]).reset_index(drop=True)
        fr = np.stack(index["class_fractions"].iloc[rows].to_numpy())
        for k, n in enumerate(names):
            sub[f"frac_{n}"] = fr[:, k]
        # pixel corners -> map coordinates with each image's affine, all patches at once
        t = np.array([infos[stem]["transform"] for stem in sub["image_id"]], dtype=np.float64)
        c0 = sub["col_off"].to_numpy(np.float64)
        r0 = sub["row_off"].to_numpy(np.float64)
        c1, r1 = c0 + sub["width"].to_numpy(), r0 + sub["height"].to_numpy()
        xs = [t[:, 0] * c + t[:, 1] * r + t[:, 2] for c, r in ((c0, r0), (c1, r0), (c0, r1),
                                                              (c1, r1))]
        ys = [t[:, 3] * c + t[:, 4] * r + t[:, 5] for c, r in ((c0, r0), (c1, r0), (c0, r1),
                                                              (c1, r1))]
        geoms = shapely.box(np.min(xs, axis=0), np.min(ys, axis=0), np.max(xs, axis=0),
                            np.max(ys, axis=0))
        frames.append(gpd.GeoDataFrame(sub, geometry=geoms, crs=crs))
    return frames or None


def split_keys(index: pd.DataFrame) -> list[str]:
    """Stable sample keys for ``splits.csv``: source image and pixel window (row, col, h, w)."""
    return [f"{src}#{r},{c},{h},{w}" for src, r, c, h, w in
            zip(index["source"], index["row_off"], index["col_off"], index["height"],
                index["width"])]


def mask_pixel_counts(index: pd.DataFrame, task: TaskSpec, size: int) -> dict:
    """Per-split pixel counts of the stored masks, from the patches' class fractions.

    The fractions were computed from exact integer counts, so rounding them back is exact while
    float32 can hold ``size * size`` pixels to within half a pixel; larger patches return {}
    (and the writer counts the mask array instead).
    """
    npix = size * size
    if npix > 1 << 22:
        return {}
    frac = np.stack(index["class_fractions"].to_numpy()).astype(np.float64)
    pixels = np.rint(frac * npix).astype(np.int64)
    out = {}
    for split in sorted(index["split"].unique()):
        total = pixels[(index["split"] == split).to_numpy()].sum(axis=0)
        out[str(split)] = {name: int(total[k]) for k, name in enumerate(task.classes)}
    return {task.name: out}
