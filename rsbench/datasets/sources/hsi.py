"""Hyperspectral sources declared in one file each: reader, bands, wavelengths, targets.

A source other than TAIGA is an :class:`HsiSource` registered with :func:`register_hsi_source`
in its own file of this package (plus one line in ``HSI_SOURCE_MODULES`` of ``__init__.py``):
its ``reader`` turns the published file into an :class:`HsiScene` (image H×W×B, one label
array per target), and the declaration says how many bands there are, their centre
wavelengths and where those come from, the classification targets (class codes and names, the
code meaning "unlabelled") and how the label grid maps onto the image grid. ``build-hsi``
(:mod:`rsbench.datasets.builders.hsi_source`) then builds a patch dataset from it through the
TAIGA builder's passes (spatially disjoint block splits, leak-free windows).

Labels on a grid ``label_scale`` times finer than the image (each image pixel covers
``label_scale × label_scale`` label pixels) are brought onto the image grid by the declared
``label_rule``:

- ``"mode"``: the value covering most of the block, unlabelled counted as a value; ties go to
  unlabelled when it is among the most frequent (a class must out-count it), else to the lowest
  class code. So a pixel is labelled only where one class covers more of it than the unlabelled
  part does;
- ``"pure"``: a class only where every label pixel of the block holds it, else unlabelled.

Sources are read whole into memory (a ``.mat`` file is read whole anyway), then handed to the
passes as :class:`SceneRaster`, which reads rows the way :class:`~rsbench.datasets.sources.envi.
EnviRaster` does. Classification targets only: TAIGA's continuous path stores integers with a
scale, which a declared source does not have yet.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsbench.errors import InputError, UsageError

LABEL_RULES = ("mode", "pure")


@dataclass(frozen=True)
class HsiTarget:
    """One classification target: class code -> name, and the code that means unlabelled."""

    name: str  # task name in the built dataset
    classes: Mapping[int, str]  # source class code (>= 1 unless it is ``unlabelled``) -> name
    unlabelled: int = 0


@dataclass
class HsiScene:
    """What a reader returns: the image (H, W, B) and, per target name, its label array."""

    image: np.ndarray
    labels: dict[str, np.ndarray]
    keys: dict[str, str] = field(default_factory=dict)  # role -> key in the file (messages)


@dataclass(frozen=True)
class HsiSource:
    """One hyperspectral source: how to read it and what its bands and labels mean."""

    key: str  # dataset name and ``build-hsi --source`` value
    title: str
    reader: Callable[[Path], HsiScene]
    bands: int
    wavelengths: tuple[float, ...]  # band centres, in ``wavelength_units``
    wavelength_source: str  # where the wavelengths come from (or that they are assumed)
    targets: tuple[HsiTarget, ...]
    label_scale: int = 1  # label grid = image grid × label_scale
    label_rule: str = "mode"  # how a label block becomes one image pixel (module docstring)
    wavelength_units: str = "nm"
    nodata: float | None = None  # image value meaning no data (every band); None: 0
    scale_factor: float = 1.0  # stored value / scale_factor = physical value
    stored_units: str = "as stored in the source file"
    file_hint: str = ""  # what the file is, for error messages ("the ... of ...")


HSI_SOURCES: dict[str, HsiSource] = {}


def register_hsi_source(source: HsiSource) -> HsiSource:
    """Add ``source`` to the registry after checking that its declaration is consistent."""
    key = source.key
    if key in HSI_SOURCES:
        raise ValueError(f"hyperspectral source {key!r} is registered twice")
    if len(source.wavelengths) != source.bands:
        raise ValueError(f"hyperspectral source {key!r}: {len(source.wavelengths)} wavelengths "
                         f"for {source.bands} bands")
    if list(source.wavelengths) != sorted(source.wavelengths):
        raise ValueError(f"hyperspectral source {key!r}: wavelengths must increase")
    if source.label_rule not in LABEL_RULES or source.label_scale < 1:
        raise ValueError(f"hyperspectral source {key!r}: label_rule must be one of "
                         f"{', '.join(LABEL_RULES)} and label_scale at least 1")
    if not source.targets or len({t.name for t in source.targets}) != len(source.targets):
        raise ValueError(f"hyperspectral source {key!r}: give targets with distinct names")
    for t in source.targets:
        codes = list(t.classes)
        if not codes or min(codes) < 1 or max(codes) > 254 or t.unlabelled in t.classes:
            raise ValueError(f"hyperspectral source {key!r}, target {t.name!r}: class codes "
                             "must lie in 1..254 and not include the unlabelled code")
    HSI_SOURCES[key] = source
    return source


def hsi_source(key: str) -> HsiSource:
    """The registered source ``key``; a one-line UsageError names the choices."""
    if key not in HSI_SOURCES:
        raise UsageError(f"unknown hyperspectral source {key!r}; choose one of "
                         f"{', '.join(HSI_SOURCES) or '(none registered)'}")
    return HSI_SOURCES[key]


def labels_on_image_grid(labels: np.ndarray, scale: int, rule: str, unlabelled: int
                         ) -> np.ndarray:
    """(H·s, W·s) labels -> (H, W) labels by ``rule`` over each s×s block (module docstring)."""
    if scale == 1:
        return labels.copy()
    h, w = labels.shape[0] // scale, labels.shape[1] // scale
    blocks = labels.reshape(h, scale, w, scale).swapaxes(1, 2).reshape(h, w, scale * scale)
    if rule == "pure":
        first = blocks[..., 0]
        return np.where((blocks == first[..., None]).all(-1), first, unlabelled)
    codes = np.unique(blocks)
    # unlabelled first, then ascending codes: argmax keeps the first of tied maxima
    order = [c for c in codes if c == unlabelled] + [c for c in codes if c != unlabelled]
    counts = np.stack([(blocks == c).sum(-1) for c in order], -1)
    return np.asarray(order, dtype=labels.dtype)[counts.argmax(-1)]


def read_scene(source: HsiSource, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The image (H, W, B) and the labels on the image grid (H, W, T; 0 = unlabelled) of
    ``path``, checked against the declaration: band count, label shapes, class codes."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} is not a file; give the {source.title} file"
                         + (f" ({source.file_hint})" if source.file_hint else ""))
    scene = source.reader(p)
    image = scene.image
    key = scene.keys.get("image", "the image")
    if image.ndim != 3 or image.shape[2] != source.bands:
        raise InputError(f"{p}: {key} is {'x'.join(map(str, image.shape))} but the "
                         f"{source.key} source declares H x W x {source.bands} bands; give "
                         f"the {source.title} file or fix the declaration's bands")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InputError(f"{p}: {key} holds {image.dtype} values, not numbers")
    s = source.label_scale
    need = (image.shape[0] * s, image.shape[1] * s)
    out = np.zeros((*image.shape[:2], len(source.targets)), dtype=np.uint8)
    for j, t in enumerate(source.targets):
        lab, lkey = scene.labels[t.name], scene.keys.get(t.name, t.name)
        if lab.shape != need:
            raise InputError(f"{p}: {lkey} is {'x'.join(map(str, lab.shape))} but {key} "
                             f"{image.shape[0]}x{image.shape[1]} with labels {s}x finer "
                             f"needs {need[0]}x{need[1]}; give matching arrays or fix the "
                             "source's label_scale")
        if not np.issubdtype(lab.dtype, np.integer):
            if not np.array_equal(lab, np.round(lab)):
                raise InputError(f"{p}: {lkey} holds non-integer values; it must hold class "
                                 "codes")
            lab = lab.astype(np.int64)
        known = np.array([t.unlabelled, *t.classes])
        bad = np.setdiff1d(np.unique(lab), known)
        if len(bad):
            raise InputError(f"{p}: {lkey} holds class codes {', '.join(map(str, bad[:5]))} "
                             f"that the {source.key} source does not declare (it declares "
                             f"{min(t.classes)}..{max(t.classes)}, {t.unlabelled} = "
                             "unlabelled); add them to its classes")
        grid = labels_on_image_grid(lab, s, source.label_rule, t.unlabelled)
        out[..., j] = np.where(grid == t.unlabelled, 0, grid)
    if not out.any():
        rule = f" by the {source.label_rule} rule over {s}x{s} label blocks" if s > 1 else ""
        raise InputError(f"{p}: no image pixel is labelled{rule}; give the labelled "
                         f"{source.title} file")
    return _stored(image), out


def _stored(image: np.ndarray) -> np.ndarray:
    """Native-order int16 when the values are integers that fit it, else float32: the dtypes
    the training reader turns into tensors (TAIGA's cube is int16)."""
    if np.issubdtype(image.dtype, np.integer):
        lo, hi = int(image.min()), int(image.max())
        if -32768 <= lo and hi <= 32767:
            return np.ascontiguousarray(image, dtype=np.int16)
    return np.ascontiguousarray(image, dtype=np.float32)


@dataclass
class SceneRaster:
    """An in-memory (H, W, B) array read like an EnviRaster (``read_rows``, ``lines``,
    ``samples``, ``bands``, ``dtype``, ``ignore_value``), so the TAIGA passes run on it."""

    array: np.ndarray
    data: Path  # the source file, named in messages
    nodata: float | None = None

    @property
    def lines(self) -> int:
        return int(self.array.shape[0])

    @property
    def samples(self) -> int:
        return int(self.array.shape[1])

    @property
    def bands(self) -> int:
        return int(self.array.shape[2])

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.lines, self.samples, self.bands

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def ignore_value(self) -> float | None:
        return self.nodata

    def read_rows(self, r0: int, r1: int, bands: np.ndarray | list[int] | None = None,
                  c0: int = 0, c1: int | None = None) -> np.ndarray:
        """Rows r0..r1 (columns c0..c1) of the chosen bands as a (h, w, b) array."""
        x = self.array[r0:r1, c0:c1]
        return np.ascontiguousarray(x if bands is None else x[..., np.asarray(bands)])
