"""The rsbench dataset format: one folder layout written by every builder, read by one reader.

A finished dataset folder holds
- ``dataset.json``: the manifest (written last; a folder without it is incomplete),
- ``index.parquet``: one row per sample (sample id, task group, split, labels, source, window),
- ``arrays/<name>.npy``: memory-mappable arrays; ``layout: sample`` arrays have row i = index
  row i, ``layout: raster`` arrays are stored once and samples are windows into them,
- ``splits.csv``: the sample-to-split assignment, shareable with ``--splits FILE``,
- optional ``footprints.gpkg`` and ``preview/*.png``.

Modules: ``manifest`` (the typed schema and file names), ``safepaths`` (paths read from files
stay inside their folder), ``split_files`` (``splits.csv``), ``writer`` (locked staging, parts,
stages), ``finalize`` (crash-safe gathering into the final folder), ``reader`` (``Dataset``,
``open_dataset``) and ``summary`` (text views for ``rsbench info`` and ``--resume``).
Nothing here knows a particular source or builder.
"""
