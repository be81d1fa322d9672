"""Deterministic train/test splits shared by the builders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rsbench.errors import UsageError


def check_fraction(train_fraction: float) -> None:
    if not 0.0 < train_fraction < 1.0:
        raise UsageError(f"--train-fraction must be between 0 and 1 (exclusive), "
                         f"not {train_fraction}")


def split_per_class(labels: np.ndarray, train_fraction: float, seed: int) -> np.ndarray:
    """``train_fraction`` of each class's samples (rounded) to train, the rest to test."""
    check_fraction(train_fraction)
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "test", dtype=object)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        n_train = int(round(train_fraction * len(members)))
        split[members[:n_train]] = "train"
    return split


def split_by_group(groups: pd.Series, train_fraction: float, seed: int) -> np.ndarray:
    """Whole groups (e.g. source images) to one split: shuffled groups go to train until the
    train share of samples reaches ``train_fraction``; no group straddles the split."""
    check_fraction(train_fraction)
    sizes = groups.value_counts().sort_index()
    if len(sizes) < 2:
        raise UsageError("--split-by image needs at least two source images with patches")
    order = sizes.index.to_numpy()[np.random.default_rng(seed).permutation(len(sizes))]
    target = train_fraction * len(groups)
    train_groups, total = [], 0
    for g in order:
        if total >= target or len(train_groups) == len(order) - 1:
            break
        train_groups.append(g)
        total += int(sizes[g])
    return np.where(groups.isin(train_groups).to_numpy(), "train", "test").astype(object)
