"""Class separability of pixel spectra: Jeffries–Matusita distance and Transformed Divergence.

With Gaussian class models (mean m_i, covariance S_i) and S = (S1 + S2) / 2:

- B  = 1/8 (m1−m2)ᵀ S⁻¹ (m1−m2) + 1/2 ln(det S / sqrt(det S1 det S2)),  JM = 2 (1 − e^(−B));
- D  = 1/2 tr[(S1−S2)(S2⁻¹−S1⁻¹)] + 1/2 tr[(S1⁻¹+S2⁻¹)(m1−m2)(m1−m2)ᵀ], TD = 2 (1 − e^(−D/8)).

Both lie on 0..2 (≥ 1.9: well separable; < 1: hardly). Numerics for 100+ correlated bands:
bands are first scaled by the pooled standard deviation (JM and TD are invariant to any
invertible linear map, so this only improves conditioning), then every inverse and determinant
goes through a Cholesky factor (log-determinants, triangular solves; the trace term of D as
squared Frobenius norms, so it cannot come out negative). A covariance that is singular — e.g. a
class with no more pixels than bands — raises a clear error unless a ridge is asked for:
``ridge=λ`` adds λ·mean(diag S_i) to the diagonal of each standardised class covariance.
Class statistics are accumulated chunk by chunk (Chan's parallel update), so any number of
pixels can be streamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular

from rsbench.errors import InputError, UsageError

SINGULAR_TOL = 1e-12  # smallest conditional variance (relative) a class covariance may have


@dataclass
class ClassStats:
    """Pixel count, mean and (unbiased) covariance of one class."""

    n: int
    mean: np.ndarray
    cov: np.ndarray


class StatsAccumulator:
    """Streams (pixels × bands, labels) chunks into per-class counts, means and scatter."""

    def __init__(self, bands: int):
        self.p = bands
        self.n: dict[int, int] = {}
        self.mean: dict[int, np.ndarray] = {}
        self.m2: dict[int, np.ndarray] = {}

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        for c in np.unique(y):
            xc = x[y == c]
            nb = len(xc)
            mb = xc.mean(0)
            d = xc - mb
            m2b = d.T @ d
            c = int(c)
            if c not in self.n:
                self.n[c], self.mean[c], self.m2[c] = nb, mb, m2b
                continue
            na, ma = self.n[c], self.mean[c]
            n = na + nb
            delta = mb - ma
            self.mean[c] = ma + delta * (nb / n)
            self.m2[c] = self.m2[c] + m2b + np.outer(delta, delta) * (na * nb / n)
            self.n[c] = n

    def result(self) -> dict[int, ClassStats]:
        return {c: ClassStats(self.n[c], self.mean[c],
                              self.m2[c] / max(self.n[c] - 1, 1)) for c in sorted(self.n)}


def class_statistics(x: np.ndarray, y: np.ndarray, chunk: int = 1 << 16
                     ) -> dict[int, ClassStats]:
    """Per-class statistics of pixels ``x`` (N × bands) with labels ``y`` (N,)."""
    acc = StatsAccumulator(x.shape[1])
    for i in range(0, len(x), chunk):
        acc.add(x[i:i + chunk], y[i:i + chunk])
    return acc.result()


def _chol(s: np.ndarray, name: str, ridge: float | None) -> np.ndarray:
    if ridge:
        s = s + ridge * float(np.mean(np.diag(s))) * np.eye(len(s))
    try:
        low = cholesky(s, lower=True)
    except LinAlgError:
        low = None
    # pivots² are conditional variances; ~0 means a band is a linear mix of others
    if low is None or np.min(np.diag(low)) ** 2 < SINGULAR_TOL * float(np.mean(np.diag(s))):
        raise InputError(f"the covariance of {name} is singular (bands are linearly "
                         "dependent within that class); pass a ridge (--ridge 1e-6) or select "
                         "fewer --bands")
    return low


def pair_measures(a: ClassStats, b: ClassStats, names: tuple[str, str] = ("class 1", "class 2"),
                  ridge: float | None = None) -> dict[str, float]:
    """B, JM, D and TD of two Gaussian classes (see the module docstring)."""
    if ridge is not None and not ridge >= 0:
        raise UsageError(f"--ridge must be 0 or more, not {ridge}; a negative ridge makes the "
                         "class covariances indefinite")
    p = len(a.mean)
    for s, nm in ((a, names[0]), (b, names[1])):
        if s.n <= p and not ridge:
            raise InputError(f"{nm} has {s.n} pixels for {p} bands, so its covariance is "
                             "singular; pass a ridge (--ridge 1e-6), select fewer --bands or "
                             "use more pixels")
    scale = np.sqrt(np.maximum((np.diag(a.cov) + np.diag(b.cov)) / 2, 1e-300))
    s1 = a.cov / np.outer(scale, scale)
    s2 = b.cov / np.outer(scale, scale)
    d = (a.mean - b.mean) / scale
    l1, l2 = _chol(s1, names[0], ridge), _chol(s2, names[1], ridge)
    s1r, s2r = l1 @ l1.T, l2 @ l2.T  # the (ridged) covariances actually used
    lm = _chol((s1r + s2r) / 2, f"{names[0]} + {names[1]}", None)
    logdet = lambda m: 2.0 * float(np.sum(np.log(np.diag(m))))  # noqa: E731
    maha = float(np.sum(solve_triangular(lm, d, lower=True) ** 2))
    bhat = maha / 8 + 0.5 * (logdet(lm) - 0.5 * (logdet(l1) + logdet(l2)))
    tr12 = float(np.sum(solve_triangular(l2, l1, lower=True) ** 2))  # tr(S2⁻¹ S1)
    tr21 = float(np.sum(solve_triangular(l1, l2, lower=True) ** 2))  # tr(S1⁻¹ S2)
    q1 = float(np.sum(solve_triangular(l1, d, lower=True) ** 2))
    q2 = float(np.sum(solve_triangular(l2, d, lower=True) ** 2))
    div = 0.5 * (tr12 + tr21 - 2 * p) + 0.5 * (q1 + q2)
    return {"B": bhat, "JM": 2 * (1 - np.exp(-bhat)), "D": div, "TD": 2 * (1 - np.exp(-div / 8))}


def separability_table(stats: dict[int, ClassStats], names: dict[int, str],
                       ridge: float | None = None):
    """One row per class pair: class_a, class_b, n_a, n_b, JM, TD (a pandas DataFrame)."""
    import pandas as pd

    keys = [k for k in sorted(stats) if k in names]
    rows = []
    for i, ka in enumerate(keys):
        for kb in keys[i + 1:]:
            m = pair_measures(stats[ka], stats[kb], (names[ka], names[kb]), ridge)
            rows.append({"class_a": names[ka], "class_b": names[kb], "n_a": stats[ka].n,
                         "n_b": stats[kb].n, "JM": m["JM"], "TD": m["TD"]})
    return pd.DataFrame(rows, columns=["class_a", "class_b", "n_a", "n_b", "JM", "TD"])


def pair_matrix(table, classes: Sequence[str], column: str) -> np.ndarray:
    """Symmetric class × class matrix of ``column`` (diagonal 0)."""
    idx = {c: i for i, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)))
    for _, r in table.iterrows():
        i, j = idx[r["class_a"]], idx[r["class_b"]]
        m[i, j] = m[j, i] = r[column]
    return m


def format_table(table, fmt: str, caption: str = "") -> str:
    """csv, markdown or latex text of a separability table (JM and TD with 3 decimals)."""
    cols = list(table.columns)
    cells = [[(f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row]
             for row in table.itertuples(index=False)]
    if fmt == "csv":
        return table.to_csv(index=False, float_format="%.4f")
    if fmt == "markdown":
        head = "| " + " | ".join(cols) + " |"
        sep = "|" + "|".join("---:" if c in ("n_a", "n_b", "JM", "TD") else "---"
                             for c in cols) + "|"
        lines = ([f"**{caption}**", ""] if caption else []) + [head, sep]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells]) + "\n"
    if fmt == "latex":
        esc = lambda s: s.replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")  # noqa: E731
        out = [r"\begin{table}[t]", r"\centering"]
        if caption:
            out.append(r"\caption{" + esc(caption) + "}")
        out += [r"\begin{tabular}{llrrrr}", r"\hline",
                " & ".join(esc(c) for c in cols) + r" \\", r"\hline"]
        out += [" & ".join(esc(c) for c in r) + r" \\" for r in cells]
        out += [r"\hline", r"\end{tabular}", r"\end{table}"]
        return "\n".join(out) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def least_separable(table, count: int = 3) -> list[str]:
    """Lines naming the ``count`` pairs with the lowest JM."""
    worst = table.sort_values("JM").head(count)
    return [f"{r.class_a} vs {r.class_b}: JM {r.JM:.3f}, TD {r.TD:.3f}"
            for r in worst.itertuples()]


def dataset_class_stats(ds, variable: str, split: str | None, bands: np.ndarray | None = None,
                        strip_rows: int = 256) -> tuple[dict[int, ClassStats], list[str]]:
    """Class statistics of the labelled pixels inside ``split``'s windows of a TAIGA dataset.

    Streams the stored ``image`` and ``targets_cls`` rasters in row strips; each pixel counts
    once however many windows cover it. Returns (stats by class index, class names).
    """
    from rsbench.progress import progress

    task = ds.task(variable)
    if task.get("type") != "classification" or "raster" not in task:
        raise InputError(f"{ds.root}: {variable} is not a categorical variable with a label "
                         "raster; choose one of the dataset's classification tasks")
    img = ds.array("image")
    lab = ds.array(task["raster"])
    ch = int(task["channel"])
    rows = ds.rows(variable, split)
    idx = ds.index.iloc[rows]
    cover = np.zeros(img.shape[:2], dtype=bool)
    for r, c, h, w in idx[["win_row", "win_col", "win_h", "win_w"]].to_numpy():
        cover[r:r + h, c:c + w] = True
    sel = np.arange(img.shape[2]) if bands is None else np.asarray(bands)
    acc = StatsAccumulator(len(sel))
    nc = len(task["classes"])
    for a in progress(range(0, img.shape[0], strip_rows), desc=f"pixels {variable}",
                      unit="strip"):
        b = min(img.shape[0], a + strip_rows)
        y = np.asarray(lab[a:b, :, ch])
        m = cover[a:b] & (y < nc)
        if not m.any():
            continue
        x = np.asarray(img[a:b])[m][:, sel]
        acc.add(x, y[m])
    return acc.result(), list(task["classes"])
