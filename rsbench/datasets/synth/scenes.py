"""Synthetic copies of the scene-classification datasets in their real on-disk layouts.

Real class folder names, real file names and types (TIFF for UC Merced, JPEG for the others),
the published image sizes (including a few odd UC Merced sizes), and class-dependent content:
each class has its own two colours and texture (stripes, checks, rings or blobs at a class
frequency and orientation), jittered per image, so a model can learn the classes. Classes
with the same name in several datasets (``forest``, ``beach``, ...) share their look.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from rsbench.datasets.sources.scenes import SceneSpec, norm, spec
from rsbench.errors import UsageError
from rsbench.progress import progress

MERCED_ODD_SIZES = list(spec("merced").odd_sizes)
JPEG_QUALITY = 90


def class_look(class_name: str) -> dict:
    """A class's colours and texture, fixed by its (normalised) name."""
    digest = hashlib.blake2b(norm(class_name).encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    return {
        "c1": rng.uniform(25, 200, 3), "c2": rng.uniform(40, 235, 3),
        "kind": int(rng.integers(0, 4)), "freq": float(rng.uniform(3, 14)),
        "angle": float(rng.uniform(0, np.pi)), "noise": float(rng.uniform(4, 14)),
    }


def render_scene(look: dict, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """One rows×cols×3 uint8 image of a class look, with per-image jitter and noise."""
    scale = 1.0 / max(rows, cols)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    yy *= scale
    xx *= scale
    angle = look["angle"] + rng.normal(0, 0.15)
    freq = look["freq"] * rng.uniform(0.9, 1.1) * 2 * np.pi
    phase = rng.uniform(0, 2 * np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    kind = look["kind"]
    if kind == 0:  # stripes (fields, runways, terraces)
        w = 0.5 + 0.5 * np.sin(freq * u + phase)
    elif kind == 1:  # checks (buildings, parking)
        w = (np.sin(freq * u + phase) * np.sin(freq * v + phase) > 0).astype(np.float32)
    elif kind == 2:  # rings (circular fields, tanks)
        cy, cx = rng.uniform(0.2, 0.8, 2)
        w = 0.5 + 0.5 * np.sin(freq * np.hypot(yy - cy, xx - cx) + phase)
    else:  # blobs (forest, water, desert)
        k = max(2, int(look["freq"]))
        coarse = rng.uniform(0, 1, (k, k)).astype(np.float32)
        w = np.asarray(Image.fromarray(coarse, mode="F").resize((cols, rows),
                                                                Image.Resampling.BICUBIC))
        w = np.clip(w, 0, 1)
    gain = rng.uniform(0.85, 1.15)
    img = (look["c1"] * (1 - w[..., None]) + look["c2"] * w[..., None]) * gain
    img += rng.normal(0, look["noise"], (rows, cols, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def image_size(s: SceneSpec, label: int, n: int, size: tuple[int, int]) -> tuple[int, int]:
    """Rows, cols of image ``n`` of class ``label``: the nominal size, or for about 2% of the
    images of a source with ``odd_sizes`` (UC Merced) one of them (scaled to ``size``)."""
    if not s.odd_sizes or (label + 3 * n) % 47 != 1:
        return size
    r, c = s.odd_sizes[(label + n) % len(s.odd_sizes)]
    return max(8, round(r * size[0] / s.size[0])), max(8, round(c * size[1] / s.size[1]))


def save_image(arr: np.ndarray, path: Path) -> None:
    im = Image.fromarray(arr, mode="RGB")
    if path.suffix.lower() in (".tif", ".tiff"):
        im.save(path, format="TIFF")
    else:
        im.save(path, format="JPEG", quality=JPEG_QUALITY)


def synth_scenes(out: str | Path, dataset: str, per_class: int | None = 10, seed: int = 0,
                 size: tuple[int, int] | None = None) -> Path:
    """Write a synthetic ``dataset`` under ``out`` in its real layout; returns its top folder.

    ``per_class`` images per class (None: the published count of every class); ``size``
    overrides the published image size (rows, cols), e.g. to keep tests small.
    """
    s = spec(dataset)
    size = tuple(size) if size is not None else s.size
    if min(size) < 16:
        raise UsageError(f"--size {size[0]}x{size[1]} is too small; use at least 16x16")
    counts = list(s.counts) if per_class is None else [per_class] * len(s.classes)
    if per_class is not None:
        if per_class < 1:
            raise UsageError("--per-class must be at least 1")
        if per_class > min(s.counts):
            most = min(s.counts)
            raise UsageError(f"--per-class {per_class} is more than {s.title} has ({most} "
                             f"images in its smallest class); use at most {most}")
    top = Path(out).joinpath(*s.top)
    if top.exists() and any(top.iterdir()):
        raise UsageError(f"{top} already exists and is not empty; choose another --out")
    total = sum(counts)
    bar = progress(total=total, desc=f"synth {s.key}", unit="image")
    for label, name in enumerate(s.classes):
        folder = top / name
        folder.mkdir(parents=True, exist_ok=True)
        look = class_look(name)
        for i in range(counts[label]):
            n = s.first_number() + i
            rng = np.random.default_rng([seed, label, n])
            rows, cols = image_size(s, label, n, size)
            save_image(render_scene(look, rows, cols, rng), folder / s.file_name(name, n))
            bar.update()
    bar.close()
    return Path(out).joinpath(s.top[0])
