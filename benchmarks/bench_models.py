"""Training-step throughput of the MTLN-paper models and LibMTL's architectures (mtan, mmoe, cgc,
ple, dselect-k, ltb) on MSC-shaped batches.

One step = one batch per task through ``model(x_task, [task])`` (as the runner does for MSC),
summed losses, backward, Adam step. Reported as images per second and as a ratio against
``shared-specific`` (one backbone pass per task batch, the cheapest design) measured in the
same run. On a GPU it also compares AMP (bf16) + channels-last against fp32 for the MTLN.

    python benchmarks/bench_models.py                 # CPU: 64x64 inputs, batch 4
    python benchmarks/bench_models.py --size 224 --batch 32 --steps 20   # GPU, paper shapes
    python benchmarks/bench_models.py --flops --size 224    # forward GFLOPs of one step instead

``--flops`` counts the forward FLOPs of one step per image (multiply-add = 2 FLOPs,
``torch.utils.flop_counter``, models and inputs on the meta device): a cost that does not depend
on the machine or its load.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from rsbench.models import build_model
from rsbench.models.paper_params import BENCHMARKS, SCENE_MODELS, SCENE_ONLY_MODELS, other_models


def images_per_second(model_name: str, args, device: torch.device, amp: bool = False,
                      channels_last: bool = False) -> float:
    spec = BENCHMARKS[args.benchmark]
    name = "single-task" if model_name == "fine-tune" else model_name  # same network
    torch.manual_seed(0)
    model = build_model(name, list(spec.tasks), backbone=spec.backbone).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    batches = {t.name: (torch.randn(args.batch, 3, args.size, args.size, device=device)
                        .contiguous(memory_format=fmt),
                        torch.randint(0, t.num_outputs, (args.batch,), device=device))
               for t in spec.tasks}
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if amp
                else contextlib.nullcontext())

    def step():
        opt.zero_grad(set_to_none=True)
        losses = {}
        with autocast:
            for task, (x, y) in batches.items():
                losses[task] = F.cross_entropy(model(x, [task])[task].float(), y)
        sum(losses.values()).backward()  # equal weighting
        opt.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch * len(batches) / (time.perf_counter() - start)


def step_gflops(model_name: str, args) -> float:
    """Forward GFLOPs per image of one training step (every task's batch through its call)."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = BENCHMARKS[args.benchmark]
    name = "single-task" if model_name == "fine-tune" else model_name
    with torch.device("meta"):
        model = build_model(name, list(spec.tasks), backbone=spec.backbone).train()
        x = torch.zeros(1, 3, args.size, args.size)
        if hasattr(model, "set_epoch"):
            model.set_epoch(1)  # ltb: branching (costs the same as its warm-up)
        with FlopCounterMode(display=False) as counter:
            for t in spec.tasks:
                model(x, [t.name])
    return counter.get_total_flops() / len(spec.tasks) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="msc", choices=["msc", "mini-msc"])
    parser.add_argument("--size", type=int, default=None, help="input size (CPU 64, GPU 224)")
    parser.add_argument("--batch", type=int, default=None, help="per task (CPU 4, GPU 32)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--flops", action="store_true", help="count forward FLOPs instead")
    parser.add_argument("--models", nargs="+", default=None, help="only these (default: all)")
    args = parser.parse_args()
    names = [n for n in SCENE_MODELS + other_models(SCENE_MODELS + SCENE_ONLY_MODELS)
             if n != "fine-tune" and (args.models is None or n in args.models)]
    if args.flops:
        args.size = args.size or 224
        base = step_gflops("shared-specific", args)
        print(f"{args.benchmark} ({BENCHMARKS[args.benchmark].backbone}), {args.size}x"
              f"{args.size}: forward GFLOPs per image of a training step")
        print("| model | GFLOPs / image | vs shared-specific |\n|---|---:|---:|")
        for name in names:
            g = step_gflops(name, args)
            print(f"| {name} | {g:.2f} | {g / base:.2f} |")
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.size = args.size or (224 if device.type == "cuda" else 64)
    args.batch = args.batch or (32 if device.type == "cuda" else 4)
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"{args.benchmark} ({BENCHMARKS[args.benchmark].backbone}), {args.size}x{args.size}, "
          f"batch {args.batch} per task, {args.steps} timed steps, {where}")
    base = images_per_second("shared-specific", args, device)
    print("| model | images/s | vs shared-specific |\n|---|---:|---:|")
    for name in names:
        ips = base if name == "shared-specific" else images_per_second(name, args, device)
        print(f"| {name} | {ips:.1f} | {ips / base:.2f} |")
    if device.type == "cuda":
        fp32 = images_per_second("mtln", args, device)
        fast = images_per_second("mtln", args, device, amp=True, channels_last=True)
        print(f"mtln AMP bf16 + channels-last: {fast:.1f} images/s vs fp32 {fp32:.1f} "
              f"({fast / fp32:.2f}x)")


if __name__ == "__main__":
    main()
