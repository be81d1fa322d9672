"""Benchmark `rsbench build-taiga` against the I/O floor, in the same run, plus the reader.

Writes a synthetic TAIGA (default 2800x2800 px x 128 bands int16 = ~2.0 GB cube), then in
separate processes (peak memory = max RSS from ``os.wait4``):
- the floor: read the cube's kept bands (0:110) once, strip by strip, and nothing else;
- the copy floor: the same read plus writing the H x W x B copy the dataset stores;
- the build: the real CLI command ``rsbench build-taiga``.
Finally the reader: patches per second served by ``TaskDataset`` (45x45x110 int16 windows
from the memory-mapped raster, random order) and by raw window slicing.

    python benchmarks/bench_build_taiga.py                    # ~2 GB cube
    python benchmarks/bench_build_taiga.py --size 800x800 --keep /tmp/taiga-small
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from childproc import timed  # benchmarks/ helper (the script folder is on sys.path)

FLOOR = """
import sys
import numpy as np
from rsbench.datasets.sources.envi import EnviRaster
cube = EnviRaster.open(sys.argv[1])
bands = np.arange(int(sys.argv[2]))
step = cube.strip_rows(len(bands), 48 << 20)
total = 0
for r0 in range(0, cube.lines, step):
    x = cube.read_rows(r0, min(cube.lines, r0 + step), bands)
    total += int(x[0, 0, 0])
    if len(sys.argv) > 3:  # copy floor: also write the rows-by-columns-by-bands copy
        with open(sys.argv[3], "ab") as f:
            f.write(memoryview(x).cast("B"))
"""


def reader_speed(path: Path, n: int = 2000) -> tuple[float, float]:
    """Patches/s of TaskDataset (image + 13 targets) and of raw window slicing, random order."""
    import numpy as np
    import torch

    from rsbench.datasets.format.reader import open_dataset
    from rsbench.datasets.torch_dataset import TaskDataset

    torch.set_num_threads(1)
    ds = open_dataset(path)
    data = TaskDataset(ds, "main_tree_species_class", "train")
    order = np.random.default_rng(0).permutation(len(data))[:n]
    t0 = time.perf_counter()
    for i in order:
        data[int(i)]
    td = len(order) / (time.perf_counter() - t0)
    rows = data.rows[order]
    t0 = time.perf_counter()
    for r in rows:
        np.ascontiguousarray(ds.sample_array("image", int(r)))
    raw = len(rows) / (time.perf_counter() - t0)
    return td, raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2800x2800")
    ap.add_argument("--bands", type=int, default=128)
    ap.add_argument("--keep-bands", type=int, default=110)
    ap.add_argument("--stands", type=int, default=400)
    ap.add_argument("--keep", type=Path, default=None, help="Reuse/keep synthetic TAIGA here.")
    args = ap.parse_args()
    rows, cols = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench-taiga-"))
    src = args.keep or work / "taiga"
    rsbench = str(Path(sys.executable).with_name("rsbench"))
    try:
        cube = src / "20170615_reflectance_mosaic_128b"
        if not cube.exists():
            print(f"writing a synthetic TAIGA of {rows}x{cols}x{args.bands} ...", flush=True)
            wall, rss = timed([rsbench, "--quiet", "synth", "taiga", "--out", str(src),
                               "--size", args.size, "--bands", str(args.bands),
                               "--stands", str(args.stands)])
            print(f"  synth: {wall:.1f} s, peak {rss:.0f} MB")
        gb = cube.stat().st_size / 1e9
        floor, floor_rss = timed([sys.executable, "-c", FLOOR, str(cube), str(args.keep_bands)])
        copy, copy_rss = timed([sys.executable, "-c", FLOOR, str(cube), str(args.keep_bands),
                                str(work / "copy.bin")])
        (work / "copy.bin").unlink()
        out = work / "built"
        build, build_rss = timed([rsbench, "--quiet", "build-taiga", "--taiga", str(src),
                                  "--out", str(out), "--bands", f"0:{args.keep_bands}"])
        from rsbench.datasets.format.reader import open_dataset

        ds = open_dataset(out)
        n = ds.manifest["num_samples"]
        td, raw = reader_speed(out)
        print(f"cube {gb:.2f} GB ({rows}x{cols}x{args.bands} int16), {n} windows, "
              f"{os.cpu_count()} CPU cores")
        print(f"| step | wall s | ratio to floor | peak RSS MB |\n|---|---:|---:|---:|\n"
              f"| floor: read bands 0:{args.keep_bands} once | {floor:.1f} | 1.00 | "
              f"{floor_rss:.0f} |\n"
              f"| copy floor: read once + write the HxWxB copy | {copy:.1f} | "
              f"{copy / floor:.2f} | {copy_rss:.0f} |\n"
              f"| build-taiga (survey, cube copy, targets, previews) | {build:.1f} | "
              f"{build / floor:.2f} | {build_rss:.0f} |")
        print(f"reader: TaskDataset {td:.0f} patches/s, raw window slicing {raw:.0f} patches/s "
              f"(45x45x{args.keep_bands} int16, random order, 1 process)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
