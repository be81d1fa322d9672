"""Benchmark `rsbench build-psc` against the I/O floor, in the same run.

The floor is a fresh Python process that reads the same image and label files once with
rasterio (strip by strip), with GDAL's defaults; a second floor reads them through GDAL's
memory-mapped GeoTIFF path (``GTIFF_VIRTUAL_MEM_IO``), the reads build-psc itself makes. The build runs as the real CLI command in its own process; peak
memory (max RSS) of each process comes from ``os.wait4``.

    python benchmarks/bench_build_psc.py                      # 4 pairs of 7200x6800 (GID size)
    python benchmarks/bench_build_psc.py --repeat 5 --keep /tmp/gid   # keep the synthetic GID
    python benchmarks/bench_build_psc.py --images 2 --size 3600x3400 --workers 1 2
    python benchmarks/bench_build_psc.py --keep /tmp/gid --repeat 5 --workers 1 --before /tmp/old
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from childproc import timed  # benchmarks/ helper (the script folder is on sys.path)

FLOOR = """
import sys, rasterio
from rasterio.windows import Window
for path in sys.argv[1:]:
    with rasterio.open(path) as ds:
        for r0 in range(0, ds.height, 224):
            ds.read(window=Window(0, r0, ds.width, min(224, ds.height - r0)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--size", default="7200x6800")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    ap.add_argument("--keep", type=Path, default=None, help="Reuse/keep synthetic GID here.")
    ap.add_argument("--repeat", type=int, default=3,
                    help="Rounds; each round runs the floor and every build once, interleaved, "
                         "and the best and the median of each are reported (the same treatment "
                         "for both, so the ratio is fair).")
    ap.add_argument("--before", type=Path, nargs="+", default=[],
                    help="Another rsbench checkout (its root folder) to build with too, in the "
                         "same rounds: before/after figures from one session.")
    args = ap.parse_args()
    rows, cols = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench-psc-"))
    gid_root = (args.keep or work / "gid").resolve()
    # each build runs in its own checkout's root: `python -m rsbench` imports the rsbench of its
    # working folder first, so a --before build run from here would build with this checkout
    trees = {"this checkout": Path(__file__).resolve().parent.parent}
    trees = {**{f"before ({b})": b.resolve() for b in args.before}, **trees}
    try:
        if not (gid_root / "Large-scale Classification_5classes").exists():
            from rsbench.datasets.synth.gid import synth_gid

            print(f"writing {args.images} synthetic GID pairs of {rows}x{cols} ...")
            synth_gid(gid_root, classes=5, images=args.images, size=(rows, cols), seed=0)
        scheme = gid_root / "Large-scale Classification_5classes"
        files = sorted(map(str, (scheme / "image_RGB").glob("*.tif"))) + sorted(
            map(str, (scheme / "label_5classes").glob("*.tif")))
        size_mb = sum(os.path.getsize(f) for f in files) / 2**20
        floor_cmd = [sys.executable, "-c", FLOOR, *files]
        timed(floor_cmd)  # warm the page cache so floor and build both read from memory
        # the same reads through GDAL's memory-mapped GeoTIFF path, which build-psc uses
        mapped_env = dict(os.environ, GTIFF_VIRTUAL_MEM_IO="IF_ENOUGH_RAM")
        floors: list[tuple[float, float]] = []
        mapped: list[tuple[float, float]] = []
        builds: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for _ in range(args.repeat):
            floors.append(timed(floor_cmd))
            mapped.append(timed(floor_cmd, env=mapped_env))
            for label, tree in trees.items():
                env = dict(os.environ, PYTHONPATH=str(tree))
                for w in args.workers:
                    out = work / f"psc-w{w}"
                    builds.setdefault((label, w), []).append(timed(
                        [sys.executable, "-m", "rsbench", "--quiet", "build-psc", "--gid",
                         str(gid_root), "--classes", "5", "--out", str(out), "--workers",
                         str(w)], env=env, cwd=tree))
                    shutil.rmtree(out)
        floor, floor_med = min(f for f, _ in floors), statistics.median(f for f, _ in floors)
        floor_rss = max(r for _, r in floors)
        print(f"machine: {os.cpu_count()} CPU cores; data: {len(files)} files, {size_mb:.0f} MB")
        print(f"I/O floor (read every file once, strips): best {floor:.2f} s, median "
              f"{floor_med:.2f} s of {args.repeat}, peak {floor_rss:.0f} MB")
        mapped_best = min(t for t, _ in mapped)
        print(f"the same reads memory-mapped (GTIFF_VIRTUAL_MEM_IO): best {mapped_best:.2f} s, "
              f"median {statistics.median(t for t, _ in mapped):.2f} s")
        for (label, w), runs in builds.items():
            wall, med = min(t for t, _ in runs), statistics.median(t for t, _ in runs)
            rss = max(r for _, r in runs)
            print(f"{label}: build-psc --workers {w}: best {wall:.2f} s = {wall / floor:.2f}x "
                  f"floor (median {med:.2f} s = {med / floor_med:.2f}x the median floor), "
                  f"peak {rss:.0f} MB (per process); {wall / mapped_best:.2f}x the "
                  "memory-mapped floor")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
