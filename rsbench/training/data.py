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

import math
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

    def _buffer(self, key: str | None, shape: tuple[int, ...], dtype) -> np.ndarray | None:
        """The loader worker's shared buffer for batch entry ``key`` when it gave one
        (``alloc``, see :class:`_BatchDataset`): the batch is read straight into it."""
        alloc = getattr(self, "alloc", None)
        return alloc(key, shape, dtype) if alloc is not None and key else None

    def _empty(self, key: str | None, shape: tuple[int, ...], dtype) -> np.ndarray:
        """Where batch entry ``key`` is read into: the worker's buffer, else new memory."""
        out = self._buffer(key, shape, dtype)
        return out if out is not None else np.empty(shape, dtype)

    def _read(self, name: str, rows: np.ndarray, key: str | None = None) -> np.ndarray:
        """Array ``name`` for ``rows``: rows of a sample array, or windows into a raster (of one
        size: copied straight into one array, the common case of TAIGA's windows)."""
        meta = self.data.manifest["arrays"][name]
        arr = self.data.array(name)
        if meta.get("layout", "sample") == "sample":
            out = self._buffer(key, (len(rows), *arr.shape[1:]), arr.dtype)
            return np.ascontiguousarray(arr[rows]) if out is None \
                else np.take(arr, rows, axis=0, out=out)
        cols = [self.data.index[c].to_numpy() for c in meta["window_columns"]]
        r, c, h, w = (col[rows] for col in cols)
        if (h == h[0]).all() and (w == w[0]).all():
            out = self._empty(key, (len(rows), int(h[0]), int(w[0]), *arr.shape[2:]), arr.dtype)
            for i in range(len(rows)):
                out[i] = arr[r[i]:r[i] + h[0], c[i]:c[i] + w[0]]
            return out
        return np.stack([arr[r[i]:r[i] + h[i], c[i]:c[i] + w[i]] for i in range(len(rows))])

    def __call__(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        rows = np.sort(np.asarray(rows, dtype=np.int64))  # sorted reads are sequential on disk
        data = self.data
        img = self._read(self.image_array, rows, key="image")
        if img.ndim == 3:
            img = img[..., None]
        out = {"image": torch.from_numpy(img)}
        for name in self.tasks:
            spec = data.task(name)
            if spec["type"] == "segmentation":
                out[name] = torch.from_numpy(self._read(spec["target"], rows, key=name))
            else:
                out[name] = torch.from_numpy(self._columns[name][rows])
        return out


SHARED_MIN_BYTES = 1 << 16  # tensors from this size up travel in the reused buffers


@dataclass(frozen=True)
class _InBuffer:
    """Stands for a tensor a worker wrote into buffer ``slot`` of its own (``key``)."""

    worker: int
    slot: int
    key: str
    shape: tuple[int, ...]


class _BatchDataset(torch.utils.data.Dataset):
    """Maps a whole batch of rows (from the sampler) to a batch, in one call.

    With ``buffers`` (see :class:`_BufferedLoader`), a worker writes each large tensor of a
    batch into the next of its shared-memory buffers and sends only an :class:`_InBuffer`.
    """

    def __init__(self, reader):
        self.reader = reader
        self.buffers: list[list[dict[str, torch.Tensor]]] | None = None  # [worker][slot][key]
        self._count = 0  # batches this worker has produced

    def __len__(self) -> int:  # pragma: no cover - unused with a batch sampler
        return 0

    def __getitem__(self, rows):
        info = torch.utils.data.get_worker_info()
        if self.buffers is None or info is None:
            return self.reader(rows)
        mine = self.buffers[info.id]
        slot = self._count % len(mine)
        self._count += 1

        def alloc(key: str, shape: tuple[int, ...], dtype) -> np.ndarray | None:
            buf = mine[slot].get(key)
            n = math.prod(shape)
            if buf is None or n > buf.numel() or buf.numpy().dtype != np.dtype(dtype):
                return None
            return buf[:n].numpy().reshape(shape)

        self.reader.alloc = alloc  # readers that know it read straight into the buffers
        try:
            batch = self.reader(rows)
        finally:
            self.reader.alloc = None
        for key, t in batch.items():
            buf = mine[slot].get(key)
            if not isinstance(t, torch.Tensor) or buf is None or buf.dtype != t.dtype \
                    or t.numel() > buf.numel():
                continue
            if not (t.is_contiguous() and t.data_ptr() == buf.data_ptr()):
                buf[:t.numel()].view(t.shape).copy_(t)  # a reader that made its own copy
            batch[key] = _InBuffer(info.id, slot, key, tuple(t.shape))
        return batch


class _BufferedLoader(torch.utils.data.DataLoader):
    """A DataLoader whose workers ship large tensors in shared-memory buffers made once and
    reused in turn, instead of a fresh shared-memory segment per batch, which costs page
    faults in the worker and in this process (the loader's main cost, see
    benchmarks/bench_loader.py). A batch's tensors are views of the buffers: valid while the
    caller reads the next batch, overwritten a few batches later (see :func:`make_loader`).
    """

    def __init__(self, dataset: _BatchDataset, *, slots: int, **kwargs):
        super().__init__(dataset, **kwargs)
        self.slots = slots

    def _make_buffers(self) -> None:
        ds = self.dataset
        rows = next(iter(self.sampler), None)
        if rows is None:
            return
        first = ds.reader(rows)  # the largest batch: later ones are as large or smaller
        big = {k: t for k, t in first.items()
               if isinstance(t, torch.Tensor) and t.nbytes >= SHARED_MIN_BYTES}
        ds.buffers = [[{k: torch.empty(t.numel(), dtype=t.dtype).share_memory_()
                        for k, t in big.items()} for _ in range(self.slots)]
                      for _ in range(self.num_workers)]

    def __iter__(self):
        ds = self.dataset
        if ds.buffers is None and self._iterator is None:  # before the workers start
            self._make_buffers()
        for batch in super().__iter__():
            for key, v in batch.items():
                if isinstance(v, _InBuffer):
                    t = ds.buffers[v.worker][v.slot][key]
                    t = t[:math.prod(v.shape)].view(v.shape)
                    batch[key] = t.pin_memory() if self.pin_memory else t
            yield batch


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
                prefetch: int = 4, reuse_buffers: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader yielding whole batches from ``reader``, pinned, with persistent workers.

    ``reuse_buffers`` (with workers): large tensors travel in ``prefetch + 2`` shared buffers
    per worker used in turn (:class:`_BufferedLoader`), several times faster for image
    batches. The DataLoader keeps at most ``prefetch`` batches per worker in flight and hands
    them out in order, so a batch stays intact while the caller reads the next one from the
    same loader; the caller must not keep a batch (or a CPU view of it) longer. The training
    loop complies: each step converts (on a GPU: copies) its batches.
    """
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=prefetch,
                      multiprocessing_context="fork" if hasattr(os, "fork") else None)
    ds = _BatchDataset(reader)
    if workers > 0 and reuse_buffers:
        # pinned on the way out (the buffers themselves are not pinned)
        return _BufferedLoader(ds, slots=prefetch + 2, sampler=sampler, batch_size=None,
                               num_workers=workers, pin_memory=pin_memory, **kwargs)
    return torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None,
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
