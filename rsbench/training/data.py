"""Training data pipeline: uint8 memory-mapped arrays -> whole batches -> device.

Workers read whole batches (one fancy-indexed read of the memmap per array, no per-sample
dicts), the DataLoader pins them, and the device converts, normalises and flips them
(:func:`prepare_batch`), so the CPU does as little as possible per sample.

Tasks that share rows (PSC: scene label + segmentation mask of the same images) form one
*group*. How a multitask step is drawn is the config's ``batching`` (:func:`plan_epoch`):
``per-task`` (default): every step draws one batch from every group, an epoch is one pass of the
largest group, and groups with fewer batches are cycled with a fresh shuffle per pass
(:class:`EpochBatches`); ``proportional``: every step draws one group's batch, groups drawn in
proportion to their size, an epoch is one pass over every training sample.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rsbench.datasets.format.reader import Dataset as BuiltDataset
from rsbench.datasets.format.reader import open_dataset
from rsbench.errors import UsageError
from rsbench.training.config import resolve


@dataclass
class TaskGroup:
    """Tasks answered from the same images (same ``rows`` value in the dataset's index)."""

    rows_key: str
    tasks: list[str]
    types: dict[str, str] = field(default_factory=dict)


def task_groups(data: BuiltDataset, tasks: Sequence[str]) -> list[TaskGroup]:
    """Group ``tasks`` by their ``rows`` value, keeping the order of first appearance."""
    groups: dict[str, TaskGroup] = {}
    for name in tasks:
        spec = data.task(name)
        g = groups.setdefault(spec["rows"], TaskGroup(spec["rows"], []))
        g.tasks.append(name)
        g.types[name] = spec["type"]
    return list(groups.values())


class ArrayReader:
    """Reads a batch of index rows: ``{"image": uint8 N×H×W×C, task: target}`` as tensors.

    Picklable (it reopens the dataset lazily in each worker). Classification targets come from
    index columns as int64, regression targets as float32, segmentation targets from arrays as
    uint8 (converted on the device).
    """

    def __init__(self, path: str | os.PathLike, tasks: Sequence[str], image_array: str = "image"):
        self.path = str(path)
        self.tasks = list(tasks)
        self.image_array = image_array
        self._data: BuiltDataset | None = None
        self._columns: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_data"] = None
        state["_columns"] = None
        return state

    @property
    def data(self) -> BuiltDataset:
        if self._data is None:
            self._data = open_dataset(self.path)
            self._columns = {}
            for name in self.tasks:
                spec = self._data.task(name)
                if spec["type"] == "classification":
                    self._columns[name] = self._data.index[spec["target"]].to_numpy(np.int64)
                elif spec["type"] == "regression":
                    cols = spec["target"] if isinstance(spec["target"], list) else [spec["target"]]
                    self._columns[name] = self._data.index[cols].to_numpy(np.float32)
        return self._data

    def _read(self, name: str, rows: np.ndarray) -> np.ndarray:
        meta = self.data.manifest["arrays"][name]
        if meta.get("layout", "sample") == "sample":
            return np.ascontiguousarray(self.data.array(name)[rows])
        return np.stack([self.data.sample_array(name, int(r)) for r in rows])

    def __call__(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        rows = np.sort(np.asarray(rows, dtype=np.int64))  # sorted reads are sequential on disk
        data = self.data
        img = self._read(self.image_array, rows)
        if img.ndim == 3:
            img = img[..., None]
        out = {"image": torch.from_numpy(img)}
        for name in self.tasks:
            spec = data.task(name)
            if spec["type"] == "segmentation":
                out[name] = torch.from_numpy(self._read(spec["target"], rows))
            else:
                out[name] = torch.from_numpy(self._columns[name][rows])
        return out


class _BatchDataset(torch.utils.data.Dataset):
    """Maps a whole batch of rows (from the sampler) to a batch, in one call."""

    def __init__(self, reader):
        self.reader = reader

    def __len__(self) -> int:  # pragma: no cover - unused with a batch sampler
        return 0

    def __getitem__(self, rows):
        return self.reader(rows)


class EpochBatches(torch.utils.data.Sampler):
    """Row batches of one group for one epoch of ``steps`` steps (cycled with fresh shuffles).

    The shuffle of pass ``p`` of epoch ``e`` is seeded by (seed, group, e, p), so an epoch's
    batches never depend on the history of the process: resuming at an epoch boundary replays
    exactly. Under DDP every rank draws the same global batch and keeps its ``rank::world``
    slice, so the global batch size stays ``batch_size``.
    """

    def __init__(self, rows: np.ndarray, batch_size: int, *, seed: int, group: int,
                 shuffle: bool = True, drop_last: bool = True, rank: int = 0, world: int = 1):
        self.rows = np.asarray(rows, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.seed, self.group = int(seed), int(group)
        self.shuffle, self.rank, self.world = shuffle, rank, world
        n = len(self.rows)
        # a group smaller than one batch still trains (one short batch per pass)
        self.drop_last = drop_last and n >= self.batch_size
        self.per_pass = (n // self.batch_size if self.drop_last
                         else -(-n // self.batch_size)) if n else 0
        self.epoch = 0
        self.steps = self.per_pass

    def set_epoch(self, epoch: int, steps: int | None = None) -> None:
        self.epoch = int(epoch)
        self.steps = self.per_pass if steps is None else int(steps)

    def _order(self, pass_no: int) -> np.ndarray:
        if not self.shuffle:
            return self.rows
        rng = np.random.default_rng([self.seed, self.group, self.epoch, pass_no])
        return self.rows[rng.permutation(len(self.rows))]

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[np.ndarray]:
        if not self.per_pass:
            return
        order = None
        for step in range(self.steps):
            pass_no, b = divmod(step, self.per_pass)
            if b == 0 or order is None:
                order = self._order(pass_no)
            batch = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield batch[self.rank::self.world]


BATCHINGS = ("per-task", "proportional")


def check_batching(name: str) -> str:
    """``name`` if it is a known batching, else a one-line error naming the setting."""
    if name not in BATCHINGS:
        raise UsageError(f"batching {name!r} is not one of {', '.join(BATCHINGS)}; set it "
                         "with --set batching=per-task (or proportional)")
    return name


def plan_epoch(samplers: Sequence[EpochBatches], batching: str, *, seed: int, epoch: int,
               max_steps: int | None = None) -> list[tuple[int, ...]]:
    """Set every group's sampler to ``epoch``; return the groups each step draws a batch from.

    ``per-task``: every step every group, as many steps as the largest group has batches.
    ``proportional``: one pass of every group, each step one group's batch, in an order shuffled
    by (seed, epoch), so groups appear in proportion to their size.
    """
    per_pass = [s.per_pass for s in samplers]
    if check_batching(batching) == "per-task":
        steps = max(per_pass) if not max_steps else min(max(per_pass), int(max_steps))
        for s in samplers:
            s.set_epoch(epoch, steps)
        return [tuple(range(len(samplers)))] * steps
    for s in samplers:
        s.set_epoch(epoch)
    rng = np.random.default_rng([seed, epoch, 1])
    order = rng.permutation(np.repeat(np.arange(len(samplers)), per_pass))
    if max_steps:
        order = order[:int(max_steps)]
    return [(int(g),) for g in order]


def make_reader(cfg: Mapping[str, Any], path: str | os.PathLike, tasks: Sequence[str]):
    """The config's batch reader (dotted path to a factory with ArrayReader's signature)."""
    factory = resolve(cfg["batch_reader"]) if cfg.get("batch_reader") else ArrayReader
    return factory(path, tasks, image_array=cfg.get("image_array", "image"))


def make_loader(reader, sampler: EpochBatches, *, workers: int = 0, pin_memory: bool = False,
                prefetch: int = 4) -> torch.utils.data.DataLoader:
    """A DataLoader yielding whole batches from ``reader``, pinned, with persistent workers."""
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=prefetch,
                      multiprocessing_context="fork" if hasattr(os, "fork") else None)
    return torch.utils.data.DataLoader(_BatchDataset(reader), sampler=sampler, batch_size=None,
                                       num_workers=workers, pin_memory=pin_memory, **kwargs)


class DevicePrep:
    """On-device preparation: uint8 NHWC -> float NCHW (channels-last), normalise, resize, flip.

    ``generator`` (on the device) decides the flips, so they are reproducible per epoch.
    """

    def __init__(self, cfg: Mapping[str, Any], device: torch.device, types: Mapping[str, str],
                 channels_last: bool = False):
        norm = cfg.get("normalize") or {}
        self.scale = float(norm.get("scale", 255.0))
        self.device = device
        self.types = dict(types)
        self.channels_last = channels_last
        self.size = cfg.get("input_size")
        aug = cfg.get("augment") or {}
        self.hflip, self.vflip = bool(aug.get("hflip")), bool(aug.get("vflip"))
        mean, std = norm.get("mean"), norm.get("std")
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) if mean else None
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) if std else None

    def __call__(self, batch: Mapping[str, torch.Tensor], *, train: bool,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        dev = self.device
        x = batch["image"].to(dev, non_blocking=True).permute(0, 3, 1, 2).float()
        x = x.mul_(1.0 / self.scale)
        if self.mean is not None and self.mean.shape[1] == x.shape[1]:
            x = x.sub_(self.mean).div_(self.std)
        targets = {}
        for name, t in batch.items():
            if name == "image":
                continue
            t = t.to(dev, non_blocking=True)
            if self.types.get(name) == "segmentation":
                t = t.long()
            targets[name] = t
        if self.size and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=True)
            for name, t in targets.items():
                if t.ndim == 3:
                    targets[name] = F.interpolate(t[:, None].float(), size=(self.size,) * 2,
                                                  mode="nearest")[:, 0].long()
        if train and (self.hflip or self.vflip):
            n = x.shape[0]
            for dim, on in ((-1, self.hflip), (-2, self.vflip)):
                if not on:
                    continue
                flip = torch.rand(n, device=dev, generator=generator) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(dim), x)
                for name, t in targets.items():
                    if t.ndim == 3:
                        targets[name] = torch.where(flip.view(-1, 1, 1), t.flip(dim), t)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = x.contiguous()
        return x, targets


def make_prep(cfg: Mapping[str, Any], device: torch.device, types: Mapping[str, str],
              channels_last: bool = False):
    """The config's input preparation (dotted path to a class like :class:`DevicePrep`)."""
    cls = resolve(cfg["prepare"]) if cfg.get("prepare") else DevicePrep
    return cls(cfg, device, types, channels_last=channels_last)
