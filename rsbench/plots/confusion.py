"""The one confusion-matrix figure: row-normalised (each row a true class), as a PNG.

Scene classification and segmentation runs write it with counts in the cells (while there are
at most 20 classes, so they stay legible); the HSI runs write the fraction in every cell, as the
HSI paper's Fig. 9 shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from rsbench.plots.style import pyplot


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: Path, title: str,
                   cells: Literal["counts", "fractions"] = "counts") -> None:
    """Row-normalised confusion matrix ``cm`` (rows = truth) with ``cells`` written in it."""
    plt = pyplot()
    cm = np.asarray(cm)
    n = len(classes)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = max(4.0, 0.28 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 0.8, size), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45 if n <= 20 else 90, ha="right" if n <= 20
                  else "center", fontsize=7 if n > 20 else 9)
    ax.set_yticks(range(n), classes, fontsize=7 if n > 20 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    if n <= 20 or cells == "fractions":
        for i in range(n):
            for j in range(n):
                if cells == "counts" and not cm[i, j]:
                    continue
                text = f"{norm[i, j]:.2f}" if cells == "fractions" else str(int(cm[i, j]))
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
