"""Write the samples of a built dataset as one file each, for inspection in GIS tools."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from rsbench.datasets.format.manifest import INDEX, MANIFEST
from rsbench.datasets.format.reader import Dataset
from rsbench.datasets.format.safepaths import check_plain_name
from rsbench.datasets.previews.psc import colorize
from rsbench.errors import UsageError
from rsbench.progress import progress


def _window_transform(ds: Dataset, row: int) -> Affine | None:
    """Georeference of sample ``row``: its source's transform shifted to the window."""
    idx = ds.index
    georef = ds.manifest.get("georeference", {})
    if "image_id" not in idx.columns or "row_off" not in idx.columns:
        return None
    g = georef.get(str(idx.at[row, "image_id"]))
    if not g:
        return None
    window = Window(int(idx.at[row, "col_off"]), int(idx.at[row, "row_off"]),
                    int(idx.at[row, "width"]), int(idx.at[row, "height"]))
    return window_transform(window, Affine(*g["transform"]))


def export_dataset(ds: Dataset, out: str | Path, fmt: str, task: str | None = None,
                   split: str | None = None, limit: int | None = None) -> int:
    """Write ``<out>/<split>/<class>/<sample>.{tif,png}`` (+ ``_mask``); returns files written."""
    if fmt not in ("geotiff", "png"):
        raise UsageError(f"--format must be geotiff or png, not {fmt!r}")
    task = task or next(iter(ds.tasks))
    spec = ds.task(task)
    rows = ds.rows(task, split)[: limit or None]
    masks = [n for n, t in ds.tasks.items() if t["type"] == "segmentation"
             and t["rows"] == spec["rows"]]
    mask_spec = ds.tasks[masks[0]] if masks else None
    out = Path(out)
    where = f"{ds.root / MANIFEST}: tasks.{task}.classes"
    for i, name in enumerate(spec["classes"]):  # class names become folder names
        check_plain_name(name, f"{where}[{i}]")
    for split_name in ds.index["split"].unique():
        check_plain_name(split_name, f"{ds.root / INDEX}: split")
    written = 0
    for row in progress(rows, desc="export", unit="sample"):
        row = int(row)
        img = np.asarray(ds.sample_array("image", row))
        cls = "all"
        if spec["type"] == "classification" and spec["target"] in ds.index.columns:
            cls = spec["classes"][int(ds.index.at[row, spec["target"]])]
        folder = out / str(ds.index.at[row, "split"]) / cls
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{int(ds.index.at[row, 'sample_id']):06d}"
        mask = np.asarray(ds.sample_array(mask_spec["target"], row)) if mask_spec else None
        if fmt == "geotiff":
            transform = _window_transform(ds, row)
            crs = ds.manifest.get("georeference", {}).get(
                str(ds.index.at[row, "image_id"]) if "image_id" in ds.index.columns else "",
                {}).get("crs")
            profile = dict(driver="GTiff", height=img.shape[0], width=img.shape[1],
                           dtype=img.dtype.name, compress="deflate")
            if transform is not None:
                profile.update(transform=transform, crs=crs)
            with rasterio.open(folder / f"{stem}.tif", "w", count=img.shape[2],
                               **profile) as dst:
                dst.write(np.moveaxis(img, -1, 0))
            written += 1
            if mask is not None:
                profile["dtype"] = mask.dtype.name
                with rasterio.open(folder / f"{stem}_mask.tif", "w", count=1, **profile) as dst:
                    dst.write(mask[None])
                    if mask_spec.get("colors"):
                        dst.write_colormap(1, {k: (*c, 255) for k, c in
                                               enumerate(mask_spec["colors"])})
                written += 1
        else:
            rgb = img[..., -3:] if img.shape[-1] >= 3 else img[..., 0]
            if rgb.dtype != np.uint8:
                lo, hi = np.percentile(rgb, [2, 98])
                rgb = np.clip((rgb - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
            Image.fromarray(np.ascontiguousarray(rgb)).save(folder / f"{stem}.png")
            written += 1
            if mask is not None:
                Image.fromarray(colorize(mask, mask_spec["colors"])).save(
                    folder / f"{stem}_mask.png")
                written += 1
    return written
