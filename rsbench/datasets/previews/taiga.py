"""Preview PNGs of a TAIGA dataset: the split map with its windows, class counts per split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_SIDE = 1400  # pixels of the split map's longer side
MAP_COLORS = {"train": "#2f6db5", "val": "#e69a1e", "test": "#c0303a"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_class_counts(task: dict, title: str, path: Path, ylabel: str = "windows") -> None:
    """Grouped bars: one group per class, one bar per split (train, val, test)."""
    plt = _plt()
    counts = task.get("counts", {})
    splits = [s for s in ("train", "val", "test") if s in counts]
    classes = task["classes"]
    x = np.arange(len(classes))
    width = 0.8 / max(1, len(splits))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(classes) + 2), 4), dpi=110)
    for k, split in enumerate(splits):
        vals = [counts[split].get(c, 0) for c in classes]
        bars = ax.bar(x + k * width - 0.4 + width / 2, vals, width, label=split,
                      color=MAP_COLORS[split], edgecolor="black", linewidth=0.5)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_split_map(code: np.ndarray, valid: np.ndarray, index, path: Path,
                   title: str = "TAIGA splits") -> None:
    """Split regions (train/val/test, unassigned grey, no data white) and kept window outlines."""
    plt = _plt()
    from matplotlib.colors import ListedColormap, to_rgb
    from matplotlib.patches import Patch

    f = max(1, int(np.ceil(max(code.shape) / MAX_SIDE)))
    c = code[::f, ::f].astype(np.int16)
    c[(c == 0) & valid[::f, ::f]] = 4
    c[~valid[::f, ::f]] = 0
    light = [tuple(0.55 + 0.45 * np.array(to_rgb(MAP_COLORS[s]))) for s in
             ("train", "val", "test")]
    cmap = ListedColormap([(1, 1, 1), *light, (0.85, 0.85, 0.85)])
    fig, ax = plt.subplots(figsize=(8, 8 * c.shape[0] / max(c.shape[1], 1) + 0.6), dpi=120)
    ax.imshow(c, cmap=cmap, vmin=0, vmax=4, interpolation="nearest")
    from matplotlib.collections import LineCollection

    for sp in ("train", "val", "test"):
        w = index.loc[index["split"] == sp, ["win_row", "win_col", "win_h", "win_w"]]
        r, col, h, wd = (w.to_numpy(dtype=np.float64) / f).T
        r, col = r - 0.5, col - 0.5
        corners = np.stack([np.stack([col, r], 1), np.stack([col + wd, r], 1),
                            np.stack([col + wd, r + h], 1), np.stack([col, r + h], 1),
                            np.stack([col, r], 1)], 1)  # (n, 5, 2) closed outlines
        ax.add_collection(LineCollection(corners, colors=MAP_COLORS[sp], linewidths=0.3))
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


def taiga_previews(folder: Path, ds, code: np.ndarray, valid: np.ndarray,
                   title: str = "TAIGA splits") -> None:
    """splits.png and <variable>_counts.png (window centres per class and split)."""
    plot_split_map(code, valid, ds.index, Path(folder) / "splits.png", title=title)
    for name, task in ds.manifest["tasks"].items():
        if task["type"] == "classification":
            plot_class_counts(task, f"{name}: window centres per class", Path(folder)
                              / f"{name}_counts.png", ylabel="windows")
