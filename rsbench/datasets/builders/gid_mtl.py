"""Import the published PSC sets (GID-MTL5 / GID-MTL15) into the rsbench format.

Layout: ``GID-MTL<C>/{image,label_color,label_gray}/<class folder>/<n>.tif`` (224×224 RGB, no
georeference). Masks come from ``label_gray`` (undefined value C becomes 0, class k becomes
k+1), the scene class from the folder. The few 225-pixel patches are cropped to 224 and reported;
exact duplicate images are removed before splitting and reported.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from rsbench.datasets.builders.base import Builder, run_build
from rsbench.datasets.builders.psc import PscOptions, psc_splits, psc_tasks
from rsbench.datasets.builders.psc_rule import scene_decision
from rsbench.datasets.format.manifest import describe_source
from rsbench.datasets.format.split_files import SplitFile
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.datasets.sources import gid
from rsbench.errors import InputError, unreadable
from rsbench.progress import progress

SUBFOLDERS = ("image", "label_gray")


def find_gid_mtl(root: str | Path, classes: int) -> Path:
    """The folder holding image/, label_gray/ for the ``classes`` set (itself or a child)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--gid-mtl {root} is not a folder; point it at GID-MTL5 or GID-MTL15")
    for cand in (root, root / f"GID-MTL{classes}"):
        if all((cand / s).is_dir() for s in SUBFOLDERS):
            return cand
    other = root / f"GID-MTL{15 if classes == 5 else 5}"
    hint = f"; it holds {other.name}, so check --classes" if other.is_dir() else ""
    raise InputError(f"--gid-mtl {root} has no image/ and label_gray/ folders (expected the "
                     f"GID-MTL{classes} layout){hint}")


def _numbered_tifs(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff")
             and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit()
                                        else 0, p.stem))


def _read(path: Path) -> np.ndarray:
    try:
        with rasterio.open(path) as ds:
            return ds.read()
    except RasterioIOError as exc:
        raise unreadable(path, exc, "the file is damaged: download it again") from None


class GidMtlImport(Builder):
    """The published GID-MTL patches as one part per class folder; the crop report of each
    class is kept in its part, so it survives ``--resume``."""

    name = "build-psc"

    def __init__(self, root: str | Path, opts: PscOptions | None = None,
                 splits: str | Path | None = None):
        self.opts = opts or PscOptions()
        self.opts.validate()
        self.split_file = SplitFile(splits, ("train", "test")) if splits else None
        classes = self.opts.classes
        self.base = find_gid_mtl(root, classes)
        self.names = gid.class_names(classes)
        folders = sorted(p.name for p in (self.base / "image").iterdir() if p.is_dir())
        unknown = sorted(set(folders) - set(self.names))
        if unknown:
            raise InputError(f"{self.base / 'image'} has class folder(s) {', '.join(unknown)} "
                             f"that are not GID-MTL{classes} classes (expected: "
                             f"{', '.join(self.names)}); check --classes")
        if not folders:
            raise InputError(f"{self.base / 'image'} holds no class folders")
        self.keys = [name for name in self.names if name in folders]

    def params(self) -> dict:
        return {"source": "gid-mtl", "gid_mtl": os.path.abspath(self.base), **asdict(self.opts)}

    def stage(self, writer: DatasetWriter) -> None:
        for key in progress(self.keys, desc="import GID-MTL", unit="class"):
            if not writer.part_done(key):
                self._stage_class(writer, key)

    def _stage_class(self, writer: DatasetWriter, key: str) -> None:
        base, opts = self.base, self.opts
        classes, size = opts.classes, opts.size
        label = self.names.index(key)
        part = writer.part_writer(key)
        sources: list[dict] = []
        cropped: list[str] = []
        try:
            for img_path in _numbered_tifs(base / "image" / key):
                gray_path = base / "label_gray" / key / img_path.name
                if not gray_path.exists():
                    raise InputError(f"{img_path} has no gray label ({gray_path} is missing)")
                img = _read(img_path)
                gray = _read(gray_path)[0]
                if img.shape[1:] != gray.shape:
                    raise InputError(f"{gray_path} is {gray.shape[0]}x{gray.shape[1]} but "
                                     f"{img_path} is {img.shape[1]}x{img.shape[2]}")
                if img.shape[0] < 3:
                    raise InputError(f"{img_path} has {img.shape[0]} band(s); expected RGB")
                h, w = gray.shape
                if h < size or w < size:
                    raise InputError(f"{img_path} is {h}x{w}, smaller than --size {size}")
                if (h, w) != (size, size):
                    cropped.append(f"{key}/{img_path.name} ({h}x{w})")
                img = np.ascontiguousarray(img[:3, :size, :size].transpose(1, 2, 0))
                gray = gray[:size, :size]
                mask = np.where(gray >= classes, 0, gray.astype(np.int64) + 1).astype(np.uint8)
                counts = np.bincount(mask.ravel(), minlength=classes + 1)[None, :]
                rule_scene, _ = scene_decision(counts, classes, opts.min_fraction,
                                               opts.min_labelled)
                npix = size * size
                row = {
                    "task": "psc", "image_id": f"{key}/{img_path.stem}",
                    "source": os.path.relpath(img_path, base),
                    "label_source": os.path.relpath(gray_path, base),
                    "row_off": 0, "col_off": 0, "height": h, "width": w, "label": label,
                    "labelled_fraction": float(counts[0, 1:].sum() / npix),
                    "class_fractions": (counts[0] / npix).astype(np.float32).tolist(),
                    "rule_label": int(rule_scene[0]),
                    "image_sha256": hashlib.sha256(img.tobytes()).hexdigest(),
                }
                part.append(row, image=img, mask=mask)
                sources += [describe_source(img_path, base), describe_source(gray_path, base)]
        except BaseException:
            part.abort()
            raise
        part.close({"sources": sources, "cropped_to_size": cropped})

    def finish(self, writer: DatasetWriter) -> dict:
        from rsbench.datasets.previews.psc import write_psc_previews

        opts, keys = self.opts, self.keys
        parts = writer.parts(keys)
        index = writer.load_index(keys)
        dup = index.duplicated("image_sha256", keep="first")
        removed = []
        for i in np.flatnonzero(dup.to_numpy()):
            first = index.index[(index["image_sha256"] == index.at[i, "image_sha256"])][0]
            removed.append({"removed": index.at[i, "image_id"],
                            "kept": index.at[first, "image_id"],
                            "same_scene_label": bool(index.at[i, "label"]
                                                     == index.at[first, "label"])})
        index = index[~dup.to_numpy()].reset_index(drop=True)
        sample_keys = index["source"].tolist()
        index["split"] = (self.split_file.assign(sample_keys) if self.split_file
                          else psc_splits(index, opts, group_column="image_id"))
        disagree = index[index["rule_label"] != index["label"]]["image_id"].tolist()
        extra = {
            "report": {
                "imported": int(len(index) + len(removed)),
                "kept": int(len(index)),
                "skipped": {},
                "duplicates_removed": removed,
                "cropped_to_size": [c for p in parts for c in p.info.get("cropped_to_size", [])],
                "rule_disagreements": disagree,
                "rule": (f"published scene labels kept; rule_label column holds the "
                         f"majority-pixel rule's class (more than {opts.min_fraction:g} of "
                         "labelled pixels), -1 where no class qualifies"),
            },
        }
        sources = [s for p in parts for s in p.info.get("sources", [])]
        return writer.finalize(index, keys=keys, name=f"psc{opts.classes}",
                               tasks=psc_tasks(opts.classes), sources=sources, extra=extra,
                               previews=write_psc_previews, split_keys=(sample_keys, index["split"]),
                               split_source=self.split_file.describe() if self.split_file
                               else None)


def import_gid_mtl(root: str | Path, out: str | Path, opts: PscOptions | None = None,
                   resume: bool = False, splits: str | Path | None = None) -> dict:
    """Import GID-MTL5/15 into ``out``; returns the manifest (``splits``: a split file to
    reproduce)."""
    return run_build(GidMtlImport(root, opts, splits), out, resume)
