"""A table drawn as a chart: one panel per task metric, one bar per row (method and setting),
mean with error bars over seeds, and the paper's figures as markers."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.plots.style import pyplot

PLOT_NOTE = ("Bars: mean over seeds; error bars: {what}; ◆ the paper's figure (with --paper).")


def _panels(t: Any) -> list[int]:
    """Columns worth a panel: task metrics (those marked best/worst), not sizes or times."""
    return [j for j, c in enumerate(t.columns) if c.better is not None
            and c.value not in ("params", "flops", "seconds")]


def plot_table(t: Any, path: str | Path, ci: bool = False) -> Path:
    """Write ``t`` (a :class:`rsbench.reports.table.Table`) as a PNG at ``path`` (atomically); error bars are the std over seeds, or the
    95% CI of the mean with ``ci``."""
    plt = pyplot()
    path = Path(path)
    cols = _panels(t) or list(range(len(t.columns)))
    ours = [r for r in t.rows if r.source == "ours"]
    paper = {r.label.removesuffix(" (paper)"): r for r in t.rows if r.source == "paper"}
    ncols = min(3, len(cols))
    nrows = math.ceil(len(cols) / ncols)
    width = max(4.0, 0.45 * len(ours) + 1.5)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 3.6 * nrows), dpi=100,
                             squeeze=False)
    x = np.arange(len(ours))
    labels = [r.label for r in ours]
    for k, j in enumerate(cols):
        ax = axes[k // ncols][k % ncols]
        col = t.columns[j]
        means = np.array([np.nan if r.cells[j].missing else r.cells[j].mean for r in ours])
        err = np.zeros((2, len(ours)))
        for i, r in enumerate(ours):
            c = r.cells[j]
            if ci and c.ci:
                err[:, i] = (c.mean - c.ci[0], c.ci[1] - c.mean)
            elif not ci and c.std is not None:
                err[:, i] = c.std
        ax.bar(x, np.nan_to_num(means), color=["C0" if np.isfinite(m) else "none" for m in means],
               label="ours")
        has = err.sum(0) > 0
        if has.any():
            ax.errorbar(x[has], means[has], yerr=err[:, has], fmt="none", capsize=3,
                        ecolor="black")
        for i, m in enumerate(means):
            if not np.isfinite(m):
                ax.text(i, 0, "–", ha="center", va="bottom", color="grey")
        refs = [(i, paper[r.label].cells[j].mean) for i, r in enumerate(ours)
                if r.label in paper and not paper[r.label].cells[j].missing]
        if refs:
            ax.scatter([i for i, _ in refs], [v for _, v in refs], marker="D", color="C3",
                       zorder=3, label="paper")
        ax.set_title(f"{col.group} {col.label}".strip(), fontsize=10)
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for k in range(len(cols), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    handles, names = {}, []
    for ax in axes.flat:  # one legend for the figure, outside the panels
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in handles:
                handles[n] = h
                names.append(n)
    if handles:
        fig.legend([handles[n] for n in names], names, loc="lower right", fontsize=8, ncols=2)
    what = "95% CI of the mean (Student t)" if ci else "std over seeds"
    fig.suptitle(t.title, fontsize=11)
    fig.text(0.01, 0.005, PLOT_NOTE.format(what=what), fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
