"""Training throughput of ``hsi-mtl`` against its single-task counterparts (HSI paper, Table VII).

All 13 TAIGA outputs (3 categorical, 10 continuous) for the same batches of patches, two ways:
the multitask network in one step per batch, and the 13 single-task ``hsi-mtl`` networks
trained one after another (one step each per batch). Reports patches per second for all 13
outputs, their ratio, parameters and FLOPs per patch (torch.utils.flop_counter). On a GPU it
also times the multitask network with AMP (bf16) + channels-last against fp32.

    python benchmarks/bench_hsi.py                                      # CPU, small shapes
    python benchmarks/bench_hsi.py --bands 110 --patch 45 --width 64 --batch 64 --steps 20  # GPU
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from rsbench.models import build_model
from rsbench.models.base import TaskInfo
from rsbench.reports.taiga_tables import count_flops

TASKS = [TaskInfo("fertility_class", "classification", 4),
         TaskInfo("soil_class", "classification", 2),
         TaskInfo("main_tree_species_class", "classification", 3)] + [
    TaskInfo(n, "regression", 1) for n in (
        "basal_area", "mean_dbh", "stem_density", "mean_height", "percentage_of_pine",
        "percentage_of_spruce", "percentage_of_birch", "woody_biomass", "leaf_area_index",
        "effective_leaf_area_index")]


def make_batch(args, device):
    x = torch.rand(args.batch, args.bands, args.patch, args.patch, device=device)
    y = {t.name: (torch.randint(0, t.num_outputs, (args.batch,), device=device)
                  if t.type == "classification" else torch.rand(args.batch, device=device))
         for t in TASKS}
    return x, y


def loss_of(task: TaskInfo, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task.type == "classification":
        return F.cross_entropy(out.float(), y)
    return F.l1_loss(out.float(), y)


def trainer(model, tasks, x, y, amp: bool):
    """One Adam training step of ``model`` on ``tasks`` of batch (x, y)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    names = [t.name for t in tasks]
    ctx = (lambda: torch.autocast(x.device.type, dtype=torch.bfloat16)) if amp \
        else contextlib.nullcontext

    def step():
        opt.zero_grad(set_to_none=True)
        with ctx():
            out = model(x, names)
        sum(loss_of(t, out[t.name], y[t.name]) for t in tasks
                             ).backward()
        opt.step()
    return step


def timed(steps_fns, n: int, warmup: int, device) -> float:
    """Seconds for ``n`` rounds of calling every step function once (after warm-up)."""
    for _ in range(warmup):
        for fn in steps_fns:
            fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        for fn in steps_fns:
            fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bands", type=int, default=32)
    ap.add_argument("--patch", type=int, default=15)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(0)
    x, y = make_batch(args, device)
    opts = {"in_channels": args.bands, "width": args.width}
    multi = build_model("hsi-mtl", TASKS, **opts).to(device)
    single = build_model("hsi-single-task", TASKS, split="variable", **opts).to(device)
    one = torch.zeros(1, args.bands, args.patch, args.patch, device=device)
    flops_m, flops_s = count_flops(multi, one), count_flops(single, one)
    params_m = sum(p.numel() for p in multi.parameters())
    params_s = sum(p.numel() for p in single.parameters())
    multi.train()
    single.train()
    t_multi = timed([trainer(multi, TASKS, x, y, False)], args.steps, args.warmup, device)
    fns = [trainer(single.nets[t.name], [t], x, y, False) for t in TASKS]
    t_single = timed(fns, args.steps, args.warmup, device)
    n = args.steps * args.batch
    print(f"device {device}, {args.bands} bands, {args.patch}x{args.patch} patches, width "
          f"{args.width}, batch {args.batch}, {args.steps} timed steps")
    print("| model | params (M) | GFLOPs / patch | patches/s (all 13 outputs) | vs single-task |")
    print("|---|---:|---:|---:|---:|")
    print(f"| hsi-single-task (13 nets, one after another) | {params_s / 1e6:.3f} | "
          f"{flops_s / 1e9:.4f} | {n / t_single:.1f} | 1.00 |")
    print(f"| hsi-mtl | {params_m / 1e6:.3f} | {flops_m / 1e9:.4f} | {n / t_multi:.1f} | "
          f"{t_single / t_multi:.2f} |")
    if device.type == "cuda":
        amp_model = build_model("hsi-mtl", TASKS, **opts).to(device).to(
            memory_format=torch.channels_last)
        xa = x.contiguous(memory_format=torch.channels_last)
        t_amp = timed([trainer(amp_model, TASKS, xa, y, True)], args.steps, args.warmup,
                      device)
        print(f"| hsi-mtl, AMP bf16 + channels-last | {params_m / 1e6:.3f} | "
              f"{flops_m / 1e9:.4f} | {n / t_amp:.1f} | {t_single / t_amp:.2f} |")
        print(f"AMP + channels-last vs fp32 (hsi-mtl): {t_multi / t_amp:.2f}x")


if __name__ == "__main__":
    main()
