"""The training half of `make demo`: MTLN and two baselines on small synthetic MSC and PSC data.

The paper trains on 224-pixel inputs with VGG-16/ResNet-34/WRN-28-4 on a GPU; on a CPU that
takes seconds to minutes per step, so the demo builds small-pixel versions of mini-MSC and PSC15,
trains at that size (``--input-size 0`` skips the resize to 224) and caps the steps per epoch.
The commands are the real ones; only sizes, batches and epochs are small.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

MODELS = ("mtln", "single-task", "shared-specific")
SIZE = "64"
# Native size, small batches and few steps: a couple of CPU minutes for all six runs.
FAST = ("--input-size", "0", "--epochs", "2", "--max-train-batches", "4", "--workers", "0")


def run_training_demo(out: Path, step: Callable, quiet: list[str]) -> None:
    """Synthetic scenes → mini-MSC, small PSC15, train three methods on each, print tables."""
    scenes = out / "scenes"
    for name in ("merced", "aid", "nwpu"):
        step(f"4. Synthetic {name} scene dataset in its real layout", *quiet, "synth", "scenes",
             "--dataset", name, "--out", str(scenes / name), "--per-class", "12",
             done=scenes / name)
    step("5. Build mini-MSC (12 shared classes per task, 64 px for the CPU demo)", *quiet,
         "build-msc", "--merced", str(scenes / "merced"), "--aid", str(scenes / "aid"),
         "--nwpu", str(scenes / "nwpu"), "--mini", "--per-class", "12", "--size", SIZE,
         "--out", str(out / "mini-msc"), done=out / "mini-msc" / "dataset.json")
    step("6a. A smaller synthetic GID for the CPU training demo", *quiet, "synth", "gid",
         "--out", str(out / "gid-small"), "--classes", "15", "--images", "4", "--size",
         "640x640", "--seed", "1", done=out / "gid-small" / "Fine Land-cover Classification_15classes")
    step("6b. Build a 64-px PSC15 from it", *quiet, "build-psc", "--gid", str(out / "gid-small"),
         "--classes", "15", "--size", SIZE, "--out", str(out / "psc15-64"),
         done=out / "psc15-64" / "dataset.json")
    runs = out / "runs"
    for model in MODELS:
        step(f"7. Train {model} on mini-MSC", *quiet, "run", "mini-msc", "--model", model,
             "--data", str(out / "mini-msc"), *FAST, "--batch-size", "8", "--out", str(runs),
             done=runs / "mini-msc" / model / "0" / "metrics.json")
        step(f"8. Train {model} on PSC15", *quiet, "run", "psc15", "--model", model, "--data",
             str(out / "psc15-64"), *FAST, "--out", str(runs),
             done=runs / "psc15" / model / "0" / "metrics.json")
    print("\nThe figures below come from a few CPU steps on tiny synthetic data: they show the "
          "tables' shape, not the methods' merit. The paper's settings are each benchmark's "
          "defaults (rsbench run BENCHMARK --model NAME --data DIR).", flush=True)
    for table in ("mini-msc", "psc15"):
        step(f"9. Report: {table} table", "report", str(runs), "--table", table, "--format",
             "markdown")
