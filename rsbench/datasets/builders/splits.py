"""Deterministic splits shared by every builder: per class, by group, per class with
duplicates moving together (scene sets), and by region (TAIGA stands or blocks)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence

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


def task_seed(seed: int, *names: object) -> list[int]:
    """A stable RNG seed for (seed, names): independent of which other tasks are built."""
    return [seed, *(zlib.crc32(str(n).encode()) for n in names)]


def split_per_class_grouped(index: pd.DataFrame, n_train: Callable[[str, int, int], int],
                  seed: int) -> pd.Series:
    """Per task and class, ``n_train(task, label, count)`` images to train, the rest to test.

    Draws are deterministic by seed, task and class. Exact duplicates (``dup_group``) move as
    one unit, so none is on both sides; a group spanning classes is placed by its first class.
    """
    split = pd.Series("", index=index.index, dtype=object)
    for task, rows in index.groupby("task", sort=False):
        placed: dict[int, str] = {}  # duplicate group -> side, across the task's classes
        for label, cls_rows in rows.groupby("label", sort=True):
            target = n_train(str(task), int(label), len(cls_rows))
            rng = np.random.default_rng(task_seed(seed, task, "split", label))
            groups = cls_rows["dup_group"].to_numpy()
            # a unit is a duplicate group (its number) or one image (-1 - its row position)
            unit = np.where(groups >= 0, groups, -1 - np.arange(len(cls_rows)))
            units, first, counts = np.unique(unit, return_index=True, return_counts=True)
            order = np.argsort(first)
            units, counts = units[order], counts[order]
            side: dict[int, str] = {int(u): placed[int(u)] for u in units
                                    if u >= 0 and int(u) in placed}
            n_tr = sum(int(c) for u, c in zip(units, counts) if side.get(int(u)) == "train")
            for k in rng.permutation(len(units)):
                u = int(units[k])
                if u in side:
                    continue
                side[u] = "train" if n_tr + int(counts[k]) <= target else "test"
                n_tr += int(counts[k]) if side[u] == "train" else 0
                if u >= 0:
                    placed[u] = side[u]
            split.loc[cls_rows.index] = [side[int(u)] for u in unit]
    return split


def split_regions_by_share(pixels: pd.Series, seed: int,
                           shares: Sequence[tuple[int, float]],
                           fixed: Mapping[int, int] | None = None,
                           rest_code: int = 1) -> dict[int, int]:
    """Whole regions (TAIGA stands or blocks) to split codes by labelled-pixel share.

    ``pixels`` gives each region's labelled pixels (index = region id, sorted). Regions in
    ``fixed`` keep their code; the others are shuffled by ``seed`` and handed to each
    ``(code, share)`` in turn until that code holds ``share`` of all pixels; the rest get
    ``rest_code``.
    """
    total = float(pixels.sum())
    rng = np.random.default_rng(seed)
    regions = pixels.index.to_numpy()
    out = {int(r): int(c) for r, c in (fixed or {}).items()}
    rest = regions[~np.isin(regions, list(out))] if out else regions
    order = rng.permutation(rest)
    i = 0
    for code, frac in shares:
        acc = 0.0
        while i < len(order) and acc < frac * total and frac > 0:
            out[int(order[i])] = code
            acc += float(pixels[order[i]])
            i += 1
    for r in order[i:]:
        out[int(r)] = rest_code
    return out
