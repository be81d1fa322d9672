"""The rsbench dataset format: one folder layout written by every builder, read by one reader.

A finished dataset folder holds
- ``dataset.json``: the manifest (written last; a folder without it is incomplete),
- ``index.parquet``: one row per sample (sample id, task group, split, labels, source, window),
- ``arrays/<name>.npy``: memory-mappable arrays; ``layout: sample`` arrays have row i = index
  row i, ``layout: raster`` arrays are stored once and samples are windows into them,
- optional ``footprints.gpkg`` and ``preview/*.png``.

The pieces live in their own modules: :mod:`~rsbench.datasets.manifest` (the typed schema),
:mod:`~rsbench.datasets.writer` (locked staging, parts, stages), :mod:`~rsbench.datasets.finalize`
(crash-safe gathering into the final folder), :mod:`~rsbench.datasets.reader` (``Dataset``,
``open_dataset``) and :mod:`~rsbench.datasets.summary` (text). This module re-exports them so
``from rsbench.datasets.format import ...`` keeps working.
"""

from __future__ import annotations

from rsbench.datasets.finalize import class_counts, write_footprints
from rsbench.datasets.manifest import (
    ARRAYS,
    FOOTPRINTS,
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEX,
    MANIFEST,
    PARTS,
    PREVIEW,
    STAGING,
    ArraySpec,
    Manifest,
    TaskSpec,
    atomic_write_text,
    describe_source,
    json_default,
    sha256_file,
)
from rsbench.datasets.reader import Dataset, open_dataset, read_manifest, read_manifest_typed
from rsbench.datasets.summary import format_count_table
from rsbench.datasets.writer import DatasetWriter, Part, PartWriter, RasterWriter

__all__ = [
    "ARRAYS", "FOOTPRINTS", "FORMAT_NAME", "FORMAT_VERSION", "INDEX", "MANIFEST", "PARTS",
    "PREVIEW", "STAGING", "ArraySpec", "Dataset", "DatasetWriter", "Manifest", "Part",
    "PartWriter", "RasterWriter", "TaskSpec", "atomic_write_text", "class_counts",
    "describe_source", "format_count_table", "json_default", "open_dataset", "read_manifest",
    "read_manifest_typed", "sha256_file", "write_footprints",
]
