"""Images/s the training loader delivers, against reading the same samples in a plain loop.

For an MSC-shaped dataset (3 tasks of 224×224×3 uint8 scenes) and a TAIGA-shaped one (45×45
windows of a 110-band int16 cube, per-pixel label windows), both built with the project's own
``rsbench synth`` + ``build-msc`` / ``build-taiga`` commands, this measures in one run:

1. the floor: the batches of the runner's own sampler plan read straight from the
   memory-mapped arrays in a plain loop in this process (image and every target the reader
   returns: one fancy-indexed read per array for sample layouts, one slice per window for the
   raster layout), no DataLoader, no worker;
2. the training loader exactly as ``rsbench run`` builds it (``Run(...)._train_loaders()``: the
   benchmark's batch reader, sampler, ``make_loader``) at 1, 2, ... workers, its batches
   consumed on the CPU (no model).

Goal: loader with W workers >= 0.8 × W × floor while W is at most the free cores.

    python benchmarks/bench_loader.py --workers 1 2 --keep /tmp/loader-data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from rsbench.cli.main import main as rsbench_main
from rsbench.datasets.format.reader import open_dataset
from rsbench.training.config import load_benchmark
from rsbench.training.data import plan_epoch
from rsbench.training.loop import epoch_batches
from rsbench.training.runner import Run, RunRequest

# (benchmark, model the Run is named for, overrides): what each dataset is read for
SHAPES = {"msc": ("mini-msc", "mtln", {"batch_size": 32}),
          "taiga": ("taiga", "hsi-mtl", {"batch_size": 64})}


def build_msc(root: Path, per_class: int) -> Path:
    """mini-MSC at 224 px from synthetic UC Merced / AID / NWPU folders (real layouts)."""
    out = root / "msc"
    if not (out / "dataset.json").exists():
        src = root / "scenes"
        for d in ("merced", "aid", "nwpu"):
            _cli("synth", "scenes", "--dataset", d, "--out", str(src),
                 "--per-class", str(per_class), "--size", "256x256")
        _cli("build-msc", "--merced", str(src / "UCMerced_LandUse"), "--aid", str(src / "AID"),
             "--nwpu", str(src / "NWPU-RESISC45"), "--mini", "--per-class", str(per_class),
             "--out", str(out))
    return out


def build_taiga(root: Path, side: int) -> Path:
    """TAIGA windows (45 px, stride 13, bands 0:110) from a synthetic ENVI cube."""
    out = root / "taiga"
    if not (out / "dataset.json").exists():
        _cli("synth", "taiga", "--out", str(root / "taiga-src"), "--size", f"{side}x{side}",
             "--stands", "16")
        _cli("build-taiga", "--taiga", str(root / "taiga-src"), "--out", str(out))
    return out


def _cli(*args: str) -> None:
    code = rsbench_main(["-q", *args])
    if code:
        raise SystemExit(f"rsbench {' '.join(args)} failed ({code})")


def runner_loaders(shape: str, data: Path, workers: int, out: Path, device: str = "cpu",
                   overrides: dict | None = None):
    """The training samplers and loaders of ``rsbench run`` for this dataset (and the Run)."""
    bench, model, settings = SHAPES[shape]
    cfg = load_benchmark(bench, {**settings, **(overrides or {})})
    run = Run(cfg, RunRequest(model=model, data=str(data), out=str(out), device=device,
                              workers=workers))
    samplers, loaders = run._train_loaders()
    return run, samplers, loaders


def _plan(run: Run, samplers, epoch: int, steps: int):
    """The runner's per-task plan of ``epoch``, ``steps`` long: the small synthetic sets are
    cycled (fresh shuffle per pass, as the runner cycles smaller tasks) so that each timed
    epoch has many steps, as a real one has (MSC: 787)."""
    plan_epoch(samplers, "per-task", seed=0, epoch=epoch)
    for s in samplers:
        s.set_epoch(epoch, steps)
    return [tuple(range(len(samplers)))] * steps


def floor_rate(run: Run, samplers, steps: int, epochs: int) -> float:
    """Images/s of reading the plan's batches from the memory-mapped arrays in a plain loop."""
    ds = open_dataset(run.req.data)
    readers = [_plain_reader(ds, g.tasks) for g in run.groups]
    n, secs = 0, 0.0
    for epoch in range(epochs + 1):
        plan = _plan(run, samplers, epoch, steps)
        iters = [iter(s) for s in samplers]
        t0, k = time.perf_counter(), 0
        for groups in plan:
            for g in groups:
                k += len(readers[g](np.sort(next(iters[g]))))
        if epoch:  # epoch 0 warms the page cache, as the loader's warms its workers
            n, secs = n + k, secs + time.perf_counter() - t0
    return n / secs


def _plain_reader(ds, tasks):
    """rows -> the image batch, after reading every array/column the training reader reads."""
    arrays = ds.manifest["arrays"]
    img = ds.array("image")
    targets = []
    for t in tasks:
        spec = ds.task(t)
        name = spec.get("raster") or (spec["target"] if spec["type"] == "segmentation" else None)
        if name and name not in targets:
            targets.append(name)
    columns = [ds.index[ds.task(t)["target"]].to_numpy() for t in tasks
               if ds.task(t)["type"] != "segmentation" and not ds.task(t).get("raster")]
    win = None
    if arrays["image"].get("layout") == "raster":
        win = ds.index[arrays["image"]["window_columns"]].to_numpy(np.int64)

    def read(rows: np.ndarray) -> np.ndarray:
        if win is None:
            out = np.ascontiguousarray(img[rows])
            for name in targets:
                np.ascontiguousarray(ds.array(name)[rows])
        else:
            out = _windows(img, win[rows])
            for name in targets:
                _windows(ds.array(name), win[rows])
        for c in columns:
            c[rows]
        return out
    return read


def _windows(arr: np.ndarray, win: np.ndarray) -> np.ndarray:
    h, w = int(win[0, 2]), int(win[0, 3])
    out = np.empty((len(win), h, w, *arr.shape[2:]), arr.dtype)
    for i, (r, c, _, _) in enumerate(win):
        out[i] = arr[r:r + h, c:c + w]
    return out


def loader_rate(run: Run, samplers, loaders, steps: int, epochs: int, prep=None) -> float:
    """Images/s the runner's loaders deliver (the first epoch, which starts the workers, and
    warms the page cache, is not timed); with ``prep``, each batch also goes through the
    runner's on-device preparation (``gpu_check.py``)."""
    import torch

    n, secs = 0, 0.0
    for epoch in range(epochs + 1):
        plan = _plan(run, samplers, epoch, steps)
        t0, k = time.perf_counter(), 0
        for _, batches in epoch_batches(loaders, plan):
            k += sum(int(b["image"].shape[0]) for b in batches)
            if prep is not None:
                for b in batches:
                    prep(b, train=True)
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        if epoch:
            n, secs = n + k, secs + time.perf_counter() - t0
    return n / secs


def measure(shape: str, data: Path, workers: list[int], steps: int, epochs: int,
            repeat: int, out: Path) -> dict:
    """Floor and loader rates (best of ``repeat``, interleaved) for one dataset."""
    run, samplers, _ = runner_loaders(shape, data, 0, out)
    res: dict = {"dataset": shape, "benchmark": run.cfg["benchmark"],
                 "batch_size": int(run.cfg["batch_size"]), "groups": len(run.groups),
                 "steps_per_epoch": steps, "timed_epochs": epochs}
    floors, rates = [], {w: [] for w in workers}
    for _ in range(repeat):
        floors.append(floor_rate(run, samplers, steps, epochs))
        for w in workers:
            r, s, ld = runner_loaders(shape, data, w, out)
            rates[w].append(loader_rate(r, s, ld, steps, epochs))
            del ld
    floor = max(floors)
    res["floor_images_per_s"] = round(floor, 1)
    for w in workers:
        best = max(rates[w])
        res[f"loader_{w}w_images_per_s"] = round(best, 1)
        res[f"loader_{w}w_vs_floor"] = round(best / floor, 2)
        res[f"loader_{w}w_vs_floor_per_worker"] = round(best / floor / w, 2)
    return res


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.machine()} {os.cpu_count()} CPUs (affinity "
            f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}), "
            f"load average {load:.1f} at start")


def markdown(results: list[dict], workers: list[int], where: str) -> str:
    head = "| dataset | batch | floor images/s | " + " | ".join(
        f"{w} worker{'s' if w > 1 else ''}: images/s (× floor)" for w in workers) + " |"
    lines = [f"Machine: {where}.", "", head, "|---|---:|---:|" + "---:|" * len(workers)]
    for r in results:
        cells = [f"{r[f'loader_{w}w_images_per_s']} ({r[f'loader_{w}w_vs_floor']})"
                 for w in workers]
        lines.append(f"| {r['dataset']} | {r['batch_size']} × {r['groups']} group(s) | "
                     f"{r['floor_images_per_s']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--datasets", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    ap.add_argument("--steps", type=int, default=40, help="Steps per timed epoch.")
    ap.add_argument("--epochs", type=int, default=2, help="Timed epochs (after one warm-up).")
    ap.add_argument("--repeat", type=int, default=3, help="Interleaved repeats; best is kept.")
    ap.add_argument("--per-class", type=int, default=12, help="mini-MSC images per class.")
    ap.add_argument("--taiga-side", type=int, default=320, help="Synthetic TAIGA cube side.")
    ap.add_argument("--keep", type=Path, default=None,
                    help="Build the datasets here (reused when present) instead of a temp dir.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="rsbench-loader-"))
    root.mkdir(parents=True, exist_ok=True)
    where = machine()
    try:
        data = {"msc": lambda: build_msc(root, args.per_class),
                "taiga": lambda: build_taiga(root, args.taiga_side)}
        results = []
        for shape in args.datasets:
            path = data[shape]()
            results.append(measure(shape, path, args.workers, args.steps, args.epochs,
                                   args.repeat, root / "runs"))
            print(json.dumps(results[-1]), flush=True)
        print(markdown(results, args.workers, where))
        if args.json:
            args.json.write_text(json.dumps({"machine": where, "results": results}, indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
