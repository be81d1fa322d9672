"""TAIGA windows: no-data masks, the stride grid, leak-free window selection, footprints."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter, maximum_filter1d

SPLITS = ("train", "val", "test")  # split codes 1, 2, 3 in region rasters; 0 = no region


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


def grid(crop: tuple[int, int, int, int], patch: int, stride: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """Window centres (rows, cols relative to the crop) on the stride grid, which is anchored in
    full-image coordinates (centres at patch//2 + k*stride); may be empty."""
    r0, r1, c0, c1 = crop
    h, s = patch // 2, stride
    rows = np.arange(h + s * math.ceil(r0 / s), r1 - h, s) - r0
    cols = np.arange(h + s * math.ceil(c0 / s), c1 - h, s) - c0
    return rows, cols


def select_windows(crop: tuple[int, int, int, int], code: np.ndarray, labelled: np.ndarray,
                   valid: np.ndarray, patch: int, stride: int, task: str = "taiga"
                   ) -> tuple[pd.DataFrame, dict]:
    """Patch centres on the stride grid; drop invalid, impure and train-overlapping ones
    (``task``: the index's ``task`` value of every window, the dataset's name)."""
    r0, c0 = crop[0], crop[2]
    h, p, s = patch // 2, patch, stride
    rows, cols = grid(crop, patch, stride)
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
    df = pd.DataFrame({"task": task, "split": split,
                       "win_row": rr - h, "win_col": cc - h, "win_h": p, "win_w": p,
                       "row": rr, "col": cc, "image_row": rr + r0, "image_col": cc + c0})
    df = df.sort_values(["row", "col"], kind="stable").reset_index(drop=True)
    counts = {"grid_centres": int(ok.size), "candidates": int(ok.sum()),
              "kept": int(keep.sum()), "dropped": dropped}
    return df, counts


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
