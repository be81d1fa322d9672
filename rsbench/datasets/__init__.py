"""Dataset builders, readers and the common rsbench dataset format.

``open_dataset(path)`` opens any built folder; ``TaskDataset`` (imported lazily, it needs
torch) serves one task/split as torch samples.
"""

from __future__ import annotations

from rsbench.datasets.reader import Dataset, open_dataset, read_manifest

__all__ = ["Dataset", "open_dataset", "read_manifest", "TaskDataset"]


def __getattr__(name: str):
    if name == "TaskDataset":
        from rsbench.datasets.torch_dataset import TaskDataset

        return TaskDataset
    raise AttributeError(name)
