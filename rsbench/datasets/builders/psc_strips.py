"""Label strips of a GID pair for build-psc: read, decode to class codes, count per window and
apply the majority rule, one strip ahead of the image reads (a thread overlaps the two)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from rsbench.datasets.builders.psc_rule import REASONS, scene_decision, window_counts
from rsbench.datasets.sources import gid
from rsbench.errors import unreadable


@lru_cache(maxsize=2)
def _decoder(classes: int) -> gid.ColorDecoder:
    return gid.ColorDecoder(classes)


class _Scratch:
    """Strip-sized buffers reused from strip to strip.

    Fresh multi-megabyte temporaries per strip are returned to the OS and page-faulted back in
    every time; reusing them took about a third off the tiling's CPU time.
    """

    def __init__(self, rows: int, cols: int, bands: int = 3):
        # GDAL writes a colour label's bands in order, pixel-interleaved, into one flat byte
        # buffer (its memory-mapped GeoTIFF path is exact for this, not for reordered bands);
        # each pixel's first four bytes, read as a little-endian uint32 and masked to 24 bits,
        # are r | g<<8 | b<<16 (ColorDecoder.lut_bytes' key). The pad byte lets the last
        # 3-byte pixel be read that way.
        self.pixels = np.zeros(rows * cols * bands + 1, dtype=np.uint8)
        self.label_out = self.pixels[:-1].reshape(rows, cols, bands).transpose(2, 0, 1)
        self.keys = np.ndarray((rows, cols), dtype="<u4", buffer=self.pixels,
                               strides=(cols * bands, bands))
        self.index = np.empty((rows, cols), dtype=np.intp)
        self.is_off = np.empty((rows, cols), dtype=bool)
        # two code buffers: the writer still holds strip i while strip i+1 is decoded
        self.codes = [np.empty((rows, cols), dtype=np.uint8) for _ in range(2)]
        self.turn = 0

    def next_codes(self) -> np.ndarray:
        self.turn ^= 1
        return self.codes[self.turn]


def _label_codes(lab, pair: gid.GidPair, window: Window, classes: int,
                 decoder: gid.ColorDecoder, scratch: _Scratch) -> tuple[np.ndarray, np.ndarray]:
    """Codes (0 unlabelled, 1..C, C+1 off-palette) and the raw colour codes of the window
    (colour labels: byte-order keys r | g<<8 | b<<16, see :func:`gid.code_of_key`)."""
    try:
        if pair.label_kind == "color":
            lab.read(window=window, out=scratch.label_out)
            np.bitwise_and(scratch.keys, 0xFFFFFF, out=scratch.index, casting="unsafe")
            codes = np.take(decoder.lut_bytes, scratch.index, out=scratch.next_codes())
            return codes, scratch.index
        idx = lab.read(1, window=window)
    except RasterioIOError as exc:
        raise unreadable(pair.label, exc, "the file is damaged: download it again") from None
    return np.where(idx > classes, classes + 1, idx).astype(np.uint8), idx.astype(np.uint32)


@dataclass
class _Strip:
    """One decoded label strip of ``size`` rows and its per-window decisions."""

    r0: int
    mask: np.ndarray                # (size, W) stored mask codes, off-palette as 0
    counts: np.ndarray              # (windows, C+1) pixel counts, off-palette as unlabelled
    scene: np.ndarray
    keep: np.ndarray                # indices of kept windows


class StripLoader:
    """Reads and decodes the label strips of a pair and applies the majority rule.

    Runs one strip ahead of the image reads and patch writes in a thread: rasterio reads and
    the large numpy steps release the GIL, so decoding strip i+1 overlaps with strip i's I/O.
    """

    def __init__(self, pair: gid.GidPair, img, lab, opts: Any):
        self.pair, self.img, self.lab, self.opts = pair, img, lab, opts
        self.decoder = _decoder(opts.classes)
        self.skipped: Counter = Counter()
        self.off_colors: Counter = Counter()
        self.off_pixels = 0
        self.scratch = _Scratch(opts.size, img.width, lab.count)

    def __call__(self, r0: int) -> _Strip:
        opts, classes, size = self.opts, self.opts.classes, self.opts.size
        off = classes + 1
        window = Window(0, r0, self.img.width, size)
        codes, raw = _label_codes(self.lab, self.pair, window, classes, self.decoder,
                                  self.scratch)
        is_off = np.equal(codes, off, out=self.scratch.is_off)
        n_off = int(np.count_nonzero(is_off))
        if n_off:
            self.off_pixels += n_off
            vals, cnt = np.unique(raw[is_off], return_counts=True)
            if self.pair.label_kind == "color":  # keys -> r<<16 | g<<8 | b, in that order
                vals = gid.code_of_key(vals)
                order = np.argsort(vals)
                vals, cnt = vals[order], cnt[order]
            self.off_colors.update(dict(zip(vals.tolist(), cnt.tolist())))
        counts = window_counts(codes, size, opts.step, classes + 2, scratch=self.scratch.index)
        counts[:, 0] += counts[:, off]  # off-palette pixels count as unlabelled
        counts = counts[:, : classes + 1]
        scene, reason = scene_decision(counts, classes, opts.min_fraction, opts.min_labelled)
        for code, n in zip(*np.unique(reason, return_counts=True)):
            self.skipped[REASONS[int(code)]] += int(n)
        keep = np.flatnonzero(reason == 0)
        if n_off:
            codes[is_off] = 0  # the codes become the stored mask: off-palette = unlabelled
        return _Strip(r0, codes, counts, scene, keep)

    def read_image(self, r0: int, out: np.ndarray) -> np.ndarray:
        """The image strip at row ``r0`` as (size, W, bands), read into ``out``.

        GDAL writes the pixels interleaved straight into the buffer: about 2.5x faster than
        reading band-first and transposing.
        """
        window = Window(0, r0, self.img.width, self.opts.size)
        try:
            self.img.read(window=window, out=out.transpose(2, 0, 1))
        except RasterioIOError as exc:
            raise unreadable(self.pair.image, exc, "the file is damaged: download it again") \
                from None
        return out


def strips_ahead(load: StripLoader, starts: Sequence[int]):
    """Yield ``load(r0)`` for each start, computing the next one in a thread meanwhile."""
    if not starts:
        return
    with ThreadPoolExecutor(max_workers=1) as ahead:
        fut = ahead.submit(load, starts[0])
        for nxt in [*starts[1:], None]:
            strip = fut.result()
            if nxt is not None:
                fut = ahead.submit(load, nxt)
            yield strip
