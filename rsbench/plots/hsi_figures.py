"""Figures of the HSI paper as PNG (matplotlib, Agg): classification maps of a test region (Fig. 10), predicted-vs-true scatter plots with marginal
densities (Fig. 11) and absolute-error histograms with 100 bins (Fig. 12); its normalised
confusion matrices (Fig. 9) are :func:`rsbench.plots.confusion.plot_confusion` with fractions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rsbench.plots.style import pyplot


def plot_scatter_marginals(true: np.ndarray, pred: np.ndarray, path: Path, title: str,
                           label: str) -> None:
    """Predicted vs true with point density, the y = x line, Pearson r, and the true (top) and
    predicted (right) marginal densities."""
    plt = pyplot()
    true, pred = np.asarray(true, float), np.asarray(pred, float)
    fig = plt.figure(figsize=(5.2, 5.2), dpi=120)
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4), wspace=0.05,
                            hspace=0.05)
    ax = fig.add_subplot(grid[1, 0])
    top = fig.add_subplot(grid[0, 0], sharex=ax)
    right = fig.add_subplot(grid[1, 1], sharey=ax)
    lo = float(min(true.min(), pred.min()))
    hi = float(max(true.max(), pred.max()))
    if hi <= lo:
        hi = lo + 1.0
    ax.hexbin(true, pred, gridsize=40, extent=(lo, hi, lo, hi), cmap="viridis", mincnt=1,
              bins="log")
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    r = np.corrcoef(true, pred)[0, 1] if len(true) > 1 and true.std() and pred.std() \
        else float("nan")
    ax.text(0.04, 0.94, f"Pearson r = {r:.3f}\nn = {len(true)}", transform=ax.transAxes,
            va="top", fontsize=8, bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    edges = np.linspace(lo, hi, 51)
    top.hist(true, bins=edges, density=True, color="tab:blue", alpha=0.7)
    right.hist(pred, bins=edges, density=True, color="tab:orange", alpha=0.7,
               orientation="horizontal")
    top.tick_params(labelbottom=False)
    right.tick_params(labelleft=False)
    top.set_title(title, fontsize=9)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def plot_error_histogram(abs_err: np.ndarray, path: Path, title: str, label: str,
                         bins: int = 100) -> None:
    """Histogram of absolute errors, 100 bins (the paper's Fig. 12)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    ax.hist(np.asarray(abs_err, float), bins=bins, color="tab:red", alpha=0.8)
    ax.set_xlabel(f"absolute error, {label}")
    ax.set_ylabel("test samples")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_class_maps(truth: np.ndarray, pred: np.ndarray, classes: Sequence[str], path: Path,
                    title: str, ignore: int | None = None,
                    colors: Sequence[Sequence[int]] | None = None) -> None:
    """Ground truth and predicted class maps of a region side by side (ignored pixels white)."""
    plt = pyplot()
    from matplotlib.colors import ListedColormap

    k = len(classes)
    if colors is None:
        # tab10 up to 10 classes (TAIGA's), tab20 up to 20: no two classes share a colour
        n = 10 if k <= 10 else 20
        base = plt.get_cmap(f"tab{n}")
        colors = [tuple(int(255 * c) for c in base(i % n)[:3]) for i in range(k)]
    cmap = ListedColormap([np.array(c) / 255 for c in colors[:k]]).with_extremes(bad="white")

    def masked(a: np.ndarray) -> np.ma.MaskedArray:
        a = np.asarray(a)
        bad = (a < 0) | (a >= k)
        if ignore is not None:
            bad |= a == ignore
        return np.ma.masked_array(a, bad)

    t = masked(truth)
    p = np.ma.masked_array(np.asarray(pred), t.mask)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), dpi=120)
    for ax, img, name in zip(axes, (t, p), ("ground truth", "prediction")):
        ax.imshow(img, cmap=cmap, vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
        ax.set_title(name)
        ax.set_axis_off()
    handles = [plt.Rectangle((0, 0), 1, 1, color=np.array(colors[i]) / 255) for i in range(k)]
    fig.legend(handles, classes, loc="lower center", ncol=min(k, 6), fontsize=8)
    valid = ~t.mask
    acc = float((t.data[valid] == p.data[valid]).mean()) if valid.any() else float("nan")
    fig.suptitle(f"{title} (pixel accuracy {100 * acc:.1f}%)", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(path)
    plt.close(fig)
