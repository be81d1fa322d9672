"""Training throughput of `rsbench run` against a minimal hand-written PyTorch loop, in one run.

Measures, on the same synthetic MSC-shaped dataset and the same registered model:
1. samples/s of the runner (its second epoch, after warm-up),
2. samples/s of a bare loop over in-memory uint8 tensors (best case: no I/O, no checkpoint,
   no metrics), same steps, same losses, same optimiser — target: runner >= 0.9 of it,
3. samples/s of the runner's data pipeline alone (loader + on-device prep, no model) —
   target: >= 3x the training step, so the pipeline never starves the model.

    .venv/bin/python benchmarks/bench_train.py                    # CPU defaults (small)
    .venv/bin/python benchmarks/bench_train.py --device cuda --size 224 --batch 32 \\
        --backbone resnet34 --steps 50 --workers 6                # MSC-shaped, on a GPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rsbench.datasets.format.manifest import TaskSpec
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.models import build_model
from rsbench.training.config import load_benchmark
from rsbench.training.data import DevicePrep, EpochBatches, make_loader, make_reader
from rsbench.training.runner import RunRequest, amp_dtype, run_benchmark, task_infos

TASKS = (("merced", 21), ("aid", 30), ("nwpu", 45))


def write_dataset(out: Path, n_per_task: int, size: int) -> Path:
    """An MSC-shaped dataset (3 tasks, uint8 RGB) with random pixels and labels."""
    rng = np.random.default_rng(0)
    w = DatasetWriter(out, builder="bench", params={})
    specs = []
    for task, ncls in TASKS:
        pw = w.part_writer(task)
        for i in range(n_per_task):
            pw.append({"task": task, "label": int(rng.integers(ncls)),
                       "split": "test" if i % 10 == 0 else "train"},
                      image=rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
        pw.close()
        specs.append(TaskSpec(task, "classification", task, "label",
                              [f"c{k}" for k in range(ncls)]))
    keys = [t for t, _ in TASKS]
    w.finalize(w.load_index(keys), keys=keys, name="mini-msc", tasks=specs, sources=[])
    return out


def hand_loop(data: Path, args, device: torch.device, steps: int) -> float:
    """The minimal loop: tensors already in memory, one batch per task per step."""
    from rsbench.datasets.format.reader import open_dataset

    ds = open_dataset(data)
    torch.manual_seed(0)
    model = build_model(args.model, task_infos(ds, [t for t, _ in TASKS]),
                        backbone=args.backbone).to(device)
    cl = device.type == "cuda"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    imgs, labels = {}, {}
    for t, _ in TASKS:
        rows = ds.rows(t, "train")
        imgs[t] = torch.from_numpy(np.ascontiguousarray(ds.array("image")[rows])).to(device)
        labels[t] = torch.from_numpy(ds.index["label"].to_numpy()[rows]).to(device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    dtype = amp_dtype(device, None if not args.no_amp else False)
    model.train()

    def step():
        losses = {}
        for t, _ in TASKS:
            idx = torch.randint(len(imgs[t]), (args.batch,), device=device)
            x = imgs[t][idx].permute(0, 3, 1, 2).float().div(255).sub(mean).div(std)
            x = x.contiguous(memory_format=torch.channels_last) if cl else x.contiguous()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = model(x, tasks=[t])[t]
            losses[t] = F.cross_entropy(out.float(), labels[t][idx])
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * args.batch * len(TASKS) / (time.perf_counter() - t0)


def pipeline_only(data: Path, cfg: dict, args, device: torch.device, steps: int) -> float:
    """The runner's loaders + on-device prep, no model."""
    from rsbench.datasets.format.reader import open_dataset

    ds = open_dataset(data)
    types = {t: "classification" for t, _ in TASKS}
    prep = DevicePrep(cfg, device, types, channels_last=device.type == "cuda")
    loaders, samplers = [], []
    for gi, (t, _) in enumerate(TASKS):
        s = EpochBatches(ds.rows(t, "train"), args.batch, seed=0, group=gi)
        loaders.append(make_loader(make_reader(cfg, data, [t]), s, workers=args.workers,
                                   pin_memory=device.type == "cuda"))
        samplers.append(s)
    gen = torch.Generator(device=device)
    best = 0.0
    for epoch in range(2):  # the first epoch starts the workers
        for s in samplers:
            s.set_epoch(epoch, steps)
        n, t0 = 0, time.perf_counter()
        for batches in zip(*loaders):
            for b in batches:
                x, _ = prep(b, train=True, generator=gen)
                n += x.shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = n / (time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mtln")
    ap.add_argument("--backbone", default="resnet34")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (0: torch's default)")
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device in ("auto", "cuda") and
                          torch.cuda.is_available() else "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="rsbench-bench-"))
    try:
        n = int(args.batch * args.steps / 0.9) + 2
        data = write_dataset(tmp / "data", n, args.size)
        cfg = load_benchmark("mini-msc", {"epochs": 2, "batch_size": args.batch,
                                          "input_size": args.size,
                                          "backbone": args.backbone})
        hand_before = hand_loop(data, args, device, args.steps)
        t0 = time.perf_counter()
        m = run_benchmark(cfg, RunRequest(model=args.model, data=str(data), out=str(tmp / "runs"),
                                          device=args.device, workers=args.workers,
                                          amp=False if args.no_amp else None,
                                          max_train_batches=args.steps))
        wall = time.perf_counter() - t0
        hist = (tmp / "runs/mini-msc" / args.model / "0/history.csv").read_text().splitlines()
        head = hist[0].split(",")
        runner_sps = float(hist[-1].split(",")[head.index("samples_per_s")])
        # the hand loop runs before and after the runner: shared machines drift
        hand_sps = (hand_before + hand_loop(data, args, device, args.steps)) / 2
        pipe_sps = pipeline_only(data, cfg, args, device, args.steps)
        res = {"device": torch.cuda.get_device_name() if device.type == "cuda" else
               f"CPU ({torch.get_num_threads()} threads)", "model": args.model,
               "backbone": args.backbone, "image": args.size, "batch_per_task": args.batch,
               "steps": args.steps, "workers": args.workers, "amp": m["amp"],
               "runner_samples_per_s": round(runner_sps, 1),
               "hand_loop_samples_per_s": round(hand_sps, 1),
               "runner_vs_hand": round(runner_sps / hand_sps, 3),
               "pipeline_samples_per_s": round(pipe_sps, 1),
               "pipeline_vs_train_step": round(pipe_sps / runner_sps, 1),
               "runner_wall_s_2_epochs_incl_eval": round(wall, 1)}
        print(json.dumps(res, indent=2))
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
