"""The ``taiga`` benchmarks' plug-ins for the runner (named in ``rsbench/configs/taiga*.json``).

- :class:`TaigaReader` reads patch windows out of the raster arrays ``build-taiga`` stores once
  (int16 reflectance) and ships the training split's per-band min/max with every batch; its
  targets are the centre pixel's (benchmark ``taiga-centre``, the TAIGA baseline's protocol);
- :class:`TaigaPixelReader` gives every pixel of each window as a target (benchmarks ``taiga``,
  ``taiga-cs``, ``taiga-focal-nw``: the HSI paper's per-pixel protocol) and, in the val and test
  splits, keeps each labelled pixel only in the window that owns it (:func:`owned_pixels`), so
  an evaluation scores every labelled pixel the windows cover exactly once;
- :class:`TaigaPrep` turns them into min–max normalised float patches on the device and flips
  them at random (the paper's augmentation, Section IV-A);
- :func:`warmup` is the learning-rate warm-up: the first epoch at 1/N of the rate, rising by
  1/N per epoch until the full rate after N (= 5) epochs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rsbench.errors import InputError
from rsbench.training.data import ArrayReader

NORM_MIN = "_norm_min"
NORM_RANGE = "_norm_range"


class TaigaReader(ArrayReader):
    """Batches of TAIGA windows: ``image`` N×P×P×B int16 and centre-pixel targets, plus the
    training statistics for min–max normalisation (``_norm_min``, ``_norm_range``, per band)."""

    def __init__(self, path: str | os.PathLike, tasks: Sequence[str], image_array: str = "image"):
        super().__init__(path, tasks, image_array)
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_stats"] = None
        return state

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._stats is None:
            info = self.data.manifest.get("taiga", {}).get("image_stats")
            if not info or "min" not in info or "max" not in info:
                raise InputError(f"{self.path} has no taiga image_stats in its manifest; "
                                 "rebuild it with `rsbench build-taiga`")
            lo = np.asarray(info["min"], np.float32)
            rng = np.maximum(np.asarray(info["max"], np.float32) - lo, 1e-6)
            self._stats = (torch.from_numpy(lo), torch.from_numpy(rng))
        return self._stats

    def __call__(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        out = super().__call__(rows)
        lo, rng = self.stats()
        out[NORM_MIN], out[NORM_RANGE] = lo, rng
        return out


class TaigaPrep:
    """int16 N×P×P×B → float N×B×P×P on the device, ``(x − min) / (max − min)`` with the
    training statistics, random horizontal/vertical flips when training."""

    def __init__(self, cfg: Mapping[str, Any], device: torch.device, types: Mapping[str, str],
                 channels_last: bool = False):
        self.device = device
        self.types = dict(types)
        self.channels_last = channels_last
        aug = cfg.get("augment") or {}
        self.hflip, self.vflip = bool(aug.get("hflip")), bool(aug.get("vflip"))
        self.minmax = (cfg.get("normalize") or {}).get("kind", "minmax") == "minmax"

    def __call__(self, batch: Mapping[str, torch.Tensor], *, train: bool,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        dev = self.device
        x = batch["image"].to(dev, non_blocking=True).permute(0, 3, 1, 2).float()
        if self.minmax and NORM_MIN in batch:
            lo = batch[NORM_MIN].to(dev).view(1, -1, 1, 1)
            rng = batch[NORM_RANGE].to(dev).view(1, -1, 1, 1)
            x = (x - lo) / rng
        targets = {name: t.to(dev, non_blocking=True) for name, t in batch.items()
                   if name != "image" and not name.startswith("_")}
        if train and (self.hflip or self.vflip):
            n = x.shape[0]
            for dim, on in ((-1, self.hflip), (-2, self.vflip)):
                if on:
                    flip = torch.rand(n, device=dev, generator=generator) < 0.5
                    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(dim), x)
                    for name, t in targets.items():
                        if t.ndim == 3:  # per-pixel targets follow the image
                            targets[name] = torch.where(flip.view(-1, 1, 1), t.flip(dim), t)
        x = x.contiguous(memory_format=torch.channels_last) if self.channels_last \
            else x.contiguous()
        return x, targets


def warmup(optimizer: torch.optim.Optimizer, epochs: int, warmup_epochs: int = 5,
           **_: Any) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_epochs`` epochs (lr/N, 2·lr/N, …, lr), then constant."""
    n = max(1, int(warmup_epochs))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: min(1.0, (e + 1) / n))


SCORED_SPLITS = ("val", "test")  # splits whose pixels are scored once (owned pixels only)


def owned_pixels(windows: np.ndarray, band: int = 256) -> list[np.ndarray]:
    """For each window of ``windows`` ((n, 4): row, col, height, width), the h×w bool mask of
    the pixels it owns: those nearer (Euclidean) to its centre pixel than to the centre of any
    other window covering them, ties going to the window listed first.

    Every pixel covered by ``windows`` is owned by exactly one of them, so predictions taken
    from owned pixels only stitch the overlapping windows into one map (each pixel predicted
    from the window where it lies most central). The windows paint their distances into an
    owner raster one band of ``band`` rows at a time (memory: band × width of the windows'
    extent), so the cost is one pass over each window's pixels.
    """
    win = np.asarray(windows, dtype=np.int64).reshape(-1, 4)
    r, c, h, w = win.T
    masks = [np.zeros((int(hh), int(ww)), bool) for hh, ww in zip(h, w)]
    if not len(win):
        return masks
    cr, cc = r + h // 2, c + w // 2
    c0, c1 = int(c.min()), int((c + w).max())
    far = np.iinfo(np.int32).max
    for y0 in range(int(r.min()), int((r + h).max()), band):
        y1 = y0 + band
        best = np.full((band, c1 - c0), far, np.int32)
        owner = np.full((band, c1 - c0), -1, np.int32)
        here = np.flatnonzero((r < y1) & (r + h > y0))
        for j in here:  # ascending index: a strict "<" keeps ties with the first window
            a, b = max(int(r[j]), y0), min(int(r[j] + h[j]), y1)
            rows = (np.arange(a, b) - cr[j]) ** 2
            cols = (np.arange(c[j], c[j] + w[j]) - cc[j]) ** 2
            d2 = rows[:, None] + cols[None, :]
            sl = (slice(a - y0, b - y0), slice(int(c[j]) - c0, int(c[j] + w[j]) - c0))
            better = d2 < best[sl]
            best[sl][better] = d2[better]
            owner[sl][better] = j
        for j in here:
            a, b = max(int(r[j]), y0), min(int(r[j] + h[j]), y1)
            sl = (slice(a - y0, b - y0), slice(int(c[j]) - c0, int(c[j] + w[j]) - c0))
            masks[j][a - int(r[j]):b - int(r[j])] = owner[sl] == j
    return masks


class TaigaPixelReader(TaigaReader):
    """Like :class:`TaigaReader`, but every task's target is its whole P×P label window (from
    the ``targets_cls`` / ``targets_reg`` rasters; 255 / NaN = no label), for per-pixel
    training and scoring of models built with ``per_pixel: true`` (benchmark ``taiga``).

    Training rows keep every labelled pixel (the loss runs over all of them). Rows of the val
    and test splits keep only the pixels their window owns among the windows of the same split
    (:func:`owned_pixels`); the rest become "no label", so the meters count every labelled
    pixel the split's windows cover exactly once.
    """

    def __init__(self, path: str | os.PathLike, tasks: Sequence[str], image_array: str = "image"):
        super().__init__(path, tasks, image_array)
        self._owners: dict[str, dict[int, np.ndarray]] = {}  # split -> row -> owned mask

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_owners"] = {}
        return state

    def owned(self, rows: np.ndarray) -> list[np.ndarray | None]:
        """Per row, its owned-pixel mask (val/test rows) or None (every pixel kept)."""
        split = self.data.index["split"].to_numpy()
        for sp in ({split[r] for r in rows} & set(SCORED_SPLITS)) - set(self._owners):
            members = np.flatnonzero(split == sp)
            cols = self.data.manifest["arrays"][self.image_array]["window_columns"]
            masks = owned_pixels(self.data.index[cols].to_numpy(np.int64)[members])
            self._owners[sp] = dict(zip(members.tolist(), masks))
        return [self._owners[split[r]][int(r)] if split[r] in SCORED_SPLITS else None
                for r in rows]

    def __call__(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        out = super().__call__(rows)
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        windows: dict[str, np.ndarray] = {}
        for name in self.tasks:
            spec = self.data.task(name)
            raster = spec.get("raster")
            if raster is None:
                raise InputError(f"{self.path}: task {name!r} names no label raster; rebuild "
                                 "the dataset with `rsbench build-taiga`")
            if raster not in windows:
                windows[raster] = self._read(raster, rows)
            window = windows[raster][..., int(spec.get("channel", 0))]
            dtype = np.int64 if spec["type"] == "classification" else np.float32
            out[name] = torch.from_numpy(np.array(window, dtype=dtype))
        masks = self.owned(rows)
        if any(m is not None for m in masks):
            for name in self.tasks:
                spec = self.data.task(name)
                empty = np.nan if spec["type"] != "classification" \
                    else spec.get("ignore_index", 255)
                for i, m in enumerate(masks):
                    if m is not None:
                        out[name][i][torch.from_numpy(~m)] = empty
        return out
