"""Weightings in real runs: `rsbench run ... --weighting NAME` for every registered weighting,
run names (MODEL+WEIGHTING, the uncertainty row), weights in history.csv, `--set weighting.*`,
resume bit-identical for a stateful weighting (rlw), and a two-process gloo run with pcgrad."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import training_fixtures as tf

from rsbench.training import checkpoint as ckpt_mod
from rsbench.training.config import load_benchmark
from rsbench.training.runner import RunRequest, run_benchmark
from rsbench.training.weighting import WEIGHTINGS

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent


@pytest.fixture(autouse=True)
def _small():
    torch.set_num_threads(1)
    tf.register()


@pytest.fixture(scope="module")
def msc(tmp_path_factory) -> Path:
    return tf.write_msc(tmp_path_factory.mktemp("d") / "mini-msc", per_class=5, size=16)


@pytest.fixture(scope="module")
def psc(tmp_path_factory) -> Path:
    return tf.write_psc(tmp_path_factory.mktemp("d") / "psc5", per_class=4, size=32)


def _cli(*args: str) -> int:
    from rsbench.cli.main import main

    return main(["--quiet", "run", *args, "--epochs", "1", "--batch-size", "4",
                 "--max-train-batches", "1", "--input-size", "0", "--workers", "0",
                 "--device", "cpu"])


def _history(run: Path) -> list[dict]:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("weighting", sorted(WEIGHTINGS))
def test_cli_mtln_on_mini_msc_takes_every_weighting(weighting, msc, tmp_path) -> None:
    assert _cli("mini-msc", "--model", "mtln", "--data", str(msc), "--out", str(tmp_path),
                "--weighting", weighting) == 0
    method = "mtln" if weighting == "equal" else f"mtln+{weighting}"
    run = tf.run_dir(tmp_path, "mini-msc", method)
    conf = json.loads((run / "config.json").read_text())
    assert conf["weighting"]["name"] == weighting and conf["method"] == method
    m = json.loads((run / "metrics.json").read_text())
    assert m["complete"]
    row = _history(run)[0]
    if weighting != "graddrop":  # the others have per-task weights (or coefficients)
        assert {f"weight_{t}" for t in ("merced", "aid", "nwpu")} <= set(row)
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert "weighting" in state
    if weighting == "uncertainty":
        assert m["parameters"]["breakdown"]["loss_weights"] == 3


def test_cli_psc_shared_specific_mgda_and_the_uncertainty_row(psc, tmp_path) -> None:
    out = str(tmp_path)
    small = ("--backbone", "wrn28_4")
    assert _cli("psc5", "--model", "shared-specific", "--data", str(psc), "--out", out,
                "--weighting", "mgda", *small) == 0
    assert (tf.run_dir(tmp_path, "psc5", "shared-specific+mgda") / "metrics.json").exists()
    # the MTLN paper's uncertainty row: its own weighting by default, under its own name
    assert _cli("psc5", "--model", "uncertainty", "--data", str(psc), "--out", out, *small) == 0
    run = tf.run_dir(tmp_path, "psc5", "uncertainty")
    assert json.loads((run / "config.json").read_text())["weighting"] == {"name": "uncertainty"}
    assert torch.load(run / "checkpoint.pt", weights_only=False)["weighting"]["log_vars"].shape \
        == (2,)
    assert _cli("psc5", "--model", "uncertainty", "--data", str(psc), "--out", out,
                "--weighting", "equal", *small) == 0
    assert (tf.run_dir(tmp_path, "psc5", "uncertainty+equal") / "metrics.json").exists()


def test_cli_psc5_mtln_with_nash_mtl_trains_and_reports(psc, tmp_path) -> None:
    assert _cli("psc5", "--model", "mtln", "--data", str(psc), "--out", str(tmp_path),
                "--weighting", "nash-mtl", "--backbone", "wrn28_4") == 0
    run = tf.run_dir(tmp_path, "psc5", "mtln+nash-mtl")
    assert json.loads((run / "metrics.json").read_text())["complete"]
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["weighting"]["alpha"].shape == (2,) and int(state["weighting"]["step"]) == 1


def test_cli_rep_grad_runs_where_the_model_has_a_representation_and_refuses_elsewhere(
        msc, tmp_path, capsys) -> None:
    assert _cli("mini-msc", "--model", "shared-specific", "--backbone", "wrn28_4", "--data",
                str(msc), "--out", str(tmp_path), "--weighting", "imtl-h",
                "--set", "weighting.rep_grad=true") == 0
    conf = json.loads((tf.run_dir(tmp_path, "mini-msc", "shared-specific+imtl-h")
                       / "config.json").read_text())
    assert conf["weighting"] == {"name": "imtl-h", "rep_grad": True}
    capsys.readouterr()
    assert _cli("mini-msc", "--model", "mtln", "--data", str(msc), "--out", str(tmp_path / "x"),
                "--weighting", "mgda", "--set", "weighting.rep_grad=true") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no single feature map" in err[0], err
    assert not list((tmp_path / "x").glob("**/metrics.json"))


def test_set_weighting_options_and_unknown_options_are_one_line(msc, tmp_path, capsys) -> None:
    assert _cli("mini-msc", "--model", "tiny", "--data", str(msc), "--out", str(tmp_path),
                "--weighting", "cagrad", "--set", "weighting.c=0.25") == 0
    conf = json.loads((tf.run_dir(tmp_path, "mini-msc", "tiny+cagrad") / "config.json").read_text())
    assert conf["weighting"] == {"name": "cagrad", "c": 0.25}
    capsys.readouterr()
    assert _cli("mini-msc", "--model", "tiny", "--data", str(msc), "--out", str(tmp_path / "x"),
                "--weighting", "dwa", "--set", "weighting.alpha=2") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "weighting 'dwa' takes no option 'alpha'" in err[0]
    assert not list((tmp_path / "x").glob("**/metrics.json"))


def test_resume_with_rlw_equals_the_uninterrupted_run(msc, tmp_path, monkeypatch) -> None:
    cfg = load_benchmark("mini-msc", {"input_size": 0, "lr": 1e-2, "epochs": 3,
                                      "batch_size": 4})
    cfg["backbone"] = None
    cfg["weighting"] = {"name": "rlw"}
    full = run_benchmark(cfg, RunRequest(model="tiny", data=str(msc), out=str(tmp_path / "a"),
                                         max_train_batches=2))
    real_save = ckpt_mod.save_checkpoint
    calls = {"n": 0}

    def dying_save(path, payload):
        real_save(path, payload)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # stopped right after epoch 1's checkpoint

    monkeypatch.setattr(ckpt_mod, "save_checkpoint", dying_save)
    req = RunRequest(model="tiny", data=str(msc), out=str(tmp_path / "b"), max_train_batches=2)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(cfg, req)
    monkeypatch.setattr(ckpt_mod, "save_checkpoint", real_save)
    req.resume = True
    resumed = run_benchmark(cfg, req)
    for t in full["tasks"]:
        assert resumed["tasks"][t]["confusion"] == full["tasks"][t]["confusion"]
    sa = torch.load(tf.run_dir(tmp_path / "a", "mini-msc", "tiny") / "checkpoint.pt",
                    weights_only=False)
    sb = torch.load(tf.run_dir(tmp_path / "b", "mini-msc", "tiny") / "checkpoint.pt",
                    weights_only=False)
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    assert sa["weighting"]["_extra_state"]["generator"].equal(
        sb["weighting"]["_extra_state"]["generator"])
    weights = [[h[f"weight_{t}"] for t in ("merced", "aid", "nwpu")] for h in sa["history"]]
    assert weights == [[h[f"weight_{t}"] for t in ("merced", "aid", "nwpu")]
                       for h in sb["history"]]
    assert len({tuple(w) for w in weights}) == 3  # new random weights every epoch
    assert all(sum(w) == pytest.approx(1.0) for w in weights)


ENTRY = """
import sys, training_fixtures as tf
tf.register()
from rsbench.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_two_process_gloo_run_with_pcgrad(msc, tmp_path) -> None:
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{PROJECT}", "OMP_NUM_THREADS": "1",
           "RSBENCH_QUIET": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(entry), "run", "mini-msc", "--model", "tiny", "--data", str(msc),
           "--out", str(tmp_path / "runs"), "--epochs", "2", "--batch-size", "4",
           "--input-size", "0", "--workers", "0", "--device", "cpu", "--weighting", "pcgrad"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    run = tf.run_dir(tmp_path / "runs", "mini-msc", "tiny+pcgrad")
    m = json.loads((run / "metrics.json").read_text())
    assert m["complete"] and m["world_size"] == 2
    assert len(_history(run)) == 2
