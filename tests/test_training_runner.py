"""The runner on tiny synthetic MSC/PSC data: learning, metrics, run folder, resume, kill, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import training_fixtures as tf

from rsbench.errors import InputError, UsageError
from rsbench.training import checkpoint as ckpt_mod
from rsbench.training.config import load_benchmark
from rsbench.training.runner import RunRequest, run_benchmark

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent


@pytest.fixture(autouse=True)
def _small():
    torch.set_num_threads(1)
    tf.register()


@pytest.fixture(scope="module")
def msc(tmp_path_factory) -> Path:
    return tf.write_msc(tmp_path_factory.mktemp("d") / "mini-msc", per_class=10)


@pytest.fixture(scope="module")
def psc(tmp_path_factory) -> Path:
    return tf.write_psc(tmp_path_factory.mktemp("d") / "psc5", per_class=8)


def _cfg(name: str, **over) -> dict:
    cfg = load_benchmark(name, {"input_size": 32, "lr": 1e-2, **over})
    cfg["backbone"] = None
    return cfg


def test_msc_run_learns_and_writes_a_complete_run_folder(msc, tmp_path):
    m = run_benchmark(_cfg("mini-msc", epochs=4, batch_size=8),
                      RunRequest(model="tiny", data=str(msc), out=str(tmp_path)))
    run = tf.run_dir(tmp_path, "mini-msc", "tiny")
    for f in ("config.json", "metrics.json", "history.csv", "checkpoint.pt", "run.log",
              "confusion_merced.png", "confusion_aid.png", "confusion_nwpu.png"):
        assert (run / f).exists(), f
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["complete"] and saved["method"] == "tiny" and saved["epochs"] == 4
    # colours are class-dependent: every task is learned well above chance
    for task, chance in (("merced", 1 / 3), ("aid", 1 / 4), ("nwpu", 1 / 2)):
        assert m["tasks"][task]["oa"] > chance + 0.3, (task, m["tasks"][task]["oa"])
        cm = np.array(saved["tasks"][task]["confusion"])
        assert cm.sum() == len(tf.index_of(msc).query("task == @task and split == 'test'"))
    hist = (run / "history.csv").read_text().splitlines()
    assert len(hist) == 5 and hist[0].startswith("epoch,loss,loss_merced,loss_aid,loss_nwpu")
    assert saved["parameters"]["total"] == saved["parameters"]["breakdown"]["total"] > 0
    assert saved["train_samples_per_s"] > 0 and saved["train_seconds_per_epoch"] > 0
    conf = json.loads((run / "config.json").read_text())
    assert conf["optimizer"] == {"name": "adam", "lr": 0.01, "weight_decay": 0.0}


def test_multitask_steps_cycle_smaller_tasks(msc, tmp_path):
    # merced has 24 train rows, aid 32, nwpu 16: batch 8 -> 4 steps per epoch, all tasks each step
    run_benchmark(_cfg("mini-msc", epochs=1, batch_size=8),
                  RunRequest(model="tiny", data=str(msc), out=str(tmp_path)))
    hist = tf.run_dir(tmp_path, "mini-msc", "tiny") / "history.csv"
    row = hist.read_text().splitlines()[1].split(",")
    header = hist.read_text().splitlines()[0].split(",")
    assert int(row[header.index("samples")]) == 4 * 3 * 8


def test_psc_metrics_equal_a_hand_evaluation_of_the_saved_model(psc, tmp_path):
    m = run_benchmark(_cfg("psc5", epochs=3, batch_size=4),
                      RunRequest(model="tiny", data=str(psc), out=str(tmp_path)))
    run = tf.run_dir(tmp_path, "psc5", "tiny")
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    from rsbench.datasets.format.reader import open_dataset
    from rsbench.models.base import TaskInfo

    ds = open_dataset(psc)
    model = tf.tiny_model([TaskInfo("scene", "classification", 3),
                           TaskInfo("segmentation", "segmentation", 4)])
    model.load_state_dict(state["model"])
    model.eval()
    rows = ds.rows("scene", "test")
    img = torch.from_numpy(ds.array("image")[rows]).permute(0, 3, 1, 2).float() / 255
    img = (img - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(img, tasks=["scene", "segmentation"])
    labels = ds.index["label"].to_numpy()[rows]
    pred = out["scene"].argmax(1).numpy()
    assert m["tasks"]["scene"]["oa"] == pytest.approx((pred == labels).mean())
    truth = ds.array("mask")[rows].astype(np.int64).ravel()
    seg = out["segmentation"].argmax(1).numpy().ravel()
    cm = np.zeros((4, 4), np.int64)
    np.add.at(cm, (truth, seg), 1)
    assert np.array_equal(np.array(m["tasks"]["segmentation"]["confusion"]), cm)
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    assert m["tasks"]["segmentation"]["miou"] == pytest.approx(np.nanmean(iou))
    assert m["tasks"]["segmentation"]["pa"] == pytest.approx(np.trace(cm) / cm.sum())
    assert m["tasks"]["segmentation"]["pa"] > 0.6  # learns the painted classes


def test_resume_after_an_interruption_equals_the_uninterrupted_run(msc, tmp_path, monkeypatch):
    cfg = _cfg("mini-msc", epochs=3, batch_size=8)
    full = run_benchmark(cfg, RunRequest(model="tiny", data=str(msc), out=str(tmp_path / "a")))

    real_save = ckpt_mod.save_checkpoint
    calls = {"n": 0}

    def dying_save(path, payload):
        real_save(path, payload)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process is stopped right after epoch 2's checkpoint

    monkeypatch.setattr(ckpt_mod, "save_checkpoint", dying_save)
    req = RunRequest(model="tiny", data=str(msc), out=str(tmp_path / "b"))
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(cfg, req)
    run_b = tf.run_dir(tmp_path / "b", "mini-msc", "tiny")
    assert not (run_b / "metrics.json").exists()
    with pytest.raises(UsageError, match="--resume"):
        run_benchmark(cfg, req)  # refuses to start over a half-done run silently
    monkeypatch.setattr(ckpt_mod, "save_checkpoint", real_save)
    req.resume = True
    resumed = run_benchmark(cfg, req)

    run_a = tf.run_dir(tmp_path / "a", "mini-msc", "tiny")
    for t in full["tasks"]:
        assert resumed["tasks"][t]["confusion"] == full["tasks"][t]["confusion"]
    sa = torch.load(run_a / "checkpoint.pt", weights_only=False)
    sb = torch.load(run_b / "checkpoint.pt", weights_only=False)
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    assert [h["loss"] for h in sa["history"]] == [h["loss"] for h in sb["history"]]


def test_runs_of_other_settings_get_their_own_folder_and_resume_skips_finished(msc, tmp_path):
    from rsbench.training.identity import sha256_bytes

    req = RunRequest(model="tiny", data=str(msc), out=str(tmp_path), max_train_batches=1)
    m1 = run_benchmark(_cfg("mini-msc", epochs=1, batch_size=8), req)
    run1 = Path(m1["run_folder"])
    conf = json.loads((run1 / "config.json").read_text())
    ident = conf["identity"]
    assert run1 == tmp_path / "mini-msc" / "tiny" / ident["fingerprint"][:8] / "0"
    assert m1["fingerprint"] == ident["fingerprint"] and len(ident["fingerprint"]) == 16
    assert json.loads((run1 / "metrics.json").read_text())["fingerprint"] == ident["fingerprint"]
    assert ident["settings"]["dataset_sha256"] == sha256_bytes(msc / "dataset.json")
    assert "seed" not in ident["settings"]
    assert ident["non_default"] == {"epochs": 1, "batch_size": 8, "input_size": 32,
                                    "optimizer.lr": 0.01, "backbone": None,
                                    "max_train_batches": 1}
    assert conf["model_spec"]["name"] == "tiny" and conf["model_spec"]["tasks"][0][0] == "merced"
    # the benchmark's unstated settings, less those of other models (DEN's den.*, MTAN's mtan.*)
    shipped = load_benchmark("mini-msc")["unstated"]
    assert conf["unstated"] == {k: v for k, v in shipped.items() if "." not in k}
    assert "batching" in conf["unstated"] and len(conf["unstated"]) >= 5
    log = (run1 / "run.log").read_text()
    assert f"(fingerprint {ident['fingerprint']})" in log and ", epochs=1, " in log
    assert "not stated by the paper: batching: Each step draws a batch of 32" in log
    with pytest.raises(UsageError, match="finished run"):
        run_benchmark(_cfg("mini-msc", epochs=1, batch_size=8), req)
    # --resume on a finished run: nothing to do, its metrics untouched
    stamp = (run1 / "metrics.json").stat().st_mtime_ns
    req.resume = True
    again = run_benchmark(_cfg("mini-msc", epochs=1, batch_size=8), req)
    assert again["finished"] == m1["finished"]
    assert (run1 / "metrics.json").stat().st_mtime_ns == stamp
    # another seed of the same settings sits beside it; other epochs get their own folder
    m2 = run_benchmark(_cfg("mini-msc", epochs=1, batch_size=8),
                       RunRequest(model="tiny", data=str(msc), out=str(tmp_path), seed=1,
                                  max_train_batches=1))
    assert Path(m2["run_folder"]) == run1.parent / "1" and m2["fingerprint"] == m1["fingerprint"]
    m3 = run_benchmark(_cfg("mini-msc", epochs=2, batch_size=8), req)
    assert m3["epochs"] == 2 and m3["fingerprint"] != m1["fingerprint"]
    assert Path(m3["run_folder"]).parent != run1.parent
    assert json.loads((run1 / "metrics.json").read_text())["epochs"] == 1
    # an interrupted folder whose stored identity is another setting is never continued
    (run1 / "metrics.json").unlink()
    conf["identity"]["fingerprint"] = "0" * 16
    (run1 / "config.json").write_text(json.dumps(conf))
    with pytest.raises(UsageError, match="other settings"):
        run_benchmark(_cfg("mini-msc", epochs=1, batch_size=8), req)


def test_identity_lists_what_differs_from_the_benchmark(msc, tmp_path):
    from rsbench.training.config import apply_settings
    from rsbench.training.runner import Run

    shipped = Run(load_benchmark("mini-msc"), RunRequest(model="tiny", data=str(msc),
                                                          out=str(tmp_path)))
    assert shipped.identity["non_default"] == {}
    cfg = load_benchmark("mini-msc", {"lr": 1e-3})
    cfg["settings"] = apply_settings(cfg, ["augment.hflip=false", "model_options.width=4"])
    other = Run(cfg, RunRequest(model="tiny", data=str(msc), out=str(tmp_path), seed=3))
    assert other.identity["non_default"] == {"augment.hflip": False, "optimizer.lr": 0.001,
                                             "model_options.width": 4}
    assert other.identity["settings"]["model"]["kwargs"]["width"] == 4
    assert other.identity["fingerprint"] != shipped.identity["fingerprint"]
    assert not tmp_path.joinpath("mini-msc").exists()  # nothing written before training


def test_a_model_that_cannot_be_built_leaves_no_run_folder(msc, tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        run_benchmark(_cfg("mini-msc", epochs=1), RunRequest(model="nope", data=str(msc),
                                                             out=str(out)))
    with pytest.raises(InputError, match="missing.pth does not exist"):
        run_benchmark(_cfg("mini-msc", epochs=1), RunRequest(
            model="fine-tune", data=str(msc), out=str(out), weights=str(tmp_path / "missing.pth")))
    assert not out.exists()  # `rsbench report` would list such folders as unfinished runs
    # a finished run that cannot be rebuilt for --resume keeps its final metrics
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    req = RunRequest(model="tiny", data=str(msc), out=str(out), max_train_batches=1,
                     weights=str(weights))
    run_benchmark(_cfg("mini-msc", epochs=1, batch_size=8), req)
    weights.unlink()
    req.resume = True
    with pytest.raises(InputError, match="does not exist"):
        run_benchmark(_cfg("mini-msc", epochs=1, batch_size=8), req)
    assert (tf.run_dir(out, "mini-msc", "tiny+pretrained") / "metrics.json").exists()


def test_wrong_dataset_kind_is_one_clear_error(psc, tmp_path):
    with pytest.raises(InputError, match=r"holds a 'psc5' dataset but benchmark 'mini-msc'"):
        run_benchmark(_cfg("mini-msc"), RunRequest(model="tiny", data=str(psc),
                                                   out=str(tmp_path)))


def test_every_benchmark_hint_names_a_real_command_and_its_options():
    # the wrong-dataset error ends with the benchmark's "build it with `rsbench ...`" hint
    import re

    import click

    from rsbench.cli.main import cli
    from rsbench.training.config import available_benchmarks

    ctx = click.Context(cli)
    for name in available_benchmarks():
        hint = load_benchmark(name)["dataset"].get("hint", "")
        m = re.search(r"`rsbench ([a-z-]+)([^`]*)`", hint)
        assert m, (name, hint)
        cmd = cli.get_command(ctx, m.group(1))
        assert cmd is not None, (name, hint)
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
        for option in re.findall(r"--[a-z-]+", m.group(2)):
            assert option in opts, (name, option)


def test_every_benchmark_says_what_its_paper_does_not_state():
    from rsbench.training.config import available_benchmarks

    for name in available_benchmarks():
        unstated = load_benchmark(name)["unstated"]
        assert {"normalize", "final_model"} <= set(unstated), name
        assert all(isinstance(v, str) and len(v) > 30 for v in unstated.values()), name
    assert "batching" in load_benchmark("msc")["unstated"]


def _cli_env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{PROJECT}", "OMP_NUM_THREADS": "1",
            "RSBENCH_QUIET": "1"}


_CLI = ("import sys, training_fixtures as tf; tf.register(); "
        "from rsbench.cli.main import main; sys.exit(main(sys.argv[1:]))")


def test_cli_one_line_error_for_wrong_dataset(psc, tmp_path):
    p = subprocess.run([sys.executable, "-c", _CLI, "run", "msc", "--model", "tiny",
                        "--data", str(psc), "--out", str(tmp_path)],
                       capture_output=True, text=True, env=_cli_env(), timeout=120)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "benchmark 'msc' needs 'msc'" in p.stderr


def test_killed_run_leaves_no_final_metrics_and_resumes(msc, tmp_path):
    args = [sys.executable, "-c", _CLI, "run", "mini-msc", "--model", "tiny", "--data", str(msc),
            "--out", str(tmp_path), "--workers", "0", "--batch-size", "8", "--epochs", "400",
            "--input-size", "16"]
    proc = subprocess.Popen(args, env=_cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (tf.run_dir(tmp_path, "mini-msc", "tiny") / "checkpoint.pt").exists() \
                and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = tf.run_dir(tmp_path, "mini-msc", "tiny")
    assert (run / "checkpoint.pt").exists()
    assert not (run / "metrics.json").exists()
    epoch = torch.load(run / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= epoch < 400
    # continue it with the same settings: it finishes and writes the final metrics
    p = subprocess.run([*args, "--resume"], env=_cli_env(), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    m = json.loads((run / "metrics.json").read_text())
    assert m["complete"] and m["epochs"] == 400
    hist = (run / "history.csv").read_text().splitlines()
    assert len(hist) == 401


def _fake_resnet34_file(path: Path) -> Path:
    import torchvision

    torch.manual_seed(5)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    return path


def _one_step_from_weights(model: str, msc: Path, tmp_path: Path, capsys) -> Path:
    """`rsbench run mini-msc --model MODEL --weights FILE` for one step; returns the weights."""
    from rsbench.cli.main import main

    weights = _fake_resnet34_file(tmp_path / "resnet34.pth")
    code = main(["--quiet", "run", "mini-msc", "--model", model, "--data", str(msc),
                 "--backbone", "resnet34", "--weights", str(weights), "--input-size", "0",
                 "--epochs", "1", "--batch-size", "4", "--max-train-batches", "1",
                 "--workers", "0", "--out", str(tmp_path / "runs")])
    assert code == 0, capsys.readouterr().err
    return weights


def test_cli_fine_tune_uses_a_local_weights_file_and_native_size(msc, tmp_path, capsys):
    weights = _one_step_from_weights("fine-tune", msc, tmp_path, capsys)
    run = tf.run_dir(tmp_path / "runs", "mini-msc", "fine-tune")
    conf = json.loads((run / "config.json").read_text())
    assert conf["input_size"] == 0 and conf["weights"] == str(weights)
    assert "resized" not in (run / "run.log").read_text()
    # every task's network started from the file: one Adam step at lr 1e-4 moves a weight by
    # at most about 1e-4, while a fresh random initialisation would differ by ~1e-2
    start = torch.load(weights, weights_only=True)["layer4.1.conv2.weight"]
    state = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    trained = [v for k, v in state.items() if k.endswith("backbone.layer4.1.conv2.weight")]
    assert len(trained) == 3
    for t in trained:
        assert (t - start).abs().max().item() < 2e-4


def test_cli_fine_tune_offline_without_weights_is_one_line(msc, tmp_path, capsys, monkeypatch):
    import torchvision

    from rsbench.cli.main import main

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models.ResNet34_Weights.IMAGENET1K_V1.__class__,
                        "get_state_dict", offline)
    code = main(["run", "mini-msc", "--model", "fine-tune", "--data", str(msc), "--backbone",
                 "resnet34", "--epochs", "1", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0, err
    assert "could not download torchvision's ImageNet weights" in err and "--weights PATH" in err
    assert not (tf.run_dir(tmp_path / "runs", "mini-msc", "fine-tune") / "metrics.json").exists()


def test_pretrained_weights_on_another_model_get_their_own_method_name(msc, tmp_path, capsys):
    _one_step_from_weights("shared-specific", msc, tmp_path, capsys)
    # kept apart from the from-scratch shared-specific row of the report
    assert (tf.run_dir(tmp_path / "runs", "mini-msc", "shared-specific+pretrained") /
            "metrics.json").exists()
    assert not (tmp_path / "runs" / "mini-msc" / "shared-specific").exists()


def test_proportional_batching_is_one_pass_over_every_training_image(msc, tmp_path):
    from rsbench.training.data import EpochBatches, plan_epoch

    # merced 24 train rows, aid 32, nwpu 16: batch 8 -> 3, 4, 2 batches per pass
    samplers = [EpochBatches(np.arange(n), 8, seed=0, group=g) for g, n in
                enumerate((24, 32, 16))]
    plan = plan_epoch(samplers, "proportional", seed=0, epoch=0)
    assert sorted(plan) == [(0,)] * 3 + [(1,)] * 4 + [(2,)] * 2
    assert plan == plan_epoch(samplers, "proportional", seed=0, epoch=0)
    assert plan_epoch(samplers, "per-task", seed=0, epoch=0) == [(0, 1, 2)] * 4
    cfg = _cfg("mini-msc", epochs=1, batch_size=8)
    cfg["batching"] = "proportional"
    m = run_benchmark(cfg, RunRequest(model="tiny", data=str(msc), out=str(tmp_path)))
    hist = (Path(m["run_folder"]) / "history.csv").read_text().splitlines()
    header, row = hist[0].split(","), hist[1].split(",")
    assert int(row[header.index("samples")]) == 24 + 32 + 16  # per-task draws 4 * 3 * 8
    assert all(float(row[header.index(f"loss_{t}")]) > 0 for t in ("merced", "aid", "nwpu"))
    conf = json.loads((Path(m["run_folder"]) / "config.json").read_text())
    assert conf["identity"]["non_default"]["batching"] == "proportional"
    cfg["batching"] = "mixed"
    with pytest.raises(UsageError, match="batching 'mixed' is not one of per-task, "
                                         "proportional"):
        run_benchmark(cfg, RunRequest(model="tiny", data=str(msc), out=str(tmp_path)))


def test_taiga_progress_is_evaluated_every_ten_epochs_as_the_paper_does():
    from rsbench.training.config import available_benchmarks

    for name in available_benchmarks():
        if name.startswith("taiga"):
            cfg = load_benchmark(name)
            assert cfg["eval_every"] == 10 and cfg["val_split"] == "val", name
