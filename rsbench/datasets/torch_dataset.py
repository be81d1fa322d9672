"""A torch ``Dataset`` over any built rsbench dataset folder, one task and split at a time.

Samples are dicts that torchvision v2 transforms understand: ``image`` (tv_tensors.Image,
C×H×W uint8), ``label`` (int64 tensor) for classification tasks and ``mask``
(tv_tensors.Mask, H×W) where the samples carry a segmentation mask.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from rsbench.datasets.format.reader import Dataset as BuiltDataset
from rsbench.datasets.format.reader import open_dataset


class TaskDataset(torch.utils.data.Dataset):
    """Samples of ``task`` in ``split`` (all splits if None), read from memory-mapped arrays."""

    def __init__(self, data: str | os.PathLike | BuiltDataset, task: str,
                 split: str | None = None, transform: Callable | None = None,
                 image_array: str = "image"):
        self.data = data if isinstance(data, BuiltDataset) else open_dataset(data)
        self.task = task
        self.spec = self.data.task(task)
        self.rows = self.data.rows(task, split)
        self.transform = transform
        self.image_array = image_array
        # every task on the same rows contributes its target (PSC: scene label + mask)
        self.siblings = {n: t for n, t in self.data.tasks.items() if t["rows"] == self.spec["rows"]}
        self._labels = {
            n: self.data.index[t["target"]].to_numpy()
            for n, t in self.siblings.items() if t["type"] in ("classification", "regression")
        }

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = int(self.rows[i])
        img = np.array(self.data.sample_array(self.image_array, row))  # copy: mmap is read-only
        sample: dict[str, Any] = {
            "image": tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1)),
            "index": row,
        }
        for name, t in self.siblings.items():
            if t["type"] == "segmentation":
                mask = np.array(self.data.sample_array(t["target"], row))
                sample["mask"] = tv_tensors.Mask(torch.from_numpy(mask.astype(np.int64)))
            else:
                key = "label" if name == self.task or "label" not in sample else f"label_{name}"
                value = self._labels[name][row]
                dtype = torch.int64 if t["type"] == "classification" else torch.float32
                sample[key] = torch.as_tensor(value, dtype=dtype)
        if self.transform is not None:
            sample = self.transform(sample)
        return sample

    def plot(self, index: int, show_titles: bool = True, suptitle: str | None = None):
        """A matplotlib Figure of sample ``index`` (as TorchGeo's ``plot``): image with class
        name; PSC mask in the manifest's colours with a legend; TAIGA RGB composite, label
        windows and continuous values (see :mod:`rsbench.datasets.previews.sample_plot`)."""
        from rsbench.datasets.previews.sample_plot import plot_sample

        return plot_sample(self, index, show_titles=show_titles, suptitle=suptitle)
