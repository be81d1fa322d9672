"""Write tiny GID-layout image/label pairs from arrays, for tests with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from rsbench.datasets.sources.gid import class_colors


def write_pair(root: Path, stem: str, label_rgb: np.ndarray, classes: int = 5,
               image: np.ndarray | None = None, folder: str | None = None,
               georef: bool = True) -> tuple[Path, Path]:
    """Write ``<root>/<scheme>/image_RGB/<stem>.tif`` and its ``_label.tif`` (H×W×3 arrays)."""
    folder = folder or ("Large-scale Classification_5classes" if classes == 5
                        else "Fine Land-cover Classification_15classes")
    if image is None:
        h, w = label_rgb.shape[:2]
        image = (np.arange(h * w * 3) % 251).astype(np.uint8).reshape(h, w, 3)
    base = Path(root) / folder
    img_path = base / "image_RGB" / f"{stem}.tif"
    lab_path = base / f"label_{classes}classes" / f"{stem}_label.tif"
    for p in (img_path, lab_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    extra = dict(crs="EPSG:32650", transform=from_origin(5e5, 3e6, 4, 4)) if georef else {}
    for path, arr in ((img_path, image), (lab_path, label_rgb)):
        with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1],
                           count=arr.shape[2],
                           dtype="uint8", **extra) as dst:
            dst.write(np.moveaxis(arr, -1, 0))
    return img_path, lab_path


def to_rgb(index: np.ndarray, classes: int = 5) -> np.ndarray:
    """Colour an index map (0 = unlabelled, 1..C) with GID's real palette."""
    palette = np.array([(0, 0, 0), *class_colors(classes)], dtype=np.uint8)
    return palette[index]
