"""GID → PSC5 / PSC15: 224×224 patches with a scene label (majority-pixel rule) and a pixel mask.

Each source image is tiled on a stride grid and read one strip of windows at a time with
rasterio, so memory stays bounded whatever the image size; labels are decoded with a lookup
table and counted per window with one ``bincount`` per strip. Each source becomes a resumable
part of the staging folder; workers process sources in parallel.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.errors import RasterioIOError

from rsbench.datasets.builders.base import Builder, run_build
from rsbench.datasets.builders.psc_index import footprints_frame, mask_pixel_counts, split_keys
from rsbench.datasets.builders.psc_strips import StripLoader, strips_ahead
from rsbench.datasets.builders.splits import check_fraction, split_by_group, split_per_class
from rsbench.datasets.format.manifest import TaskSpec, describe_source
from rsbench.datasets.format.split_files import SplitFile
from rsbench.datasets.format.writer import DatasetWriter, PartWriter
from rsbench.datasets.previews.chart_worker import ChartWorker, start_chart_worker
from rsbench.datasets.sources import gid
from rsbench.errors import InputError, UsageError, unreadable
from rsbench.progress import progress

GDAL_CACHE_MB = 64  # windows are read once, in order: a big block cache only costs memory
# uncompressed GeoTIFF images (GID's) are opened for GDAL's memory-mapped reads instead of its
# block cache: the strips are copied once, straight from the page cache (GDAL falls back to
# its usual reads for compressed or larger-than-RAM files; it reads the option when a file is
# opened). Images and colour labels alike are read with all bands in order, pixel-interleaved:
# for bands out of order, e.g. (3, 2, 1), that path returns wrong pixels from 4-band
# pixel-interleaved files (GDAL 3.10; tests/test_psc_mapped_reads.py)
MAPPED_READS = {"GTIFF_VIRTUAL_MEM_IO": "IF_ENOUGH_RAM"}
# from this many source pixels to tile (one GID image has 49 M), matplotlib is loaded in a
# worker process during the tiling and the charts are drawn there (see previews.chart_worker);
# smaller builds finish before that process would have started
CHART_WORKER_MIN_PIXELS = 20_000_000


@dataclass(frozen=True)
class PscOptions:
    """Options of ``rsbench build-psc`` (the CLI's flags, with the same defaults)."""

    classes: int = 5
    size: int = 224
    stride: int | None = None
    min_fraction: float = 0.5
    min_labelled: float = 0.25
    bands: str = "rgb"
    train_fraction: float = 0.8
    split_by: str = "patch"
    seed: int = 0
    max_off_palette: float = 0.05

    @property
    def step(self) -> int:
        return self.stride or self.size

    def validate(self) -> None:
        gid.scheme(self.classes)
        if self.size < 8:
            raise UsageError(f"--size must be at least 8 pixels, not {self.size}")
        if self.stride is not None and self.stride < 1:
            raise UsageError(f"--stride must be at least 1 pixel, not {self.stride} (leave it "
                             "out for stride = --size)")
        if not 0.0 <= self.min_fraction < 1.0:
            raise UsageError(f"--min-fraction must be in [0, 1), not {self.min_fraction}")
        if not 0.0 <= self.min_labelled <= 1.0:
            raise UsageError(f"--min-labelled must be in [0, 1], not {self.min_labelled}")
        if self.bands not in ("rgb", "nirrgb"):
            raise UsageError(f"--bands must be rgb or nirrgb, not {self.bands!r}")
        if self.split_by not in ("patch", "image"):
            raise UsageError(f"--split-by must be patch or image, not {self.split_by!r}")
        check_fraction(self.train_fraction)
        if not 0.0 <= self.max_off_palette <= 1.0:
            raise UsageError(f"--max-off-palette must be in [0, 1], not {self.max_off_palette}")


def _open(path: Path, mapped: bool = False):
    """``path`` opened with rasterio; ``mapped``: for memory-mapped reads (see MAPPED_READS)."""
    try:
        if mapped:
            with rasterio.Env(**MAPPED_READS):
                return rasterio.open(path)
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise unreadable(path, exc, "the file is truncated or not a GeoTIFF: download it "
                         "again") from None


def _check_pair(pair: gid.GidPair, img, lab, opts: PscOptions) -> None:
    if (img.height, img.width) != (lab.height, lab.width):
        raise InputError(f"{pair.label} is {lab.height}x{lab.width} but its image {pair.image} "
                         f"is {img.height}x{img.width}; image and label must match")
    if img.crs and lab.crs and (img.crs != lab.crs
                                or not img.transform.almost_equals(lab.transform)):
        raise InputError(f"{pair.label} and {pair.image} have different georeferences; "
                         "image and label must cover the same pixels")
    want = 3 if opts.bands == "rgb" else 4
    if img.count != want:
        raise InputError(f"{pair.image} has {img.count} bands but --bands {opts.bands} needs "
                         f"{want}; pick the matching --bands or the image_RGB/image_NirRGB file")
    if img.dtypes[0] != "uint8":
        raise InputError(f"{pair.image} is {img.dtypes[0]}, expected 8-bit GID imagery")
    if pair.label_kind == "color" and lab.count < 3:
        raise InputError(f"{pair.label} has {lab.count} band(s); GID colour labels are RGB")
    if opts.size > min(img.height, img.width):
        raise UsageError(f"--size {opts.size} is larger than {pair.image} "
                         f"({img.height}x{img.width}); use a smaller --size")


def process_pair(pair: gid.GidPair, staging: str, root: str, opts: PscOptions,
                 stream: bool = False, hash_here: bool = True) -> dict:
    """Tile one image/label pair into a finished part; returns its per-source summary.
    ``stream``: append to the staging streams (one process at a time; see PartWriter).
    ``hash_here``: the sources' checksums go in the part's info (else the caller hashes them
    and the info's ``sources`` is None)."""
    classes, size, step = opts.classes, opts.size, opts.step
    writer = PartWriter(staging, pair.stem, stream=stream)
    # checksums run in a thread (hashlib releases the GIL) while the windows are processed
    hasher = ThreadPoolExecutor(max_workers=1)
    checksums = queue_checksums(hasher, pair, root) if hash_here else None
    # each strip's patches are written by a thread (file writes release the GIL and, once the
    # page cache throttles them, block) while the next strip is read; two buffer sets alternate
    saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="psc-write")
    saving = [None, None]
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), _open(pair.image, mapped=True) as img, \
                _open(pair.label, mapped=pair.label_kind == "color") as lab:
            _check_pair(pair, img, lab, opts)
            height, width = img.height, img.width
            starts = np.arange(0, width - size + 1, step)
            image_rel = os.path.relpath(pair.image, root)
            label_rel = os.path.relpath(pair.label, root)
            load = StripLoader(pair, img, lab, opts)
            npix = size * size
            pixels = np.empty((size, width, img.count), dtype=np.uint8)
            batches = [(np.empty((len(starts), size, size, img.count), dtype=np.uint8),
                        np.empty((len(starts), size, size), dtype=np.uint8)) for _ in range(2)]
            turn = 0
            for strip in strips_ahead(load, list(range(0, height - size + 1, step))):
                if not len(strip.keep):
                    continue
                image = load.read_image(strip.r0, pixels)
                counts = strip.counts
                cols = starts[strip.keep].tolist()
                fractions = (counts[strip.keep] / npix).astype(np.float32)
                labelled = counts[strip.keep, 1:].sum(axis=1) / npix
                rows = [{
                    "task": "psc", "image_id": pair.stem, "source": image_rel,
                    "label_source": label_rel, "row_off": strip.r0, "col_off": c0,
                    "height": size, "width": size, "label": int(strip.scene[j]),
                    "labelled_fraction": float(lf), "class_fractions": fr,
                } for j, c0, lf, fr in zip(strip.keep, cols, labelled, fractions.tolist())]
                # one batch per strip, gathered into reused buffers: one write per array
                turn ^= 1
                if saving[turn] is not None:
                    saving[turn].result()  # this buffer set's last write has finished
                image_batch, mask_batch = batches[turn]
                for i, c0 in enumerate(cols):
                    image_batch[i] = image[:, c0:c0 + size]
                    mask_batch[i] = strip.mask[:, c0:c0 + size]
                saving[turn] = saver.submit(writer.append_many, rows,
                                            image=image_batch[:len(cols)],
                                            mask=mask_batch[:len(cols)])
            for pending in saving:
                if pending is not None:
                    pending.result()
            skipped, off_colors, off_pixels = load.skipped, load.off_colors, load.off_pixels
            total = height * width
            if off_pixels > opts.max_off_palette * total:
                top = off_colors.most_common(5)
                listed = ", ".join(f"{gid.code_to_rgb(c)}: {n}" for c, n in top)
                colours = [gid.code_to_rgb(c) for c, _ in top]
                other = 15 if classes == 5 else 5
                hint = (f"these are {other}-class colours, so try --classes {other}"
                        if gid.off_palette_fit(colours, classes)
                        else f"raise --max-off-palette (now {opts.max_off_palette:g}) if this is "
                             "expected")
                raise InputError(f"{pair.label}: {off_pixels / total:.1%} of pixels are not "
                                 f"{classes}-class colours (most common: {listed}); {hint}")
            info = {
                "stem": pair.stem,
                "windows": int(sum(skipped.values())),
                "skipped": {k: v for k, v in skipped.items() if k != "kept"},
                "kept": int(skipped.get("kept", 0)),
                "off_palette_pixels": off_pixels,
                "off_palette_top": [[list(gid.code_to_rgb(c)), n]
                                    for c, n in off_colors.most_common(5)],
                "crs": img.crs.to_wkt() if img.crs else None,
                "transform": list(img.transform)[:6] if img.crs else None,
                "sources": None if checksums is None else [c.result() for c in checksums],
            }
    except BaseException:
        saver.shutdown(wait=True, cancel_futures=True)  # no write may run into the abort
        writer.abort()
        raise
    finally:
        saver.shutdown(wait=True, cancel_futures=True)
        hasher.shutdown(wait=True, cancel_futures=True)
    writer.close(info)
    return info


def queue_checksums(hasher: ThreadPoolExecutor, pair: gid.GidPair, root: str) -> list[Future]:
    """The SHA-256 source descriptions of a pair's image and label, queued on ``hasher``."""
    return [hasher.submit(describe_source, p, root) for p in (pair.image, pair.label)]


def _lower_priority() -> None:
    """Run this thread at the lowest CPU priority (Linux: a thread's nice value; elsewhere a
    no-op): it then takes only CPU time the tiling leaves idle."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def background_hasher() -> ThreadPoolExecutor:
    """One low-priority thread for the sources' SHA-256: ~1.3 s of CPU per GB that, on a busy
    machine, fills the cores' idle time (start-up, finish) instead of slowing the tiling."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="psc-sha256",
                              initializer=_lower_priority)


def _run_parts(writer: DatasetWriter, pairs: Sequence[gid.GidPair], root: str,
               opts: PscOptions, workers: int) -> None:
    todo = [p for p in pairs if not writer.part_done(p.stem)]
    if len(todo) < len(pairs):
        print(f"resuming: {len(pairs) - len(todo)} of {len(pairs)} source images already done")
    staging = str(writer.staging)
    bar = progress(total=len(todo), desc="build-psc", unit="image")
    if workers <= 1 or len(todo) <= 1:
        # the checksums are the builder's background hasher's (PscBuilder.stage)
        for pair in todo:  # one writer at a time: the samples go straight to the streams
            process_pair(pair, staging, root, opts, stream=True, hash_here=False)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(process_pair, p, staging, root, opts) for p in todo]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.update()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    bar.close()


def psc_tasks(classes: int) -> list[TaskSpec]:
    """The two PSC tasks: scene (label 0..C-1) and segmentation (mask 0 = unlabelled, 1..C)."""
    names, colors = gid.class_names(classes), gid.class_colors(classes)
    return [
        TaskSpec("scene", "classification", rows="psc", target="label", classes=names,
                 colors=[list(c) for c in colors]),
        TaskSpec("segmentation", "segmentation", rows="psc", target="mask",
                 classes=["unlabelled", *names],
                 colors=[[0, 0, 0], *[list(c) for c in colors]],
                 extra={"unlabelled_index": 0,
                        "note": "off-palette label colours are stored as 0 (unlabelled)"}),
    ]


def psc_splits(index: pd.DataFrame, opts: PscOptions, group_column: str = "image_id"):
    if opts.split_by == "patch":
        return split_per_class(index["label"].to_numpy(), opts.train_fraction, opts.seed)
    return split_by_group(index[group_column], opts.train_fraction, opts.seed)


class PscBuilder(Builder):
    """PSC5/PSC15 from a GID download: one part per source image (see the module docstring)."""

    name = "build-psc"
    # not matplotlib: importing it beside the tiling held the GIL against the strip loop and
    # slowed every pair (~0.3 s per build); a chart worker process loads it (large builds) or
    # the previews thread at finalize (small ones)
    finish_imports = ("geopandas", "pyogrio", "rsbench.datasets.previews.psc")

    def __init__(self, gid_root: str | Path, opts: PscOptions | None = None, workers: int = 1,
                 splits: str | Path | None = None):
        self.opts = opts or PscOptions()
        self.opts.validate()
        self.split_file = SplitFile(splits, ("train", "test")) if splits else None
        self.gid_root, self.workers = gid_root, workers
        self._hasher: ThreadPoolExecutor | None = None
        self._checksums: dict[str, list[Future]] = {}
        self._charts: ChartWorker | None = None
        self.pairs = gid.find_pairs(gid_root, self.opts.classes, self.opts.bands)
        self._pixels: dict[str, int] = {}
        for pair in self.pairs:  # header checks before anything is staged
            with _open(pair.image) as img, _open(pair.label) as lab:
                _check_pair(pair, img, lab, self.opts)
                self._pixels[pair.stem] = img.width * img.height

    def params(self) -> dict:
        return {"source": "gid", "gid": os.path.abspath(str(self.gid_root)),
                **asdict(self.opts)}

    def stage(self, writer: DatasetWriter) -> None:
        root = str(Path(self.gid_root))
        todo = [p for p in self.pairs if not writer.part_done(p.stem)]
        if self.workers <= 1 or len(todo) <= 1:  # sequential: hashed beside the tiling
            self._hasher = background_hasher()
            self._checksums = {p.stem: queue_checksums(self._hasher, p, root) for p in todo}
        if sum(self._pixels[p.stem] for p in todo) >= CHART_WORKER_MIN_PIXELS:
            self._charts = start_chart_worker()
        try:
            _run_parts(writer, self.pairs, root, self.opts, self.workers)
        except BaseException:
            self._stop_helpers()
            raise

    def _stop_helpers(self) -> None:
        if self._hasher is not None:
            self._hasher.shutdown(wait=True, cancel_futures=True)
            self._hasher = None
        if self._charts is not None:
            self._charts.close()
            self._charts = None

    def _sources(self, pair: gid.GidPair, info: dict) -> list[dict]:
        """The pair's source descriptions: from its part (parallel builds), this build's
        background hasher, or (a sequential build resumed after its parts) hashed now."""
        if info.get("sources") is not None:
            return info["sources"]
        queued = self._checksums.get(pair.stem)
        if queued is None:
            root = str(Path(self.gid_root))
            return [describe_source(p, root) for p in (pair.image, pair.label)]
        return [f.result() for f in queued]

    def finish(self, writer: DatasetWriter) -> dict:
        try:
            return self._finish(writer)
        finally:
            self._stop_helpers()  # a failed finish leaves no hashing or worker behind

    def _finish(self, writer: DatasetWriter) -> dict:
        from rsbench.datasets.previews.psc import write_psc_previews

        opts = self.opts
        keys = [p.stem for p in self.pairs]
        infos = {p.info["stem"]: p.info for p in writer.parts(keys)}
        index = writer.load_index(keys)
        if len(index) == 0:
            raise InputError(f"no patch of {self.gid_root} passed the majority rule "
                             f"(--min-fraction {opts.min_fraction}, --min-labelled "
                             f"{opts.min_labelled}); check the --classes scheme or loosen "
                             "the rule")
        sample_keys = split_keys(index)
        index["split"] = (self.split_file.assign(sample_keys) if self.split_file
                          else psc_splits(index, opts))
        skipped: Counter = Counter()
        for info in infos.values():
            skipped.update(info["skipped"])
        extra = {
            "report": {
                "windows": int(sum(i["windows"] for i in infos.values())),
                "kept": int(len(index)),
                "skipped": dict(skipped),
                "off_palette_pixels": {s: i["off_palette_pixels"] for s, i in infos.items()},
                "off_palette_top_colours": {s: i["off_palette_top"] for s, i in infos.items()},
                "rule": (f"scene class covers more than {opts.min_fraction:g} of labelled "
                         f"pixels; labelled pixels at least {opts.min_labelled:g} of the patch"),
            },
            "georeference": {s: {"crs": i["crs"], "transform": i["transform"]}
                             for s, i in infos.items() if i["crs"]},
        }

        def sources() -> list[dict]:  # asked for last: the hashing overlaps the finalize
            return [s for p in self.pairs for s in self._sources(p, infos[p.stem])]

        tasks = psc_tasks(opts.classes)
        return writer.finalize(
            index, keys=keys, name=f"psc{opts.classes}", tasks=tasks, sources=sources,
            extra=extra, footprints=footprints_frame(index, infos, opts.classes),
            previews=partial(write_psc_previews, charts=self._charts),
            counts=mask_pixel_counts(index, tasks[1], opts.size),
            split_keys=(sample_keys, index["split"]),
            split_source=self.split_file.describe() if self.split_file else None,
        )


def build_psc(gid_root: str | Path, out: str | Path, opts: PscOptions | None = None,
              workers: int = 1, resume: bool = False, splits: str | Path | None = None) -> dict:
    """Build PSC5/PSC15 from a GID download; returns the manifest. ``splits`` is a split file
    (``splits.csv`` of an earlier build) to reproduce instead of drawing the split."""
    return run_build(PscBuilder(gid_root, opts, workers, splits), out, resume)
