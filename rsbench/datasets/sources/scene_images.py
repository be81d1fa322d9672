"""Decode one scene image, hash its pixels and resize it with antialiasing (a worker's job).

Kept free of heavy imports so that worker processes start fast. The builders store 8-bit RGB,
so what is read is checked: 8-bit RGB, grey or palette images are converted by Pillow as
before; an image with more than 8 bits per sample (some UC Merced mirrors ship 16-bit TIFFs)
is scaled to 0..255 by its real range (below), never clipped; an image that is not RGB (4+
bands, e.g. near-infrared) is refused with one line.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

RESAMPLE = Image.Resampling.BICUBIC  # Pillow widens the kernel when shrinking: antialiased
RESAMPLE_NAME = "bicubic (Pillow, antialiased)"
# Pillow modes it turns into RGB without losing anything (8 bits per sample)
EIGHT_BIT_MODES = {"RGB", "L", "P", "1", "RGBA", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV"}
TIFF_BITS_PER_SAMPLE, TIFF_MAX_SAMPLE_VALUE = 258, 281


class UnusableImage(Exception):
    """An image the builder must not store as 8-bit RGB; the message says why and the fix."""


@dataclass
class Decoded:
    """A resized image (rows×cols×3 uint8) with its original size and pixel hash, or an error."""

    path: str
    image: np.ndarray | None
    height: int = 0
    width: int = 0
    pixel_hash: str = ""
    error: str = ""  # "<what is wrong>; <the fix>", to follow the file name, if image is None


def full_scale(values: np.ndarray, declared: int | None = None) -> int:
    """The value that maps to 255: the TIFF's MaxSampleValue when given, else 2**k - 1 for the
    smallest bit depth k (8..16, or the type's) that holds the image's largest value.

    Sensors store 10-, 11-, 12- or 14-bit data in 16-bit files; scaling by the file type's
    maximum (65535) would make such images nearly black, clipping at 255 makes them white.
    """
    if declared:
        return int(declared)
    top = int(values.max(initial=0))
    bits = max(8, top.bit_length())
    return (1 << bits) - 1


def to_uint8(values: np.ndarray, scale: int) -> np.ndarray:
    """Integer samples on 0..``scale`` -> uint8 on 0..255, rounded (negative values -> 0)."""
    x = np.clip(values.astype(np.float64), 0, scale) * (255.0 / scale)
    return np.rint(x).astype(np.uint8)


def _wide_samples(path: str, im: Image.Image) -> tuple[np.ndarray, int | None] | None:
    """(samples as (rows, cols, bands), declared max) for an image with more than 8 bits per
    sample, None for an 8-bit one that Pillow converts itself."""
    tags = getattr(im, "tag_v2", None) or {}
    bits = tags.get(TIFF_BITS_PER_SAMPLE)
    bits = max(bits) if isinstance(bits, tuple) else bits
    if im.mode in EIGHT_BIT_MODES and not (bits and bits > 8):
        return None
    declared = tags.get(TIFF_MAX_SAMPLE_VALUE)
    declared = max(declared) if isinstance(declared, tuple) else declared
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        return np.asarray(im)[:, :, None], declared  # one band: Pillow reads it exactly
    return _read_with_rasterio(path), declared  # Pillow would keep only the high byte


def _read_with_rasterio(path: str) -> np.ndarray:
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as ds:
            return ds.read().transpose(1, 2, 0)


def _check_bands(bands: int) -> None:
    if bands not in (1, 3):
        raise UnusableImage(f"has {bands} bands, but the builder stores RGB (3 bands); give "
                            "the RGB release of the dataset or save the image as RGB")


def to_rgb(path: str) -> Image.Image:
    """``path`` as an 8-bit RGB Pillow image (see the module docstring for what is converted)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. TIFF metadata warnings
            with Image.open(path) as im:
                im.load()
                wide = _wide_samples(path, im)
                if wide is None:
                    if path.lower().endswith((".tif", ".tiff")):  # a TIFF's 4th band is data
                        _check_bands(1 if im.mode == "P" else len(im.getbands()))
                    return im.convert("RGB") if im.mode != "RGB" else im.copy()
    except (Image.UnidentifiedImageError, OSError, ValueError) as exc:
        if isinstance(exc, PermissionError):
            raise
        if not path.lower().endswith((".tif", ".tiff")):
            raise
        wide = _read_with_rasterio(path), None  # a TIFF layout Pillow cannot decode
    values, declared = wide
    _check_bands(values.shape[2])
    if values.dtype.kind == "f":
        raise UnusableImage("holds floating-point samples, but the builder stores 8-bit "
                            "RGB; give the original 8-bit download")
    rgb = to_uint8(values, full_scale(values, declared))
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")


def decode_resize(path: str, size: tuple[int, int]) -> Decoded:
    """Read ``path`` as RGB, hash the original pixels, resize to ``size`` (rows, cols)."""
    try:
        rgb = to_rgb(path)
        width, height = rgb.size
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{height}x{width}".encode())
        h.update(rgb.tobytes())
        rows, cols = size
        if (height, width) != (rows, cols):
            rgb = rgb.resize((cols, rows), RESAMPLE)
        return Decoded(path, np.asarray(rgb, dtype=np.uint8), height, width, h.hexdigest())
    except UnusableImage as exc:
        return Decoded(path, None, error=str(exc))
    except PermissionError:
        return Decoded(path, None, error="cannot be read (permission denied); fix its "
                                         "permissions")
    except Exception as exc:  # noqa: BLE001 - reported to the user as one line by the builder
        return Decoded(path, None, error=f"cannot be read as an image ({type(exc).__name__}: "
                                         f"{exc}); replace it with the file from the original "
                                         "download (or delete it)")


def decode_resize_job(job: tuple[str, tuple[int, int]]) -> Decoded:
    """``decode_resize`` for ``Pool.imap`` (one picklable argument)."""
    return decode_resize(*job)
