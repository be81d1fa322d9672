"""Preview PNGs of a PSC dataset: scene counts per split, pixel class shares, example montage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rsbench.datasets.previews.grid import save_labelled_grid

if TYPE_CHECKING:
    from rsbench.datasets.previews.chart_worker import ChartWorker


def _figure(**kwargs):
    """A matplotlib Figure on the Agg canvas, without importing pyplot (faster, no GUI state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


SPLIT_COLORS = {"train": "#3b6ea8", "val": "#e0a030", "test": "#9bc4e2"}


def ordered_splits(counts: dict) -> list[str]:
    """Split names in reading order: train, val, test, then any others."""
    order = {"train": 0, "val": 1, "test": 2}
    return sorted(counts, key=lambda s: (order.get(s, 3), s))


def compact_number(value: float) -> str:
    """12345678 -> '12.3M', 4321 -> '4321': short bar labels that do not overlap."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e5, "k")):
        if abs(value) >= limit:
            return f"{value / (limit if suffix != 'k' else 1e3):.3g}{suffix}"
    return f"{value:g}"


def plot_class_counts(task: dict, title: str, path: Path, ylabel: str = "patches") -> None:
    """Grouped bars: one group per class, one bar per split, with the task's class colours."""
    counts = task.get("counts", {})
    splits = ordered_splits(counts)
    classes = task["classes"]
    x = np.arange(len(classes))
    width = 0.8 / max(1, len(splits))
    fig = _figure(figsize=(max(6, 0.6 * len(classes) + 2), 4), dpi=110)
    ax = fig.subplots()
    for k, split in enumerate(splits):
        vals = [counts[split].get(c, 0) for c in classes]
        bars = ax.bar(x + k * width - 0.4 + width / 2, vals, width, label=split,
                      edgecolor="black", linewidth=0.5, color=SPLIT_COLORS.get(split))
        ax.bar_label(bars, labels=[compact_number(v) for v in vals], fontsize=7)
    ax.set_xticks(x, classes, rotation=40, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    # fixed margins sized for rotated class names: tight_layout would render the figure twice
    longest = max((len(c) for c in classes), default=1)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.9,
                        bottom=min(0.4, 0.06 + 0.011 * longest))
    fig.savefig(path)


def colorize(mask: np.ndarray, colors: list[list[int]]) -> np.ndarray:
    """Index mask → RGB image with the task's palette (class 0 = unlabelled = black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(colors)] = np.asarray(colors, dtype=np.uint8)
    return lut[mask]


def _thumb(arr: np.ndarray, size: int) -> np.ndarray:
    step = max(1, arr.shape[0] // size)
    return arr[::step, ::step][:size, :size]


def plot_montage(dataset, path: Path, per_class: int = 3, thumb: int = 112) -> None:
    """Per scene class, ``per_class`` patches with their colour masks, tiled into one image."""
    scene = dataset.tasks["scene"]
    seg = dataset.tasks["segmentation"]
    labels = dataset.index["label"].to_numpy()
    present = [k for k in range(len(scene["classes"])) if (labels == k).any()]
    gap = 6
    cell = thumb + gap
    grid = np.full((len(present) * cell, 2 * per_class * cell, 3), 255, dtype=np.uint8)
    for r, k in enumerate(present):
        for c, row in enumerate(np.flatnonzero(labels == k)[:per_class]):
            img = np.asarray(dataset.sample_array("image", int(row)))
            img = img[..., -3:] if img.shape[-1] > 3 else img
            mask = colorize(np.asarray(dataset.sample_array("mask", int(row))), seg["colors"])
            for j, tile in enumerate((img, mask)):
                t = _thumb(tile, thumb)
                y, x = r * cell, (2 * c + j) * cell
                grid[y:y + t.shape[0], x:x + t.shape[1]] = t
    counts = scene.get("counts", {})
    labels = [f"{scene['classes'][k]} ({sum(v.get(scene['classes'][k], 0) for v in counts.values())})"
              for k in present]
    save_labelled_grid(path, grid, labels, "examples per scene class: image | mask", cell)


def write_psc_previews(out_dir: Path, dataset, charts: ChartWorker | None = None) -> None:
    """All PSC preview PNGs into ``out_dir``; with ``charts``, the two charts are drawn in that
    worker process while the montage is drawn here (the same PNGs either way)."""
    tasks = dataset.manifest["tasks"]
    name = dataset.manifest.get("name", "psc")
    jobs = [(dict(tasks["scene"]), f"{name}: scene classes per split",
             out_dir / "scene_counts.png", "patches"),
            (dict(tasks["segmentation"]), f"{name}: labelled pixels per class and split",
             out_dir / "pixel_counts.png", "pixels")]
    sent = charts is not None and charts.draw(jobs)
    plot_montage(dataset, out_dir / "examples.png")
    if not (sent and charts.finished()):  # no worker, or it failed: draw them here
        for job in jobs:
            plot_class_counts(*job)
