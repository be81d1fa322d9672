"""`make demo`: the main jobs on small built-in synthetic data, as a new user would run them.

Every step is the real CLI command (printed before it runs), so the demo doubles as a tour.
Steps that already finished in an earlier demo run are skipped, so a second run is quick.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from rsbench.cli.main import main as rsbench


def step(title: str, *args: str, done: Path | None = None) -> None:
    """Run one `rsbench` command, unless ``done`` shows it already finished."""
    print(f"\n=== {title}\n$ rsbench {shlex.join(args)}", flush=True)
    if done is not None and done.exists():
        print(f"(already done: {done} exists)")
        return
    t0 = time.perf_counter()
    code = rsbench(list(args))
    if code != 0:
        sys.exit(code)
    print(f"({time.perf_counter() - t0:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo"))
    ap.add_argument("--no-training", action="store_true",
                    help="Stop after the dataset builders (skip training MTLN and two "
                         "baselines and the report tables).")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    q = ["--quiet"] if not sys.stderr.isatty() else []

    # Issue 2: synthetic GID → PSC15 with class table and previews.
    step("1. Synthetic GID (15-class scheme) in the real on-disk layout", *q, "synth", "gid",
         "--out", str(out / "gid"), "--classes", "15", "--images", "8", "--size", "1344x1344",
         done=out / "gid" / "Fine Land-cover Classification_15classes")
    step("2. Build PSC15: 224x224 patches, majority-pixel scene labels, masks", *q,
         "build-psc", "--gid", str(out / "gid"), "--classes", "15", "--out", str(out / "psc15"),
         "--workers", "2", done=out / "psc15" / "dataset.json")
    step("3. Summarise the built dataset", "info", str(out / "psc15"))
    print(f"\npreview PNGs: {out / 'psc15' / 'preview'}")
    if args.no_training:
        return
    from rsbench.cli.demo_training import run_training_demo

    run_training_demo(out, step, q)


if __name__ == "__main__":
    main()
