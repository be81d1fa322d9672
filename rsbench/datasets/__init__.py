"""Dataset builders, readers and the common rsbench dataset format.

``open_dataset(path)`` opens any built folder; ``TaskDataset`` (imported lazily, it needs
torch) serves one task/split as torch samples; ``export`` writes samples as files.

Sub-packages by role: ``format`` (the folder layout: manifest, writer, finalize, reader),
``sources`` (readers of the public downloads), ``builders`` (source -> format), ``synth``
(synthetic sources for demo and tests) and ``previews`` (pictures of built datasets).
"""

from __future__ import annotations

from rsbench.datasets.format.reader import Dataset, open_dataset, read_manifest

__all__ = ["Dataset", "open_dataset", "read_manifest", "TaskDataset"]


def __getattr__(name: str):
    if name == "TaskDataset":
        from rsbench.datasets.torch_dataset import TaskDataset

        return TaskDataset
    raise AttributeError(name)
