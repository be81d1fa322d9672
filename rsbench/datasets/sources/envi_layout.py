"""Does an ENVI header's ``interleave`` fit its data? A cheap check that two smoothness models agree.

A wrong ``interleave`` (e.g. ``bil`` for a BSQ file) passes every size check, since all three
layouts hold the same bytes, and silently scrambles the cube. Neighbouring values of real
rasters are alike along the axes the data are smooth on, and each layout puts those neighbours
at a different distance in the file: BSQ at 1 (next column), ``samples`` (next row) and
``lines × samples`` (next band); BIL at 1, ``bands × samples`` and ``samples``; BIP at
``bands``, ``samples × bands`` and 1. So the mean absolute difference of values that far apart
(read from a few short runs spread over the file, no-data left out) scores each layout.

Two models of the data score it: *spatial* (next column + next row; right for rasters of
unrelated variables, such as TAIGA's forest-variable raster) and *spatial and spectral* (plus the
next band; right for spectra, whose neighbouring bands are alike). Either alone misjudges the
other kind of raster; a header is refused only when **both** find another layout at least
:data:`MARGIN` times smoother than the declared one, so a raster that either model describes
is never refused. Noise scores every layout alike and is never refused; a layout mix-up that
only one model sees (e.g. BIL read as BSQ, where the next band of BIL is as alike as the next
row) is let through rather than risk refusing a good file. Measured on the real Houston crop
and the synthetic TAIGA written in each of the three layouts: every correct header passes, every
BSQ file declared ``bil`` or ``bip`` is refused (margins 1.35–5.9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rsbench.errors import InputError

if TYPE_CHECKING:
    from rsbench.datasets.sources.envi import EnviRaster

MARGIN = 1.2  # both models must find another layout this many times smoother
RUNS, RUN = 32, 128  # short runs of values read per distance
MIN_PAIRS = 256  # fewer valid pairs than this at any distance: too little to judge


def layout_distances(lines: int, samples: int, bands: int) -> dict[str, tuple[int, int, int]]:
    """Per layout, the file distance (in values) of the next column, next row and next band."""
    L, S, B = lines, samples, bands
    return {"bsq": (1, S, L * S), "bil": (1, B * S, S), "bip": (B, S * B, 1)}


def mean_difference(raster: EnviRaster, distance: int, rng: np.random.Generator) -> float:
    """Mean |x[i] - x[i + distance]| over RUNS runs of RUN values at random ``i`` (NaN when
    fewer than MIN_PAIRS pairs are valid: zero, the ignore value and non-finite values are
    left out)."""
    total = raster.lines * raster.samples * raster.bands
    if distance + RUN >= total:
        return float("nan")
    item, ignore = raster.dtype.itemsize, raster.ignore_value()
    starts = np.sort(rng.integers(0, total - distance - RUN, RUNS))
    pairs = []
    with open(raster.data, "rb") as f:
        for i in starts:
            runs = []
            for at in (int(i), int(i) + distance):
                f.seek(raster.offset + at * item)
                runs.append(np.frombuffer(f.read(RUN * item), dtype=raster.dtype)
                            .astype(np.float64))
            pairs.append(np.stack(runs))
    a, b = np.concatenate(pairs, axis=1)
    keep = np.isfinite(a) & np.isfinite(b) & (a != 0) & (b != 0)
    if ignore is not None:
        keep &= (a != ignore) & (b != ignore)
    if keep.sum() < MIN_PAIRS:
        return float("nan")
    return float(np.abs(a[keep] - b[keep]).mean())


def better_layouts(raster: EnviRaster) -> dict[str, float]:
    """Layouts both models find at least MARGIN times smoother than the declared one, with the
    smaller of the two ratios; {} when the declared layout fits or the data cannot tell."""
    if raster.bands < 2 or raster.lines < 2 or raster.samples < 2:
        return {}
    dist = layout_distances(raster.lines, raster.samples, raster.bands)
    rng = np.random.default_rng(0)
    diff = {d: mean_difference(raster, d, rng) for d in sorted({d for t in dist.values()
                                                                 for d in t})}
    if not all(np.isfinite(v) for v in diff.values()):
        return {}
    spatial = {k: diff[c] + diff[r] for k, (c, r, _) in dist.items()}
    spectral = {k: diff[c] + diff[r] + diff[b] for k, (c, r, b) in dist.items()}
    own = raster.interleave
    out = {}
    for k in dist:
        if k != own:
            ratio = min(_ratio(spatial[own], spatial[k]), _ratio(spectral[own], spectral[k]))
            if ratio >= MARGIN:
                out[k] = ratio
    return out


def _ratio(own: float, other: float) -> float:
    """own / other, with 0 / 0 = 1 (alike) and x / 0 = inf."""
    if other == 0:
        return 1.0 if own == 0 else float("inf")
    return own / other


def check_interleave(raster: EnviRaster) -> None:
    """Refuse a header whose ``interleave`` scrambles its data (see the module docstring)."""
    better = better_layouts(raster)
    if not better:
        return
    best = max(better, key=better.get)
    times = f"{better[best]:.1f} times" if np.isfinite(better[best]) else "many times"
    raise InputError(
        f"{raster.header}: 'interleave = {raster.interleave}' does not fit {raster.data.name}: "
        f"read that way neighbouring pixels and bands differ {times} more than read "
        f"as {best}; set 'interleave = {best}' if the file was written that way, or download "
        "the header again")
