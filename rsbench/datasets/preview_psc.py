"""Preview PNGs of a PSC dataset: scene counts per split, pixel class shares, example montage."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


SPLIT_COLORS = {"train": "#3b6ea8", "val": "#e0a030", "test": "#9bc4e2"}


def ordered_splits(counts: dict) -> list[str]:
    """Split names in reading order: train, val, test, then any others."""
    order = {"train": 0, "val": 1, "test": 2}
    return sorted(counts, key=lambda s: (order.get(s, 3), s))


def plot_class_counts(task: dict, title: str, path: Path, ylabel: str = "patches") -> None:
    """Grouped bars: one group per class, one bar per split, with the task's class colours."""
    plt = _plt()
    counts = task.get("counts", {})
    splits = ordered_splits(counts)
    classes = task["classes"]
    x = np.arange(len(classes))
    width = 0.8 / max(1, len(splits))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(classes) + 2), 4), dpi=110)
    for k, split in enumerate(splits):
        vals = [counts[split].get(c, 0) for c in classes]
        bars = ax.bar(x + k * width - 0.4 + width / 2, vals, width, label=split,
                      edgecolor="black", linewidth=0.5, color=SPLIT_COLORS.get(split))
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, classes, rotation=40, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def colorize(mask: np.ndarray, colors: list[list[int]]) -> np.ndarray:
    """Index mask → RGB image with the task's palette (class 0 = unlabelled = black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(colors)] = np.asarray(colors, dtype=np.uint8)
    return lut[mask]


def plot_montage(dataset, path: Path, per_class: int = 3) -> None:
    """Per scene class, ``per_class`` patches (training split first) with their colour masks."""
    plt = _plt()
    scene = dataset.tasks["scene"]
    seg = dataset.tasks["segmentation"]
    index = dataset.index
    present = set(index["label"].unique().tolist())
    classes = [c for k, c in enumerate(scene["classes"]) if k in present]
    fig, axes = plt.subplots(len(classes), 2 * per_class,
                             figsize=(2 * per_class * 1.4, len(classes) * 1.5), dpi=100,
                             squeeze=False)
    for c, name in enumerate(classes):
        label = scene["classes"].index(name)
        rows = np.flatnonzero(index["label"].to_numpy() == label)[:per_class]
        for k in range(per_class):
            a_img, a_mask = axes[c, 2 * k], axes[c, 2 * k + 1]
            for a in (a_img, a_mask):
                a.set_xticks([])
                a.set_yticks([])
            if k < len(rows):
                img = np.asarray(dataset.sample_array("image", int(rows[k])))
                a_img.imshow(img[..., -3:] if img.shape[-1] > 3 else img)
                a_mask.imshow(colorize(np.asarray(dataset.sample_array("mask", int(rows[k]))),
                                       seg["colors"]), interpolation="nearest")
            else:
                a_img.axis("off")
                a_mask.axis("off")
        n = sum(v.get(name, 0) for v in scene.get("counts", {}).values())
        axes[c, 0].set_ylabel(f"{name}\n({n})", rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("examples: image | mask", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_psc_previews(out_dir: Path, dataset) -> None:
    """All PSC preview PNGs into ``out_dir``."""
    tasks = dataset.manifest["tasks"]
    name = dataset.manifest.get("name", "psc")
    plot_class_counts(tasks["scene"], f"{name}: scene classes per split",
                      out_dir / "scene_counts.png")
    plot_class_counts(tasks["segmentation"], f"{name}: labelled pixels per class and split",
                      out_dir / "pixel_counts.png", ylabel="pixels")
    plot_montage(dataset, out_dir / "examples.png")
