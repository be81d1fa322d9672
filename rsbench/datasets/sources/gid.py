"""GID (Gaofen Image Dataset): class schemes, on-disk layouts and colour-label decoding.

Layouts accepted (see the project's dataset reference):
- the original release: ``<scheme folder>/{image_RGB,image_NirRGB,label_<C>classes}/`` with
  ``<stem>.tif`` images and ``<stem>_label.tif`` RGB colour labels; scheme folders
  ``Large-scale Classification_5classes`` and ``Fine Land-cover Classification_15classes``,
  spelled with spaces or underscores;
- the GID-15 repackaging: ``img_dir/{train,val,test}/<stem>.tif`` with
  ``ann_dir/{train,val}/<stem>_15label.png`` single-channel index labels (0 = background).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsbench.datasets.sources.base import is_utf8, shown_path
from rsbench.errors import InputError, UsageError

# (name used in rsbench and by GID-MTL's folders, display name, RGB colour), in published order.
SCHEME_5 = [
    ("builtup", "built-up", (255, 0, 0)),
    ("farmland", "farmland", (0, 255, 0)),
    ("forest", "forest", (0, 255, 255)),
    ("meadow", "meadow", (255, 255, 0)),
    ("water", "water", (0, 0, 255)),
]
SCHEME_15 = [
    ("industrial_land", "industrial land", (200, 0, 0)),
    ("urban_residential", "urban residential", (250, 0, 150)),
    ("rural_residential", "rural residential", (200, 150, 150)),
    ("traffic_land", "traffic land", (250, 150, 150)),
    ("paddy_field", "paddy field", (0, 200, 0)),
    ("irrigated_land", "irrigated land", (150, 250, 0)),
    ("dry_cropland", "dry cropland", (150, 200, 150)),
    ("garden_plot", "garden plot", (200, 0, 200)),
    ("arbor_woodland", "arbor woodland", (150, 0, 250)),
    ("shrub_land", "shrub land", (150, 150, 250)),
    ("natural_grassland", "natural grassland", (250, 200, 0)),
    ("artificial_grassland", "artificial grassland", (200, 200, 0)),
    ("river", "river", (0, 0, 200)),
    ("lake", "lake", (0, 150, 200)),
    ("pond", "pond", (0, 200, 250)),
]
UNLABELLED_COLOR = (0, 0, 0)


def scheme(classes: int) -> list[tuple[str, str, tuple[int, int, int]]]:
    """The published class list for ``--classes 5`` or ``15``."""
    if classes == 5:
        return SCHEME_5
    if classes == 15:
        return SCHEME_15
    raise UsageError(f"--classes must be 5 or 15 (GID's two schemes), not {classes}")


def class_names(classes: int) -> list[str]:
    return [name for name, _, _ in scheme(classes)]


def class_colors(classes: int) -> list[tuple[int, int, int]]:
    return [c for _, _, c in scheme(classes)]


def rgb_code(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pack 8-bit RGB into one uint32 code per pixel (r<<16 | g<<8 | b)."""
    return (r.astype(np.uint32) << 16) | (g.astype(np.uint32) << 8) | b.astype(np.uint32)


def pack_rgb(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(3, H, W) uint8 → (H, W) uint32 codes, via a little-endian byte view (no wide temporaries).

    ``out``: a reusable (H, W) uint32 buffer whose high bytes are zero (e.g. from ``np.zeros``).
    """
    h, w = rgb.shape[1:]
    if out is None:
        out = np.zeros((h, w), dtype=np.uint32)
    buf = out.view(np.uint8).reshape(h, w, 4)
    if np.little_endian:
        buf[..., 0], buf[..., 1], buf[..., 2] = rgb[2], rgb[1], rgb[0]
    else:
        buf[..., 3], buf[..., 2], buf[..., 1] = rgb[2], rgb[1], rgb[0]
    return out


def code_of_key(keys: np.ndarray) -> np.ndarray:
    """Byte-order keys (r | g<<8 | b<<16) → colour codes (r<<16 | g<<8 | b)."""
    keys = np.asarray(keys, dtype=np.int64)
    return ((keys & 0xFF) << 16) | (keys & 0xFF00) | ((keys >> 16) & 0xFF)


def code_to_rgb(code: int) -> tuple[int, int, int]:
    return (code >> 16) & 255, (code >> 8) & 255, code & 255


class ColorDecoder:
    """Maps RGB colour labels to class codes with one 16 M-entry lookup table.

    Codes: 0 = unlabelled (black), 1..C = classes, C+1 = any other (off-palette) colour. Only
    exact palette colours are classes, as in the published PSC sets.
    """

    def __init__(self, classes: int):
        self.classes = classes
        self.off = classes + 1
        self.lut = np.full(1 << 24, self.off, dtype=np.uint8)
        self.lut[0] = 0
        # the same table keyed by r | g<<8 | b<<16: a pixel's bytes R, G, B read little-endian
        self.lut_bytes = np.full(1 << 24, self.off, dtype=np.uint8)
        self.lut_bytes[0] = 0
        for k, (r, g, b) in enumerate(class_colors(classes), start=1):
            self.lut[(r << 16) | (g << 8) | b] = k
            self.lut_bytes[r | (g << 8) | (b << 16)] = k

    def codes(self, rgb: np.ndarray, *, packed: np.ndarray | None = None,
              index: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """``rgb`` as (3, H, W) (rasterio order) → (H, W) uint8 codes.

        ``packed`` (uint32, high bytes zero), ``index`` (intp) and ``out`` (uint8) are optional
        reusable (H, W) buffers; a strip-by-strip caller passes them so that no large temporary
        is allocated per strip. ``packed`` then holds the raw colour codes.
        """
        return self.codes_of_packed(pack_rgb(rgb, out=packed), index=index, out=out)

    def codes_of_packed(self, packed: np.ndarray, *, index: np.ndarray | None = None,
                        out: np.ndarray | None = None) -> np.ndarray:
        """(H, W) uint32 colour codes (r<<16 | g<<8 | b) → (H, W) uint8 codes."""
        if index is None:
            return np.take(self.lut, packed, out=out)
        np.copyto(index, packed, casting="unsafe")
        return np.take(self.lut, index, out=out)


def off_palette_fit(colors: list[tuple[int, int, int]], classes: int) -> bool:
    """True when every colour in ``colors`` belongs to the *other* scheme's palette."""
    other = 15 if classes == 5 else 5
    palette = set(class_colors(other)) | {UNLABELLED_COLOR}
    return bool(colors) and all(tuple(c) in palette for c in colors)


# --------------------------------------------------------------------------------------------
# Layout discovery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GidPair:
    """One source image and its label file."""

    stem: str
    image: Path
    label: Path
    label_kind: str  # "color" (RGB colour code) or "index" (0 = background, 1..C)


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


_SCHEME_DIRS = {5: "largescaleclassification5classes", 15: "finelandcoverclassification15classes"}


def _find_scheme_dir(root: Path, classes: int) -> Path | None:
    want = _SCHEME_DIRS[classes]
    if _norm(root.name) == want:
        return root
    candidates = [root] + [p for p in root.iterdir() if p.is_dir()]
    for base in candidates:
        if _norm(base.name) == want:
            return base
        if base.is_dir():
            for p in base.iterdir():
                if p.is_dir() and _norm(p.name) == want:
                    return p
    # a scheme folder's contents given directly
    if (root / f"label_{classes}classes").is_dir():
        return root
    return None


def _find_repackaged(root: Path) -> Path | None:
    for base in [root] + [p for p in root.iterdir() if p.is_dir()]:
        if (base / "img_dir").is_dir() and (base / "ann_dir").is_dir():
            return base
    return None


def _tifs(folder: Path) -> dict[str, Path]:
    """The .tif files of ``folder`` by stem; a name that is not UTF-8 is one line (the stem
    becomes the image id in the index, split file and manifest, which are UTF-8 text)."""
    out = {}
    for p in folder.iterdir():
        if p.is_file() and p.suffix.lower() in (".tif", ".tiff") and not p.name.startswith("."):
            out[p.stem] = p
    not_utf8 = sorted(p for p in out.values() if not is_utf8(p.name))
    if not_utf8:
        raise InputError(
            f"{shown_path(not_utf8[0])} has a file name that is not UTF-8 ({len(not_utf8)} such "
            f"file(s) in {shown_path(folder)}); rename them to UTF-8 (e.g. `convmv -f gbk -t "
            "utf-8 --notest FILE`) or unpack the download again")
    return out


def find_pairs(root: str | Path, classes: int, bands: str = "rgb") -> list[GidPair]:
    """Every image/label pair of the requested scheme under ``root``, sorted by stem.

    Raises a clear error for a missing folder, an image without a label or the reverse.
    """
    scheme(classes)
    root = Path(root)
    if not root.exists():
        raise InputError(f"--gid {root} does not exist; point it at the unpacked GID folder")
    if not root.is_dir():
        raise InputError(f"--gid {root} is not a folder; point it at the unpacked GID folder")
    if not any(root.iterdir()):
        raise InputError(f"--gid {root} is empty; point it at the unpacked GID folder")

    scheme_dir = _find_scheme_dir(root, classes)
    if scheme_dir is not None:
        return _pairs_original(scheme_dir, classes, bands)
    repack = _find_repackaged(root) if classes == 15 else None
    if repack is not None:
        if bands != "rgb":
            raise UsageError("the GID-15 repackaging (img_dir/ann_dir) holds RGB images only; "
                             "use --bands rgb")
        return _pairs_repackaged(repack)
    other = 15 if classes == 5 else 5
    hint = ""
    if _find_scheme_dir(root, other) is not None:
        hint = f"; it holds the {other}-class set, so try --classes {other}"
    expected = ("Large-scale Classification_5classes" if classes == 5
                else "Fine Land-cover Classification_15classes (or img_dir/ann_dir)")
    raise InputError(f"--gid {root}: no GID {classes}-class folder found (expected "
                     f"'{expected}' with image_RGB, image_NirRGB and label_{classes}classes)"
                     f"{hint}")


def _pairs_original(scheme_dir: Path, classes: int, bands: str) -> list[GidPair]:
    image_dir_name = {"rgb": "image_RGB", "nirrgb": "image_NirRGB"}.get(bands)
    if image_dir_name is None:
        raise UsageError(f"--bands must be rgb or nirrgb, not {bands!r}")
    subdirs = {_norm(p.name): p for p in scheme_dir.iterdir() if p.is_dir()}
    image_dir = subdirs.get(_norm(image_dir_name))
    label_dir = subdirs.get(_norm(f"label_{classes}classes"))
    if image_dir is None:
        raise InputError(f"{scheme_dir} has no {image_dir_name} folder; "
                         f"found: {', '.join(sorted(p.name for p in subdirs.values())) or 'none'}")
    if label_dir is None:
        raise InputError(f"{scheme_dir} has no label_{classes}classes folder")
    images = _tifs(image_dir)
    labels = {}
    for stem, p in _tifs(label_dir).items():
        if not stem.endswith("_label"):
            raise InputError(f"{p}: label files are named <image stem>_label.tif; rename it")
        labels[stem[: -len("_label")]] = p
    if not images:
        raise InputError(f"{image_dir} holds no .tif images")
    missing_label = sorted(set(images) - set(labels))
    if missing_label:
        raise InputError(f"{images[missing_label[0]]} has no label "
                         f"({label_dir / (missing_label[0] + '_label.tif')} is missing); "
                         f"{len(missing_label)} image(s) lack labels: add them or remove those "
                         "images")
    missing_image = sorted(set(labels) - set(images))
    if missing_image:
        raise InputError(f"{labels[missing_image[0]]} has no image "
                         f"({image_dir / (missing_image[0] + '.tif')} is missing); "
                         f"{len(missing_image)} label(s) lack images")
    return [GidPair(s, images[s], labels[s], "color") for s in sorted(images)]


def _pairs_repackaged(base: Path) -> list[GidPair]:
    pairs = []
    for split_dir in sorted((base / "img_dir").iterdir()):
        if not split_dir.is_dir():
            continue
        ann_dir = base / "ann_dir" / split_dir.name
        for stem, img in sorted(_tifs(split_dir).items()):
            ann = ann_dir / f"{stem}_15label.png"
            if ann.exists():
                pairs.append(GidPair(stem, img, ann, "index"))
            elif ann_dir.exists():
                raise InputError(f"{img} has no label ({ann} is missing)")
            # img_dir/test has no annotations in the repackaging: those images are not usable
    if not pairs:
        raise InputError(f"{base}: no labelled images in img_dir/ann_dir")
    return pairs
