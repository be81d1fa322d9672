"""`rsbench reproduce --jobs`: how much two runs at once overlap and gain against the serial
command, on a tiny synthetic mini-MSC, in one run of this script.

Runs `rsbench reproduce mini-msc` three times as subprocesses, each into its own runs folder:
serial at 1 thread (the baseline), `--jobs 2 --threads-per-run 1`, and serial at every core;
prints wall times, the ratio against the baseline, the overlap of the parallel runs (seconds
during which two ran at once, from the launch ledger's start/end times, over the launch's
wall time), and whether each launch's metrics equal the baseline's bit for bit.

    python benchmarks/bench_launch.py [--epochs 2] [--size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def metrics(out: Path) -> dict:
    return {json.loads(m.read_text())["method"]: json.loads(m.read_text())["tasks"]
            for m in out.rglob("metrics.json")}


def overlap_seconds(out: Path) -> float:
    """Seconds during which at least two runs of the launch were running."""
    from rsbench.launch import ledger

    events = []
    for rec in ledger.all_records(out):
        if rec.get("started") and rec.get("ended"):
            events += [(rec["started"], 1), (rec["ended"], -1)]
    total, running, last = 0.0, 0, None
    for t, step in sorted(events):
        if running >= 2 and last is not None:
            total += t - last
        running += step
        last = t
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--per-class", type=int, default=10)
    args = ap.parse_args()
    import training_fixtures as tf

    tmp = Path(tempfile.mkdtemp(prefix="bench-launch-"))
    data = tf.write_msc(tmp / "mini-msc", per_class=args.per_class, size=args.size)
    common = ["mini-msc", "--data", str(data), "--epochs", str(args.epochs), "--batch-size",
              "4", "--input-size", "0", "--workers", "0", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RSBENCH_QUIET": "1"}
    cores = len(os.sched_getaffinity(0))
    variants = [("serial, 1 thread", {"OMP_NUM_THREADS": "1"}, []),
                ("--jobs 2 --threads-per-run 1", {}, ["--jobs", "2", "--threads-per-run", "1"]),
                (f"serial, {cores} threads", {"OMP_NUM_THREADS": str(cores)}, [])]
    rows, base = [], None
    for i, (name, extra_env, extra) in enumerate(variants):
        out = tmp / f"runs{i}"
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "rsbench", "-q", "reproduce", *common,
                            "--out", str(out), *extra], env={**env, **extra_env},
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"{name} failed: {p.stderr[-2000:]}")
        m = metrics(out)
        base = base or (wall, m)
        rows.append((name, wall, base[0] / wall, overlap_seconds(out) / wall if extra else 0.0,
                     m == base[1], len(m)))
    load = os.getloadavg()[0]
    print(f"machine: {cores} cores, load average {load:.1f}; {args.epochs} epochs, "
          f"{args.size}-px images, {rows[0][5]} runs")
    print("| launch | wall s | speed vs serial 1 thread | share of wall time with 2 runs at "
          "once | metrics bit-identical to serial 1 thread |")
    print("|---|---:|---:|---:|---|")
    for name, wall, ratio, ov, same, _ in rows:
        print(f"| {name} | {wall:.1f} | {ratio:.2f}x | {ov:.0%} | {'yes' if same else 'no'} |")


if __name__ == "__main__":
    main()
