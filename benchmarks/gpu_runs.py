"""GPU acceptance check, part 2: `rsbench run` under torchrun with an interruption and
``--resume``, MTLN training throughput in fp32 vs AMP + channels-last (+ torch.compile), and
the input pipeline's rate at several worker counts. Used by ``gpu_check.py``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_train import write_dataset  # noqa: E402  (MSC-shaped, DatasetWriter, no rasterio)

# the entry torchrun starts: `rsbench` itself, that stops dead (as a SIGKILL would) right after
# the N-th epoch's checkpoint when GPUCHECK_STOP_AFTER=N
ENTRY = """
import os, sys
stop = int(os.environ.get("GPUCHECK_STOP_AFTER", "0"))
if stop:
    from rsbench.training import checkpoint as ck
    real, saved = ck.save_checkpoint, [0]
    def save(path, payload):
        real(path, payload)
        saved[0] += 1
        if saved[0] >= stop:
            os._exit(75)
    ck.save_checkpoint = save
from rsbench.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _run_folder(out: Path) -> Path | None:
    found = sorted(out.glob("*/*/*/0/config.json"))
    return found[0].parent if found else None


def resume_section(device: torch.device, tiny: bool, deadline: float, log) -> dict:
    """`rsbench run` stopped dead after epoch 1 under a 1-process torchrun (NCCL on CUDA, gloo
    on CPU) and continued with --resume, against the same command run through in this
    process: same metrics and weights?"""
    if tiny:  # CI: the launches take what they take on a slow machine (15 minutes at most)
        deadline = max(deadline, time.time() + 900)
    with tempfile.TemporaryDirectory(prefix="gpucheck-run-") as tmp:
        tmp = Path(tmp)
        data = write_dataset(tmp / "data", 40 if tiny else 120, 32 if tiny else 64)
        entry = tmp / "entry.py"
        entry.write_text(ENTRY)
        args = ["-q", "run", "mini-msc", "--model", "mtln", "--data", str(data),
                "--epochs", "2" if tiny else "3", "--batch-size", "8", "--input-size", "0",
                "--workers", "0" if tiny else "2", "--device", device.type,
                "--backbone", "wrn28_4", *(["--max-train-batches", "1"] if tiny else [])]
        base = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "1", str(entry), *args]
        # the same CPU threads as this process: float sums in another order differ in the end
        env = {**os.environ, "RSBENCH_QUIET": "1", "OMP_NUM_THREADS": str(torch.get_num_threads()),
               "PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(),
                                                         os.environ.get("PYTHONPATH")] if p)}
        res: dict = {"backend": "nccl" if device.type == "cuda" else "gloo"}

        def launch(tag: str, out: Path, *extra: str, stop: int = 0) -> int:
            left = deadline - time.time()
            if left < 5:
                raise TimeoutError(f"time budget spent before the {tag} run")
            t0 = time.perf_counter()
            p = subprocess.run([*base, "--out", str(out), *extra], capture_output=True,
                               text=True, timeout=left,
                               env={**env, "GPUCHECK_STOP_AFTER": str(stop)})
            res[f"{tag}_seconds"] = round(time.perf_counter() - t0, 1)
            code = p.returncode
            # torchrun exits 1 when its worker fails; its report names the worker's exit code
            if stop and code and re.search(r"exitcode\s*:\s*75\b", p.stdout + p.stderr):
                code = 75
            res[f"{tag}_exit"] = code
            log(f"  torchrun {tag}: worker exit {code} in {res[f'{tag}_seconds']} s")
            if code not in (0, 75 if stop else 0):
                tail = (p.stderr or p.stdout).strip().splitlines()
                raise RuntimeError(f"{tag} run exited {p.returncode}: "
                                   + (tail[-1] if tail else "no output"))
            return code

        # the reference: the same command in this process (no torchrun, same code path)
        from rsbench.cli.main import main as rsbench_main

        t0 = time.perf_counter()
        code = rsbench_main([*args, "--out", str(tmp / "a")])
        res["uninterrupted_seconds"] = round(time.perf_counter() - t0, 1)
        if code:
            raise RuntimeError(f"the uninterrupted run (in this process) exited {code}")
        log(f"  uninterrupted run in this process: {res['uninterrupted_seconds']} s")
        launch("interrupted", tmp / "b", stop=1)
        run_b = _run_folder(tmp / "b")
        res["stopped_after_epoch"] = int(torch.load(run_b / "checkpoint.pt",
                                                    weights_only=False)["epoch"])
        if (run_b / "metrics.json").exists():
            raise RuntimeError("the interrupted run left final metrics")
        launch("resumed", tmp / "b", "--resume")
        res.update(compare_runs(_run_folder(tmp / "a"), run_b))
        res["world_size"] = json.loads((run_b / "metrics.json").read_text())["world_size"]
        res["ok"] = res["identical_metrics"] and res["max_weight_difference"] == 0.0
        if not res["ok"] and device.type == "cuda":
            res["note"] = ("not bit-identical: cuDNN/cuBLAS pick non-deterministic kernels "
                           "unless torch.use_deterministic_algorithms is set")
    return res


def compare_runs(a: Path, b: Path) -> dict:
    """Metrics and final weights of two run folders: equal?"""
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    same = all(ma["tasks"][t].get(k) == mb["tasks"][t].get(k) for t in ma["tasks"]
               for k in ("confusion", "oa"))
    sa, sb = (torch.load(p / "checkpoint.pt", weights_only=False) for p in (a, b))
    diff = max(float((x.double() - sb["model"][k].double()).abs().max())
               if x.is_floating_point() else float(not torch.equal(x, sb["model"][k]))
               for k, x in sa["model"].items())
    la = [h["loss"] for h in sa["history"]]
    lb = [h["loss"] for h in sb["history"]]
    return {"identical_metrics": bool(same), "max_weight_difference": diff,
            "epoch_losses": la, "epoch_losses_resumed": lb,
            "oa": {t: ma["tasks"][t].get("oa") for t in ma["tasks"]}}


def ddp_step(device: torch.device) -> dict:
    """One DDP (NCCL on CUDA, gloo on CPU) step of the runner's GroupForward in a 1-process
    group: what a 1-process torchrun run skips (the runner wraps DDP from 2 processes on)."""
    import torch.distributed as dist

    from rsbench.models import build_model
    from rsbench.models.paper_params import BENCHMARKS
    from rsbench.training.data import TaskGroup
    from rsbench.training.distributed import all_reduce_
    from rsbench.training.loop import GroupForward

    tasks = list(BENCHMARKS["msc"].tasks)
    store = dist.HashStore()
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=store,
                            rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = build_model("mtln", tasks, backbone="wrn28_4").to(device)
        step = torch.nn.parallel.DistributedDataParallel(
            GroupForward(model, [TaskGroup(t.name, [t.name]) for t in tasks]),
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)
        xs = [torch.randn(4, 3, 32, 32, device=device) for _ in tasks]
        out = step(xs, [0, 1, 2])
        sum(o.float().logsumexp(1).mean() for o in out.values()).backward()
        t = torch.ones(3, device=device)
        all_reduce_(t)
        ok = bool(t.eq(1).all()) and all(p.grad is not None and torch.isfinite(p.grad).all()
                                         for p in model.parameters() if p.requires_grad)
        return {"ok": ok, "backend": dist.get_backend()}
    finally:
        dist.destroy_process_group()


def throughput_section(device: torch.device, tiny: bool, deadline: float, log) -> dict:
    """MTLN ResNet-34 training images/s (batch 32 per task, 3 tasks, 224 px): fp32 vs bf16
    autocast + channels-last, and the latter compiled, in one run; ratios to fp32."""
    size, batch, steps, backbone = (16, 2, 1, "wrn28_4") if tiny else (224, 32, 15, "resnet34")
    res: dict = {"image": size, "batch_per_task": batch, "timed_steps": steps,
                 "backbone": backbone}
    for label, amp, cl in (("fp32", False, False), ("amp_channels_last", True, True)):
        rate = train_rate(device, size, batch, steps, amp, cl, backbone=backbone)
        res[f"{label}_images_per_s"] = round(rate, 1)
        log(f"  MTLN {label}: {res[f'{label}_images_per_s']} images/s")
    res["amp_vs_fp32"] = round(res["amp_channels_last_images_per_s"]
                               / res["fp32_images_per_s"], 2)
    if tiny or device.type != "cuda":
        res["compiled"] = "skipped on CPU"
        return res
    left = deadline - time.time()
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import torch, gpu_runs; "
            f"print(gpu_runs.train_rate(torch.device('cuda'), {size}, {batch}, {steps}, "
            "True, True, compile=True))")
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=max(left, 1))
        if p.returncode:
            tail = p.stderr.strip().splitlines()
            res["compiled"] = "failed: " + (tail[-1] if tail else f"exit {p.returncode}")
        else:
            rate = float(p.stdout.strip().splitlines()[-1])
            res["amp_channels_last_compiled_images_per_s"] = round(rate, 1)
            res["compiled_vs_fp32"] = round(rate / res["fp32_images_per_s"], 2)
            log(f"  MTLN amp + channels-last + compile: {rate:.1f} images/s")
    except subprocess.TimeoutExpired:
        res["compiled"] = f"not finished within the section's budget ({left:.0f} s)"
    return res


def train_rate(device: torch.device, size: int, batch: int, steps: int, amp: bool,
               channels_last: bool, compile: bool = False, backbone: str = "resnet34") -> float:
    """Training images/s of MTLN ResNet-34 on 3 MSC tasks, batches already on the device
    (the model's rate, not the loader's), with the runner's prep, forward and backward."""
    from rsbench.models import build_model
    from rsbench.models.paper_params import BENCHMARKS
    from rsbench.training.config import load_benchmark
    from rsbench.training.data import TaskGroup, make_prep
    from rsbench.training.device import amp_dtype, autocast, make_scaler
    from rsbench.training.loop import GroupForward, backward_step, prepare_step
    from rsbench.training.losses import cross_entropy
    from rsbench.training.weighting import build_weighting

    tasks = list(BENCHMARKS["msc"].tasks)
    names = [t.name for t in tasks]
    cfg = load_benchmark("msc", {"input_size": size})
    torch.manual_seed(0)
    model = build_model("mtln", tasks, backbone=backbone).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step = GroupForward(model, [TaskGroup(n, [n]) for n in names])
    if compile:
        step = torch.compile(step)
    dtype = amp_dtype(device, amp)
    prep = make_prep(cfg, device, {n: "classification" for n in names},
                     channels_last=channels_last)
    weighting = build_weighting("equal", names, {n: "classification" for n in names}).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = make_scaler(device, dtype)
    loss = cross_entropy()
    g = torch.Generator().manual_seed(0)
    batches = [{"image": torch.randint(0, 256, (batch, size, size, 3), generator=g,
                                       dtype=torch.uint8).to(device),
                n: torch.randint(0, t.num_outputs, (batch,), generator=g).to(device)}
               for n, t in zip(names, tasks)]
    gen = torch.Generator(device=device).manual_seed(0)

    def one() -> None:
        xs, targets = prepare_step(batches, prep, gen)
        with autocast(device, dtype):
            out = step(xs, [0, 1, 2])
        losses = {n: loss(out[n], targets[n]) for n in names}
        opt.zero_grad(set_to_none=True)
        backward_step(weighting, [], losses, scaler)
        scaler.step(opt)
        scaler.update()

    for _ in range(3 if compile else (1 if size < 64 else 2)):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch * len(tasks) / (time.perf_counter() - t0)


def pipeline_section(device: torch.device, tiny: bool, deadline: float, log) -> dict:
    """Images/s of the runner's training loaders + on-device prep (no model) on an MSC-shaped
    dataset at 224 px, at 0, 4 and 8 workers (tiny: 0, 1, 2 at 32 px)."""
    import bench_loader as bl

    workers = (0, 1, 2) if tiny else (0, 4, 8)
    size, per_task, steps = (32, 40, 6) if tiny else (224, 400, 40)
    res: dict = {"image": size, "batch_per_task": 32, "steps_per_epoch": steps}
    with tempfile.TemporaryDirectory(prefix="gpucheck-pipe-") as tmp:
        data = write_dataset(Path(tmp) / "data", per_task, size)
        for w in workers:
            if w != workers[0] and time.time() > deadline:
                res[f"workers_{w}"] = "skipped: time budget"
                continue
            run, samplers, loaders = bl.runner_loaders("msc", data, w, Path(tmp) / "runs",
                                                       device=device.type,
                                                       overrides={"input_size": size})
            from rsbench.training.data import make_prep

            prep = make_prep(run.cfg, run.device, run.types, channels_last=run.channels_last)
            rate = bl.loader_rate(run, samplers, loaders, steps, 2, prep=prep)
            res[f"workers_{w}_images_per_s"] = round(rate, 1)
            log(f"  pipeline, {w} workers: {rate:.0f} images/s")
            del loaders
    return res
