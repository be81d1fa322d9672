"""benchmarks/gpu_check.py --tiny --device cpu, as CI runs it: every section runs and reports,
the models it checks pass, every registered model and weighting is listed (checked, or skipped
for the time budget), and torchrun (gloo) + --resume reproduces the uninterrupted run exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rsbench.models import model_factories
from rsbench.training.weighting import WEIGHTINGS

PROJECT = Path(__file__).resolve().parents[1]


def shipped_models() -> set[str]:
    """The models rsbench itself registers (other tests register tiny ones in this process,
    which the script's own process does not see)."""
    return {n for n, f in model_factories().items() if f.__module__.startswith("rsbench.models.")}


def shipped_weightings() -> set[str]:
    return {n for n, c in WEIGHTINGS.items()
            if c.__module__.startswith("rsbench.training.weighting.")}


def test_tiny_gpu_check_on_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": "2",
           "RSBENCH_QUIET": "1"}
    p = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "gpu_check.py"), "--tiny",
                        "--device", "cpu", "--out", str(tmp_path)], env=env, cwd=PROJECT,
                       capture_output=True, text=True, timeout=1500)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    s = res["sections"]
    assert set(s) == {"models", "weightings", "resume", "throughput", "pipeline"}
    assert not [k for k, v in s.items() if "error" in v], p.stdout[-3000:]

    rows = s["models"]["rows"]
    assert {r["model"] for r in rows} == shipped_models()  # the registry, not a list
    checked = [r for r in rows if r["ok"] is not None]
    assert checked and all(r["ok"] for r in checked), [r for r in checked if not r["ok"]]
    for r in rows:
        assert r["ok"] is not None or "budget" in r["error"]
    for r in checked:  # both precisions ran, losses are finite numbers
        for key in ("fp32_train_loss", "bf16_cl_train_loss", "fp32_eval_loss"):
            assert all(v == v and abs(v) < 1e6 for v in r[key].values())
    fams = {r["model"]: r["family"] for r in checked}
    assert fams.get("hsi-mtl", "taiga") == "taiga" and fams.get("mtln", "msc") == "msc"

    ws = s["weightings"]["rows"]
    assert {r["weighting"] for r in ws} == shipped_weightings()
    assert all(r["ok"] or "budget" in r.get("error", "") for r in ws), ws

    rs = s["resume"]
    assert rs["backend"] == "gloo" and rs["world_size"] == 1
    assert rs["stopped_after_epoch"] == 1 and rs["interrupted_exit"] == 75
    assert rs["identical_metrics"] and rs["max_weight_difference"] == 0.0 and rs["ok"]
    assert rs["epoch_losses"] == rs["epoch_losses_resumed"] and len(rs["epoch_losses"]) == 2
    assert rs["ddp_step"] == {"ok": True, "backend": "gloo"}

    ts = s["throughput"]
    assert ts["fp32_images_per_s"] > 0 and ts["amp_channels_last_images_per_s"] > 0
    assert ts["amp_vs_fp32"] > 0
    pipe = s["pipeline"]  # the first worker count always runs; the others within the budget
    assert pipe["workers_0_images_per_s"] > 0
    assert all(pipe.get(f"workers_{w}_images_per_s", 0) > 0 or "budget" in pipe[f"workers_{w}"]
               for w in (1, 2))

    md = (tmp_path / "gpu_check.md").read_text()
    for heading in ("## GPU acceptance check", "### Models", "### Weightings",
                    "### torchrun + --resume", "### MTLN wrn28_4 training", "### Input pipeline"):
        assert heading in md
