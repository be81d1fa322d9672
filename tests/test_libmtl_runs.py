"""`rsbench run` with LibMTL's architectures on tiny synthetic data: every model trains and
reports on mini-MSC (one task's images per call) and the gated/branching ones on PSC (both tasks
of the same images); a run records its own model's unstated choices only; LTB's resumed run
draws the same trees as the uninterrupted one (bit-identical checkpoint)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import training_fixtures as tf

from rsbench.training import checkpoint as ckpt_mod
from rsbench.training.config import load_benchmark
from rsbench.training.runner import RunRequest, run_benchmark

MODELS = ["mtan", "mmoe", "cgc", "ple", "dselect-k", "ltb"]
TINY = ("--backbone", "wrn10_1")  # a one-unit-per-group Wide ResNet: several fit in a second


@pytest.fixture(autouse=True)
def _small():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def msc(tmp_path_factory) -> Path:
    return tf.write_msc(tmp_path_factory.mktemp("d") / "mini-msc", per_class=5, size=16)


@pytest.fixture(scope="module")
def psc(tmp_path_factory) -> Path:
    return tf.write_psc(tmp_path_factory.mktemp("d") / "psc5", per_class=4, size=16)


def _cli(*args: str) -> int:
    from rsbench.cli.main import main

    return main(["--quiet", "run", *args, *TINY, "--epochs", "1", "--batch-size", "4",
                 "--max-train-batches", "1", "--input-size", "0", "--workers", "0",
                 "--device", "cpu"])


@pytest.mark.parametrize("name", MODELS)
def test_cli_run_on_mini_msc(name, msc, tmp_path) -> None:
    assert _cli("mini-msc", "--model", name, "--data", str(msc), "--out", str(tmp_path)) == 0
    run = tf.run_dir(tmp_path, "mini-msc", name)
    m = json.loads((run / "metrics.json").read_text())
    assert m["complete"] and m["method"] == name
    assert set(m["tasks"]) == {"merced", "aid", "nwpu"}
    assert m["parameters"]["total"] == m["parameters"]["breakdown"]["total"] > 0
    conf = json.loads((run / "config.json").read_text())
    assert conf["model_spec"]["name"] == name
    assert conf["model_spec"]["kwargs"]["backbone"] == "wrn10_1"
    # this model's unstated choices, and no other model's
    prefixed = {k.split(".")[0] for k in conf["unstated"] if "." in k}
    assert prefixed == {name}, sorted(conf["unstated"])
    if name == "dselect-k":  # its selector regulariser is the run's auxiliary loss
        (row,) = list(csv.DictReader((run / "history.csv").open()))
        assert float(row["loss_auxiliary"]) != 0


@pytest.mark.parametrize("name", ["mmoe", "ple", "ltb"])
def test_cli_run_on_psc(name, psc, tmp_path) -> None:
    assert _cli("psc5", "--model", name, "--data", str(psc), "--out", str(tmp_path)) == 0
    m = json.loads((tf.run_dir(tmp_path, "psc5", name) / "metrics.json").read_text())
    assert m["complete"] and {"scene", "segmentation"} <= set(m["tasks"])


def test_ltb_resumed_run_draws_the_same_trees(msc, tmp_path, monkeypatch) -> None:
    cfg = load_benchmark("mini-msc", {"input_size": 0, "lr": 1e-2, "epochs": 3,
                                      "batch_size": 4, "backbone": "wrn10_1"})
    cfg["model_options"] = {"epochs": 2}  # warm-up in epoch 0, branching in epochs 1 and 2
    full = run_benchmark(cfg, RunRequest(model="ltb", data=str(msc), out=str(tmp_path / "a"),
                                         max_train_batches=2, device="cpu"))
    real_save = ckpt_mod.save_checkpoint
    calls = {"n": 0}

    def dying_save(path, payload):
        real_save(path, payload)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # stopped right after epoch 2's checkpoint

    monkeypatch.setattr(ckpt_mod, "save_checkpoint", dying_save)
    req = RunRequest(model="ltb", data=str(msc), out=str(tmp_path / "b"), max_train_batches=2,
                     device="cpu")
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(cfg, req)
    monkeypatch.setattr(ckpt_mod, "save_checkpoint", real_save)
    req.resume = True
    resumed = run_benchmark(cfg, req)
    for t in full["tasks"]:
        assert resumed["tasks"][t]["confusion"] == full["tasks"][t]["confusion"]
    sa, sb = (torch.load(tf.run_dir(tmp_path / d, "mini-msc", "ltb") / "checkpoint.pt",
                         weights_only=False)["model"] for d in ("a", "b"))
    for k, v in sa.items():
        assert torch.equal(v, sb[k]), k
    # two branching epochs of 2 steps x 3 task calls drew 12 trees; alpha moved off its start
    assert int(sa["draws"]) == 12 and not torch.equal(sa["alpha"], torch.ones_like(sa["alpha"]))
