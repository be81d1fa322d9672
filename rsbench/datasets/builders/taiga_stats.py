"""TAIGA target statistics: band selection, class sets and weights, continuous scaling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from rsbench.datasets.format.manifest import TaskSpec
from rsbench.errors import InputError, UsageError

IGNORE = 255


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


def target_stats(table: pd.DataFrame, region_split: dict[int, int], cat: list, cont: list,
                 min_class_fraction: float, clip_percentile: float, where: Any) -> dict:
    """Class sets (all labelled pixels), weights and scaling (training pixels only)."""
    is_train = table["region"].map(region_split).fillna(0).to_numpy() == 1
    train = table[is_train]
    total = table["n"].sum()
    out: dict[str, dict] = {}
    for v in cat:
        counts = table.groupby(v.name)["n"].sum()
        counts = counts[counts.index > 0]
        frac = counts / total
        kept = [int(c) for c in counts.index if frac[c] >= min_class_fraction]
        dropped = [int(c) for c in counts.index if int(c) not in kept]
        tc = train.groupby(v.name)["n"].sum()
        train_counts = np.array([int(tc.get(c, 0)) for c in kept])
        names = [v.values.get(c, f"class {c}") for c in kept]
        out[v.name] = {"codes": kept, "dropped_codes": dropped, "classes": names,
                       "pixel_fraction": {str(int(c)): float(frac[c]) for c in counts.index},
                       "train_pixels": train_counts.tolist(),
                       "class_weights": inverse_median_frequency(train_counts).tolist()}
        if not kept:
            raise InputError(f"{where}: no category of {v.name} holds "
                             f"{min_class_fraction:.0%} of the labelled pixels; "
                             "lower --min-class-fraction")
    for v in cont:
        g = train.groupby(v.name)["n"].sum()
        g = g[g.index >= 0]
        if g.empty:
            raise InputError(f"{where}: the training split has no {v.name} "
                             "values; use other --seed/--test-fraction")
        phys = g.index.to_numpy(dtype=np.float64) * v.scale
        nz = phys != 0
        clip = weighted_percentile(phys[nz], g.to_numpy()[nz], clip_percentile) \
            if nz.any() else float(phys.max())
        lo = float(phys.min())
        hi = float(clip) if clip > lo else lo + 1.0
        out[v.name] = {"unit": v.unit, "band_name": v.band_name, "stored_scale": v.scale,
                       "clip": float(clip), "min": lo, "max": hi,
                       "true_max": float(phys.max()), "train_pixels": int(g.sum()),
                       "clip_percentile": clip_percentile}
    return out


def task_specs(stats: dict, cat: list, cont: list, rows: str = "taiga") -> list[TaskSpec]:
    """One TaskSpec per variable (see the build_taiga module docstring); ``rows``: the index's
    ``task`` value of the windows (the dataset's name)."""
    tasks = []
    for j, v in enumerate(cat):
        st = stats[v.name]
        tasks.append(TaskSpec(v.name, "classification", rows=rows, target=v.name,
                              classes=st["classes"], ignore_index=IGNORE,
                              extra={"raster": "targets_cls", "channel": j,
                                     "codes": st["codes"],
                                     "dropped_codes": st["dropped_codes"],
                                     "train_pixels": st["train_pixels"],
                                     "class_weights": st["class_weights"]}))
    for j, v in enumerate(cont):
        st = stats[v.name]
        tasks.append(TaskSpec(v.name, "regression", rows=rows, target=v.name,
                              extra={"raster": "targets_reg", "channel": j,
                                     "unit": st["unit"], "min": st["min"], "max": st["max"],
                                     "clip": st["clip"],
                                     "clip_percentile": st["clip_percentile"],
                                     "to_physical": "scaled * (max - min) + min"}))
    return tasks
