"""Class-pair separability heatmaps (Jeffries-Matusita and transformed divergence) as a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rsbench.plots.style import pyplot
from rsbench.separability import pair_matrix


def plot_heatmaps(table, classes: Sequence[str], path: Path, title: str) -> None:
    """JM and TD class × class heatmaps side by side (0..2 colour scale, values annotated)."""
    plt = pyplot()
    k = len(classes)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.1 * k, 2.2 + 0.5 * k), dpi=120)
    for ax, col in zip(axes, ("JM", "TD")):
        m = pair_matrix(table, classes, col)
        np.fill_diagonal(m, np.nan)
        im = ax.imshow(m, vmin=0, vmax=2, cmap="viridis")
        for i in range(k):
            for j in range(k):
                if i != j:
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if m[i, j] < 1.2 else "black")
        short = [c if len(c) <= 18 else c[:17] + "…" for c in classes]
        ax.set_xticks(range(k), short, rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(k), short, fontsize=7)
        ax.set_title(col)
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.suptitle(title)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
