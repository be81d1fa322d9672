"""The dataset builders: one protocol (``base``: plan sources -> stage parts -> finalize) and
its builders with their passes.

``psc`` (GID -> PSC5/PSC15, with ``psc_strips`` and the majority rule ``psc_rule``),
``gid_mtl`` (import the published GID-MTL sets), ``msc`` (MSC and mini-MSC) and ``transfer``
(PatternNet/EuroSAT) on the shared ``scene_build``, ``taiga`` (TAIGA hyperspectral, with
``taiga_passes``, ``taiga_windows`` and ``taiga_stats``), and the deterministic ``splits`` they
share. Builders read with :mod:`rsbench.datasets.sources` and write with
:mod:`rsbench.datasets.format`.
"""
