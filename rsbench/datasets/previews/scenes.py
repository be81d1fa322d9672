"""Preview PNGs for classification tasks: an image montage per task (a row of examples per
class) and a bar chart of class counts per split. Works on any built dataset whose tasks are
classifications over a sample-layout ``image`` array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from rsbench.datasets.format.reader import Dataset
from rsbench.datasets.previews.grid import save_labelled_grid

THUMB = 72  # pixels per thumbnail side
GAP = 2


def _thumb(img: np.ndarray, side: int) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if img.dtype != np.uint8:
        lo, hi = np.percentile(img, [1, 99])
        img = np.clip((img - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(img).resize((side, side), Image.Resampling.BICUBIC))


def montage(ds: Dataset, task: str, per_class: int = 5, image_array: str = "image",
            side: int = THUMB) -> tuple[np.ndarray, list[str]]:
    """A grid image: one row per class of ``task``, ``per_class`` examples (train first)."""
    spec = ds.task(task)
    classes = spec["classes"]
    rows = ds.rows(task)
    index = ds.index.iloc[rows]
    labels = index[spec["target"]].to_numpy()
    is_train = (index["split"] == "train").to_numpy()
    cell = side + GAP
    grid = np.full((len(classes) * cell, per_class * cell, 3), 255, dtype=np.uint8)
    for k in range(len(classes)):
        pos = np.flatnonzero(labels == k)
        pos = np.concatenate([pos[is_train[pos]], pos[~is_train[pos]]])[:per_class]
        for j, p in enumerate(pos):
            grid[k * cell:k * cell + side, j * cell:j * cell + side] = _thumb(
                ds.sample_array(image_array, int(rows[p])), side)
    return grid, classes


def save_montage(path: Path, ds: Dataset, task: str, per_class: int = 5,
                 image_array: str = "image") -> None:
    """The montage as a PNG with class names on the left."""
    grid, classes = montage(ds, task, per_class, image_array)
    save_labelled_grid(path, grid, classes,
                       f"{ds.name}: task {task}, {len(classes)} classes (train examples first)",
                       THUMB + GAP)


def save_count_chart(path: Path, ds: Dataset, task: str) -> None:
    """Horizontal grouped bars: samples per class, one bar per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = ds.task(task)
    classes = spec["classes"]
    counts = spec.get("counts") or {}
    splits = [s for s in ("train", "val", "test") if s in counts] + \
        sorted(s for s in counts if s not in ("train", "val", "test"))
    height = max(3.0, 0.22 * len(classes) * max(1, len(splits)) ** 0.5 + 1.2)
    fig, ax = plt.subplots(figsize=(7, height), dpi=100)
    y = np.arange(len(classes))
    bar = 0.8 / max(1, len(splits))
    for i, s in enumerate(splits):
        vals = [counts[s].get(c, 0) for c in classes]
        ax.barh(y - 0.4 + bar * (i + 0.5), vals, height=bar, label=f"{s} ({sum(vals)})")
    ax.set_yticks(y)
    ax.set_yticklabels(classes, fontsize=8)
    ax.set_ylim(len(classes) - 0.5, -0.5)
    ax.set_xlabel("images")
    ax.set_title(f"{ds.name}: task {task}, images per class and split", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_scene_previews(preview_dir: str | Path, ds: Dataset, per_class: int = 5,
                         image_array: str = "image") -> list[Path]:
    """``montage_<task>.png`` and ``counts_<task>.png`` for every classification task."""
    preview_dir = Path(preview_dir)
    preview_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in ds.tasks.items():
        if spec["type"] != "classification":
            continue
        for kind, fn in (("montage", save_montage), ("counts", save_count_chart)):
            path = preview_dir / f"{kind}_{name}.png"
            if kind == "montage":
                fn(path, ds, name, per_class, image_array)
            else:
                fn(path, ds, name)
            written.append(path)
    return written
