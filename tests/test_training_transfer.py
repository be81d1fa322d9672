"""Real registered models through the runner on tiny inputs, and Table VI transfer from a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import training_fixtures as tf

from rsbench.errors import InputError, UsageError
from rsbench.training.config import load_benchmark
from rsbench.training.runner import RunRequest, run_benchmark


@pytest.fixture(autouse=True)
def _small():
    torch.set_num_threads(1)
    tf.register()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("d")
    return {"msc": tf.write_msc(root / "mini-msc", per_class=5, size=16),
            "psc": tf.write_psc(root / "psc5", per_class=4, size=32),
            "eurosat": tf.write_msc(root / "eurosat", name="transfer-eurosat",
                                    tasks=(("eurosat", 3),), per_class=5, size=16)}


def _run(bench, data, out, model="mtln", size=16, **req):
    cfg = load_benchmark(bench, {"epochs": 1, "batch_size": 4, "input_size": size})
    return run_benchmark(cfg, RunRequest(model=model, data=str(data), out=str(out),
                                         max_train_batches=1, **req))


def test_real_mtln_on_psc_reports_table_ii_components(data, tmp_path):
    m = _run("psc5", data["psc"], tmp_path, size=32)
    b = m["parameters"]["breakdown"]
    for key in ("shared", "pixel_classifier", "attention_per_task", "extractors", "total"):
        assert b[key] > 0, key
    assert m["tasks"]["segmentation"]["pixels"] == 3 * 1 * 32 * 32  # 3 test images
    assert 0 <= m["tasks"]["segmentation"]["miou"] <= 1


def test_transfer_from_a_finished_mtln_run(data, tmp_path):
    src = _run("mini-msc", data["msc"], tmp_path)
    assert src["complete"]
    run = tf.run_dir(tmp_path, "mini-msc", "mtln")
    base = torch.load(run / "checkpoint.pt", weights_only=False)["model"]

    # fine-tuning: a new branch copied from Merced's, shared branch fixed
    t = _run("transfer-eurosat", data["eurosat"], tmp_path, from_run=str(run))
    assert t["method"] == "mtln-transfer"
    new = torch.load(tf.run_dir(tmp_path, "transfer-eurosat", "mtln-transfer") /
                     "checkpoint.pt", weights_only=True)["model"]
    shared = [k for k in base if k.startswith("backbone.") and base[k].is_floating_point()]
    assert shared and all(torch.equal(base[k], new[k]) for k in shared)  # frozen, stats too
    eur = [k for k in new if k.startswith("attention.eurosat.")]
    assert eur and any(not torch.equal(new[k], base[k.replace("eurosat", "merced", 1)])
                       for k in eur if new[k].is_floating_point())  # trained from Merced's copy
    n_new = sum(v.numel() for k, v in new.items() if k.startswith(("attention.eurosat.",
                                                                    "heads.eurosat."))
                and "running_" not in k and "num_batches" not in k)
    assert t["parameters"]["trainable"] == n_new  # only the new branch and classifier learn

    # frozen shared branch + new linear classifier only
    f = _run("transfer-eurosat", data["eurosat"], tmp_path, from_run=str(run), frozen=True)
    assert f["method"] == "mtln-frozen"
    assert json.loads((run / "config.json").read_text())["backbone"] == "wrn28_4"
    assert f["parameters"]["trainable"] == 256 * 3 + 3  # linear head on WRN-28-4's 256 channels


def test_transfer_needs_a_finished_run(data, tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(InputError, match="not a finished run"):
        _run("transfer-eurosat", data["eurosat"], tmp_path, from_run=str(tmp_path / "half"))


def test_frozen_imagenet_probe_trains_only_the_head(data, tmp_path):
    m = _run("transfer-eurosat", data["eurosat"], tmp_path, model="tiny", frozen=True)
    assert m["method"] == "tiny-frozen"
    assert m["parameters"]["trainable"] == 8 * 3 + 3  # the tiny model's linear head


def test_transfer_from_runs_without_a_shared_branch_or_of_another_model(data, tmp_path):
    _run("mini-msc", data["msc"], tmp_path / "src", model="single-task")
    run = tf.run_dir(tmp_path / "src", "mini-msc", "single-task")
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="is a 'single-task' run, not 'mtln'; pass --model "
                                         "single-task"):
        _run("transfer-eurosat", data["eurosat"], out, from_run=str(run))
    with pytest.raises(UsageError, match="'single-task' run has no shared branch"):
        _run("transfer-eurosat", data["eurosat"], out, model="single-task", from_run=str(run))
    # a fine-tune run is rebuilt from its checkpoint alone: no ImageNet file, no download
    conf = json.loads((run / "config.json").read_text())
    spec = {**conf["model_spec"], "name": "fine-tune"}
    (run / "config.json").write_text(json.dumps({**conf, "model": "fine-tune",
                                                 "model_spec": spec}))
    with pytest.raises(UsageError, match="'fine-tune' run has no shared branch"):
        _run("transfer-eurosat", data["eurosat"], out, model="fine-tune", from_run=str(run))
    assert not out.exists()
