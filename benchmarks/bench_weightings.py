"""Training-step time of every task weighting, relative to ``equal`` on the same model and
batches, measured in one run; the gradient weightings also in their shared-representation mode
(``rep_grad``), against their all-parameter mode.

One step = one batch per task through ``model(x_task, [task])`` (MSC-shaped, as the runner
does), the weighting's backward, an Adam step. Every configuration starts from the same
weights; configurations are timed in interleaved rounds and the median per step is reported.
On the CPU the clock is the process's CPU time (``time.process_time``, with one torch thread
by default), which other processes on a shared machine do not inflate; on a GPU, wall time.

    python benchmarks/bench_weightings.py                       # CPU: wrn28_4, 64 px, batch 8
    python benchmarks/bench_weightings.py --device cuda --backbone resnet34 --size 224 --batch 32
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from rsbench.models import build_model
from rsbench.models.base import TaskInfo
from rsbench.training.weighting import WEIGHTINGS, GradientWeighting, build_weighting

TASKS = [TaskInfo("merced", "classification", 21), TaskInfo("aid", "classification", 30),
         TaskInfo("nwpu", "classification", 45)]


class Config:
    """One (weighting, mode): its own model (same initial weights), weighting and optimiser."""

    def __init__(self, name: str, rep: bool, args, device: torch.device, init: dict):
        self.label = name + (" (rep_grad)" if rep else "")
        self.name, self.rep = name, rep
        self.model = build_model(args.model, TASKS, backbone=args.backbone).to(device)
        self.model.load_state_dict(init)
        opts = {"rep_grad": True} if rep else {}
        self.weighting = build_weighting(name, [t.name for t in TASKS],
                                         {t.name: t.type for t in TASKS}, **opts).to(device)
        self.weighting.reseed(0)
        self.shared = self.weighting.select_shared(self.model)
        self.opt = torch.optim.Adam(list(self.model.parameters())
                                    + list(self.weighting.parameters()), lr=1e-4)
        self.scaler = torch.amp.GradScaler(device.type, enabled=False)
        self.times: list[float] = []

    def step(self, batches) -> None:
        self.opt.zero_grad(set_to_none=True)
        losses = {t: F.cross_entropy(self.model(x, [t])[t].float(), y)
                  for t, (x, y) in batches.items()}
        self.weighting.backward(losses, self.shared, self.scaler)
        self.opt.step()


def configs_to_run(args) -> list[tuple[str, bool]]:
    names = args.weightings or sorted(WEIGHTINGS)
    out = [("equal", False)] + [(n, False) for n in names if n != "equal"]
    for n in names:
        cls = WEIGHTINGS[n]
        if issubclass(cls, GradientWeighting) and cls.rep_grad_supported:
            out.append((n, True))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="shared-specific")
    p.add_argument("--backbone", default="wrn28_4")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--weightings", nargs="*", help="default: every registered weighting")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    init = build_model(args.model, TASKS, backbone=args.backbone).state_dict()
    gen = torch.Generator().manual_seed(1)
    batches = {t.name: (torch.randn(args.batch, 3, args.size, args.size, generator=gen)
                        .to(device),
                        torch.randint(0, t.num_outputs, (args.batch,), generator=gen).to(device))
               for t in TASKS}
    configs = [Config(n, rep, args, device, init) for n, rep in configs_to_run(args)]
    for c in configs:  # warm-up (and the stateful methods' first step)
        c.step(batches)
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    for _ in range(args.rounds):
        for c in configs:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = clock()
            for _ in range(args.steps):
                c.step(batches)
            if device.type == "cuda":
                torch.cuda.synchronize()
            c.times.append((clock() - start) / args.steps)
    base = statistics.median(configs[0].times)
    param = {c.name: statistics.median(c.times) for c in configs if not c.rep}
    print(f"{args.model} ({args.backbone}), {len(TASKS)} tasks x batch {args.batch} at "
          f"{args.size} px, {device}, {torch.get_num_threads()} threads, "
          f"{'wall' if device.type == 'cuda' else 'CPU'} time, median of {args.rounds} rounds "
          f"x {args.steps} steps")
    print(f"{'weighting':<26} {'s/step':>8} {'x equal':>8} {'x param mode':>13}")
    for c in configs:
        t = statistics.median(c.times)
        rel = f"{t / param[c.name]:.2f}" if c.rep else ""
        print(f"{c.label:<26} {t:8.3f} {t / base:8.2f} {rel:>13}")


if __name__ == "__main__":
    main()
