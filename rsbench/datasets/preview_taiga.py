"""Preview PNGs of a TAIGA dataset: the split map with its windows, class counts per split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rsbench.datasets.preview_psc import _plt, plot_class_counts

MAX_SIDE = 1400  # pixels of the split map's longer side
MAP_COLORS = {"train": "#2f6db5", "val": "#e69a1e", "test": "#c0303a"}


def plot_split_map(code: np.ndarray, valid: np.ndarray, index, path: Path,
                   title: str = "TAIGA splits") -> None:
    """Split regions (train/val/test, unassigned grey, no data white) and kept window outlines."""
    plt = _plt()
    from matplotlib.colors import ListedColormap, to_rgb
    from matplotlib.patches import Patch, Rectangle

    f = max(1, int(np.ceil(max(code.shape) / MAX_SIDE)))
    c = code[::f, ::f].astype(np.int16)
    c[(c == 0) & valid[::f, ::f]] = 4
    c[~valid[::f, ::f]] = 0
    light = [tuple(0.55 + 0.45 * np.array(to_rgb(MAP_COLORS[s]))) for s in
             ("train", "val", "test")]
    cmap = ListedColormap([(1, 1, 1), *light, (0.85, 0.85, 0.85)])
    fig, ax = plt.subplots(figsize=(8, 8 * c.shape[0] / max(c.shape[1], 1) + 0.6), dpi=120)
    ax.imshow(c, cmap=cmap, vmin=0, vmax=4, interpolation="nearest")
    for sp in ("train", "val", "test"):
        w = index[index["split"] == sp]
        for r, col, h, wd in w[["win_row", "win_col", "win_h", "win_w"]].to_numpy()[:20000]:
            ax.add_patch(Rectangle((col / f - 0.5, r / f - 0.5), wd / f, h / f, fill=False,
                                   lw=0.3, ec=MAP_COLORS[sp]))
    handles = [Patch(color=light[i], label=f"{sp} region ({int((index['split'] == sp).sum())} "
                     "windows)") for i, sp in enumerate(("train", "val", "test"))]
    handles.append(Patch(color=(0.85, 0.85, 0.85), label="unassigned (no stand)"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2,
              fontsize=7)
    ax.set_title(title)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def taiga_previews(folder: Path, ds, code: np.ndarray, valid: np.ndarray) -> None:
    """splits.png and <variable>_counts.png (window centres per class and split)."""
    plot_split_map(code, valid, ds.index, Path(folder) / "splits.png")
    for name, task in ds.manifest["tasks"].items():
        if task["type"] == "classification":
            plot_class_counts(task, f"{name}: window centres per class", Path(folder)
                              / f"{name}_counts.png", ylabel="windows")
