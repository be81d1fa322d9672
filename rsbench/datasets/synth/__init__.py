"""Synthetic copies of the source datasets in their real on-disk layouts (small, deterministic,
seeded), for the demo, the tests and the benchmarks: ``gid`` (GID image/label pairs),
``scenes`` (UC Merced, AID, NWPU-RESISC45, PatternNet, EuroSAT) and ``taiga`` (TAIGA ENVI files).
"""
