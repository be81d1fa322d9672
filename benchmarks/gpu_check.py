"""The GPU acceptance check: one prepared script, about 8 minutes on one H200.

    pip install --no-deps --no-build-isolation -e . && python benchmarks/gpu_check.py --out $OUT
    python benchmarks/gpu_check.py --tiny --device cpu --out /tmp/gpucheck   # CI: ~1 minute

Sections (each with its own share of the time budget; a failure is recorded with its error line
and the script goes on):

1. models: every registered model on the inputs of each benchmark a paper table plans it for,
   one training step and one evaluation in fp32 and in bf16 autocast + channels-last from the
   same weights on the same batch (finite outputs and gradients; bf16 loss within a tolerance
   of fp32), with the runner's own prep, losses, forward and backward (``gpu_models.py``);
2. weightings: every registered weighting, MTLN steps in bf16 + channels-last (and fp16 with
   the GradScaler on CUDA);
3. resume: ``rsbench run`` under a 1-process ``torchrun`` (NCCL on CUDA, gloo on CPU) stopped
   dead after epoch 1 and continued with ``--resume`` until it finishes, against the same
   command run through in this process: identical metrics and weights?; plus one DDP step in
   a 1-process NCCL group (``gpu_runs.py``);
4. throughput: MTLN ResNet-34 training images/s at 224 px, batch 32 per task: fp32 vs AMP +
   channels-last (+ torch.compile), ratio in the same run;
5. pipeline: the runner's training loaders + on-device prep at 0, 4 and 8 workers.

Writes ``gpu_check.json`` and ``gpu_check.md`` (a section for benchmarks/RESULTS.md) to
``--out``. Needs only torch and the project (the datasets are written with its DatasetWriter).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gpu_models  # noqa: E402
import gpu_runs  # noqa: E402

# seconds per section: on one H200, and with --tiny on 2 CPU cores (scaled by --budget)
SECONDS = {"models": 160, "weightings": 45, "resume": 90, "throughput": 100, "pipeline": 55}
TINY_SECONDS = {"models": 22, "weightings": 8, "resume": 60, "throughput": 8, "pipeline": 15}


def machine(device: torch.device) -> dict:
    info = {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "device": str(device),
            "load_average": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    bf16=torch.cuda.is_bf16_supported())
    return info


def run_sections(device: torch.device, tiny: bool, budget: float, only: list[str]) -> dict:
    # --tiny scenes are 32 px: at 16 px a ResNet's layer4 sees 1x1 maps, where CPU bf16
    # convolution backward gave NaN weight gradients in 0-20 % of identical runs (torch 2.14)
    shape = gpu_models.Shape(side=32, batch=2, window=9, bands=8, hsi_batch=2, tiny=True) \
        if tiny else gpu_models.Shape()
    start = time.time()
    out: dict = {"machine": machine(device), "tiny": tiny, "budget_s": budget, "sections": {}}

    def log(msg: str) -> None:
        print(f"[{time.time() - start:6.1f} s] {msg}", flush=True)

    sections = {
        "models": lambda d: gpu_models.models_section(device, shape, d, log),
        "weightings": lambda d: gpu_models.weightings_section(device, shape, d, log),
        "resume": lambda d: {**gpu_runs.resume_section(device, tiny, d, log),
                             "ddp_step": gpu_runs.ddp_step(device)},
        "throughput": lambda d: gpu_runs.throughput_section(device, tiny, d, log),
        "pipeline": lambda d: gpu_runs.pipeline_section(device, tiny, d, log),
    }
    plan = TINY_SECONDS if tiny else SECONDS
    scale = budget / sum(plan.values())
    spent_share = 0.0
    for name, fn in sections.items():
        share = plan[name] * scale / budget
        spent_share += share
        if only and name not in only:
            continue
        # a section may use what earlier ones left (its cumulative share), and gets at least
        # its own share when an earlier one overran (a model or run is never cut short)
        deadline = max(start + budget * spent_share, time.time() + budget * share)
        log(f"{name} (until {deadline - start:.0f} s)")
        t0 = time.time()
        try:
            res = fn(deadline)
        except Exception as exc:  # noqa: BLE001 - recorded, the next section runs
            res = {"ok": False, "error": gpu_models._line(exc),
                   "traceback": traceback.format_exc(limit=4)}
            log(f"  {name} failed: {res['error']}")
        res["seconds"] = round(time.time() - t0, 1)
        out["sections"][name] = res
        if device.type == "cuda":
            torch.cuda.empty_cache()
    out["total_seconds"] = round(time.time() - start, 1)
    return out


def _ok(v) -> str:
    return "ok" if v is True else ("skipped" if v is None else "**FAIL**")


def markdown(res: dict) -> str:
    m, s = res["machine"], res["sections"]
    where = (f"{m['gpu']} ({m['gpu_memory_gib']} GiB), CUDA {m['cuda']}, cuDNN {m['cudnn']}"
             if "gpu" in m else "CPU only")
    lines = [f"## GPU acceptance check (`benchmarks/gpu_check.py`{' --tiny' if res['tiny'] else ''})",
             "", f"Machine: {where}; {m['cpus']} CPUs, load average {m['load_average']} at "
             f"start; torch {m['torch']}, Python {m['python']}. Whole run "
             f"{res['total_seconds']} s (budget {res['budget_s']:.0f} s).", ""]
    ms = s.get("models", {})
    if ms.get("rows"):
        lines += ["### Models: one training step + one evaluation, fp32 vs bf16 autocast + "
                  "channels-last", "",
                  f"Same weights, same batch; the difference column is max over tasks of "
                  f"|bf16 − fp32| / tolerance ({ms.get('tolerance')}): ≤ 1 passes.", "",
                  "| model | inputs | parameters | fp32 train loss | bf16 train loss | "
                  "train diff | eval diff | s | result |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in ms["rows"]:
            if "seconds" in r:
                f32, b16 = (sum(r[k].values()) for k in ("fp32_train_loss", "bf16_cl_train_loss"))
                lines.append(f"| {r['model']} | {r['family']} | {r['parameters'] / 1e6:.2f}M | "
                             f"{f32:.4f} | {b16:.4f} | {r['bf16_vs_fp32_train']} | "
                             f"{r['bf16_vs_fp32_eval']} | {r['seconds']} | {_ok(r['ok'])} |")
            else:
                lines.append(f"| {r['model']} | {r['family']} | | | | | | | {_ok(r['ok'])}: "
                             f"{r.get('error', '')} |")
        lines.append("")
    ws = s.get("weightings", {})
    if ws.get("rows"):
        lines += [f"### Weightings: {ws.get('model')} steps, bf16 + channels-last (fp16 + "
                  "GradScaler on CUDA)", "", "| weighting | bf16 loss | fp16 loss | result |",
                  "|---|---:|---:|---|"]
        for r in ws["rows"]:
            lines.append(f"| {r['weighting']} | {r.get('bf16_loss', '')} | "
                         f"{r.get('fp16_loss', '')} | {_ok(r.get('ok'))} "
                         f"{r.get('error', '')} |")
        lines.append("")
    rs = s.get("resume", {})
    if rs:
        ddp = rs.get("ddp_step", {})
        lines += ["### torchrun + --resume", "",
                  (f"1-process `torchrun` ({rs.get('backend')}) `rsbench run mini-msc --model "
                   f"mtln` (WRN-28-4, {len(rs.get('epoch_losses', []))} epochs) stopped after "
                   f"epoch {rs.get('stopped_after_epoch')} and resumed, against the run "
                   f"through in one process ({rs.get('uninterrupted_seconds')} s): "
                   f"identical metrics {rs.get('identical_metrics')}, largest weight difference "
                   f"{rs.get('max_weight_difference')}: {_ok(rs.get('ok'))}. "
                   + (rs.get("note", "") + " " if rs.get("note") else "")
                   + f"One DDP step in a 1-process {ddp.get('backend')} group: "
                   f"{_ok(ddp.get('ok'))}.") if "error" not in rs else
                  f"**FAIL**: {rs['error']}", ""]
    ts = s.get("throughput", {})
    if ts and "error" not in ts:
        lines += [f"### MTLN {ts['backbone']} training throughput ({ts['image']} px, batch "
                  f"{ts['batch_per_task']} per task × 3 tasks, {ts['timed_steps']} timed steps, "
                  "inputs on the device)", "", "| setting | images/s | vs fp32 |", "|---|---:|---:|",
                  f"| fp32 | {ts['fp32_images_per_s']} | 1.00 |",
                  f"| bf16 autocast + channels-last | {ts['amp_channels_last_images_per_s']} | "
                  f"{ts['amp_vs_fp32']} |"]
        if "amp_channels_last_compiled_images_per_s" in ts:
            lines.append(f"| + torch.compile | {ts['amp_channels_last_compiled_images_per_s']}"
                         f" | {ts['compiled_vs_fp32']} |")
        else:
            lines.append(f"| + torch.compile | {ts.get('compiled')} | |")
        lines.append("")
    ps = s.get("pipeline", {})
    if ps and "error" not in ps:
        lines += [f"### Input pipeline: the runner's training loaders + on-device prep "
                  f"({ps['image']} px, batch {ps['batch_per_task']} × 3 tasks, no model)", "",
                  "| workers | images/s |", "|---:|---:|"]
        for k, v in ps.items():
            if k.startswith("workers_"):
                lines.append(f"| {k.split('_')[1]} | {v} |")
        lines.append("")
    failed = [f"{k}: {v['error']}" for k, v in s.items() if isinstance(v, dict) and "error" in v]
    if failed:
        lines += ["Sections that failed: " + "; ".join(failed), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gpu-check"),
                    help="Folder for gpu_check.json and gpu_check.md.")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny", action="store_true",
                    help="Tiny models and inputs (CI on CPU: about a minute).")
    ap.add_argument("--budget", type=float, default=None,
                    help=f"Seconds for all sections (default: {sum(SECONDS.values())}; --tiny: "
                         f"{sum(TINY_SECONDS.values())}).")
    ap.add_argument("--only", nargs="+", choices=list(SECONDS), default=[],
                    help="Run only these sections.")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: no CUDA GPU is visible; use --device cpu (with --tiny)",
              file=sys.stderr)
        return 2
    device = torch.device("cuda", 0) if args.device == "cuda" else torch.device("cpu")
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    budget = args.budget or float(sum((TINY_SECONDS if args.tiny else SECONDS).values()))
    args.out.mkdir(parents=True, exist_ok=True)
    res = run_sections(device, args.tiny, budget, args.only)
    (args.out / "gpu_check.json").write_text(json.dumps(res, indent=2))
    md = markdown(res)
    (args.out / "gpu_check.md").write_text(md + "\n")
    print(md, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
