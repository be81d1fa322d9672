"""The majority-pixel rule that gives a PSC patch its scene class.

As the published PSC sets show it: class c is the scene when c covers MORE than ``min_fraction``
of the patch's *labelled* pixels (unlabelled and off-palette pixels excluded) and labelled pixels
are at least ``min_labelled`` of the patch. Exactly half is not more than half.
"""

from __future__ import annotations

import numpy as np

KEEP = "kept"
MOSTLY_UNLABELLED = "mostly_unlabelled"
NO_MAJORITY = "no_majority"


def window_counts(codes: np.ndarray, size: int, stride: int, n_codes: int,
                  scratch: np.ndarray | None = None) -> np.ndarray:
    """Per-window code histograms for one strip of ``size`` rows: (n_windows, n_codes).

    ``scratch``: an optional reusable intp buffer of at least ``codes.size`` elements (saves
    a large temporary).
    """
    cols = codes.shape[1]
    starts = np.arange(0, cols - size + 1, stride)
    if len(starts) == 0:
        return np.zeros((0, n_codes), dtype=np.int64)
    nbins = len(starts) * n_codes
    if stride == size:
        # tiled windows: add each column's window offset and count once (no transposed copy)
        n = len(starts) * size
        win = (np.arange(n, dtype=np.intp) // size) * n_codes
        rows = codes.shape[0]
        out = None
        if scratch is not None and scratch.size >= rows * n and scratch.dtype == np.intp:
            out = scratch.reshape(-1)[: rows * n].reshape(rows, n)  # contiguous: ravel is free
        flat = np.add(codes[:, :n], win, out=out, casting="unsafe")
        return np.bincount(flat.ravel(), minlength=nbins).reshape(len(starts), n_codes)
    view = np.lib.stride_tricks.sliding_window_view(codes, (size, size))[0, starts]
    blocks = view.reshape(len(starts), -1)
    offsets = (np.arange(len(starts), dtype=np.int64) * n_codes)[:, None]
    flat = (blocks.astype(np.int64) + offsets).ravel()
    return np.bincount(flat, minlength=len(starts) * n_codes).reshape(len(starts), n_codes)


def scene_decision(counts: np.ndarray, classes: int, min_fraction: float,
                   min_labelled: float) -> tuple[np.ndarray, np.ndarray]:
    """For histograms (n, >= classes+1) with 0 = unlabelled and 1..C classes, return
    (scene class index 0..C-1 or -1, reason code 0 kept / 1 mostly unlabelled / 2 no majority).
    """
    total = counts.sum(axis=1)
    cls_counts = counts[:, 1: classes + 1]
    labelled = cls_counts.sum(axis=1)
    best = cls_counts.argmax(axis=1)
    best_n = cls_counts[np.arange(len(counts)), best]
    enough = labelled >= min_labelled * total
    # strictly more than min_fraction of labelled pixels; integer-safe for the 1/2 edge
    majority = best_n > min_fraction * labelled
    reason = np.where(~enough, 1, np.where(~majority, 2, 0))
    scene = np.where(reason == 0, best, -1)
    return scene, reason


REASONS = {0: KEEP, 1: MOSTLY_UNLABELLED, 2: NO_MAJORITY}
