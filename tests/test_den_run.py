"""`rsbench run mini-msc --model den` end to end on tiny synthetic data: the training loop hands
the step's targets to DEN's policy gradient, and the run fills Table III(b)'s DEN row."""

from __future__ import annotations

import csv
import json

import torch
import training_fixtures as tf


def test_cli_den_run_trains_the_selectors_and_fills_table_iii(tmp_path, capsys):
    from rsbench.cli.main import main

    torch.set_num_threads(1)
    data = tf.write_msc(tmp_path / "mini-msc", per_class=5, size=16)
    out = tmp_path / "runs"
    # two pre-training steps for the estimator, then two steps with the selectors learning
    code = main(["--quiet", "run", "mini-msc", "--model", "den", "--data", str(data),
                 "--input-size", "0", "--epochs", "2", "--batch-size", "4",
                 "--max-train-batches", "2", "--workers", "0", "--out", str(out),
                 "--set", "model_options.pretrain_steps=2"])
    assert code == 0, capsys.readouterr().err
    (metrics,) = out.rglob("metrics.json")
    run = metrics.parent
    saved = json.loads(metrics.read_text())
    assert saved["complete"] and saved["method"] == "den"
    rows = list(csv.DictReader((run / "history.csv").open()))
    aux = [float(r.get("loss_auxiliary") or 0) for r in rows]
    assert aux[0] == 0 and aux[1] != 0, aux  # the policy loss only after pre-training
    state = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    assert state["steps"].tolist() == [4, 4, 4]
    # the share of grouped filters the selectors' choices use on the test split
    for task in ("merced", "aid", "nwpu"):
        assert 0 <= saved["tasks"][task]["filters_used"] <= 1, saved["tasks"][task]
    capsys.readouterr()
    assert main(["report", str(out), "--table", "mini-msc", "--format", "csv"]) == 0
    table = list(csv.reader(capsys.readouterr().out.splitlines()))
    header, body = table[0], [dict(zip(table[0], r)) for r in table[1:]]
    # the run's own row (its short-run settings differ from the benchmark's: a labelled row)
    (den,) = [r for r in body if r["method"] == "den" and r["source"] == "ours"
              and r["seeds"] == "1"]
    scores = [k for k in header if k in ("Merced", "AID", "NWPU", "Average", "Params (M)")]
    assert den["seeds"] == "1" and len(scores) == 5, header
    assert all(den[k] not in ("", "-") and 0 <= float(den[k]) <= 100 for k in scores), den


def test_den_unstated_settings_are_in_the_benchmark_configs():
    from rsbench.training.config import load_benchmark

    for bench in ("msc", "mini-msc"):
        unstated = load_benchmark(bench, {}).get("unstated", {})
        assert any(k.startswith("den.") for k in unstated), (bench, sorted(unstated))


def test_den_settings_are_stated_for_den_runs_only():
    """A run records the unstated settings of its own model, not DEN's choices on an MTLN run."""
    from rsbench.training.config import load_benchmark
    from rsbench.training.run_model import model_unstated

    unstated = load_benchmark("mini-msc", {})["unstated"]
    mtln, den = model_unstated(unstated, "mtln"), model_unstated(unstated, "den")
    assert not any(k.startswith("den.") for k in mtln)
    own = {"den."} | {f"{m}." for m in ("mtan", "mmoe", "cgc", "ple", "dselect-k", "ltb")}
    assert set(den) == {k for k in unstated if not k.startswith(tuple(own - {"den."}))}
    assert set(mtln) == {k for k in unstated if not k.startswith(tuple(own))}
    assert "augment" in mtln and "batching" in mtln



def test_den_under_two_process_ddp(tmp_path):
    """The selectors only reach the loss through auxiliary_loss, past DDP's forward outputs:
    a two-process gloo run through the policy-gradient phase must still train and finish."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    data = tf.write_msc(tmp_path / "mini-msc", per_class=5, size=16)
    entry = tmp_path / "entry.py"
    entry.write_text("import sys\nfrom rsbench.cli.main import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": f"{tests}{os.pathsep}{tests.parent}",
           "OMP_NUM_THREADS": "1", "RSBENCH_QUIET": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(entry), "run", "mini-msc", "--model", "den", "--data", str(data),
           "--out", str(tmp_path / "runs"), "--epochs", "2", "--batch-size", "4",
           "--input-size", "0", "--workers", "0", "--device", "cpu",
           "--set", "model_options.pretrain_steps=1"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    (metrics,) = (tmp_path / "runs").rglob("metrics.json")
    m = json.loads(metrics.read_text())
    assert m["complete"] and m["world_size"] == 2
    assert all(0 <= m["tasks"][t]["filters_used"] <= 1 for t in ("merced", "aid", "nwpu"))
    rows = list(csv.DictReader((metrics.parent / "history.csv").open()))
    assert all(float(r.get("loss_auxiliary") or 0) != 0 for r in rows), rows
