"""Decode one scene image, hash its pixels and resize it with antialiasing (a worker's job).

Kept free of heavy imports so that worker processes start fast.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

RESAMPLE = Image.Resampling.BICUBIC  # Pillow widens the kernel when shrinking: antialiased
RESAMPLE_NAME = "bicubic (Pillow, antialiased)"


@dataclass
class Decoded:
    """A resized image (rows×cols×3 uint8) with its original size and pixel hash, or an error."""

    path: str
    image: np.ndarray | None
    height: int = 0
    width: int = 0
    pixel_hash: str = ""
    error: str = ""


def decode_resize(path: str, size: tuple[int, int]) -> Decoded:
    """Read ``path`` as RGB, hash the original pixels, resize to ``size`` (rows, cols)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. TIFF metadata warnings
            with Image.open(path) as im:
                im.load()
                rgb = im.convert("RGB") if im.mode != "RGB" else im
        width, height = rgb.size
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{height}x{width}".encode())
        h.update(rgb.tobytes())
        rows, cols = size
        if (height, width) != (rows, cols):
            rgb = rgb.resize((cols, rows), RESAMPLE)
        return Decoded(path, np.asarray(rgb, dtype=np.uint8), height, width, h.hexdigest())
    except Exception as exc:  # noqa: BLE001 - reported to the user as one line by the builder
        return Decoded(path, None, error=f"{type(exc).__name__}: {exc}")


def decode_resize_job(job: tuple[str, tuple[int, int]]) -> Decoded:
    """``decode_resize`` for ``Pool.imap`` (one picklable argument)."""
    return decode_resize(*job)
