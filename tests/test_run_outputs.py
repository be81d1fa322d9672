"""What a run writes around its metrics: curves.png always, TensorBoard events with
--tensorboard (read back with TensorBoard's own event reader), one line when it is missing."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest
import torch
import training_fixtures as tf
from PIL import Image


@pytest.fixture(autouse=True)
def _small():
    torch.set_num_threads(1)
    tf.register()


@pytest.fixture(scope="module")
def msc(tmp_path_factory) -> Path:
    return tf.write_msc(tmp_path_factory.mktemp("d") / "mini-msc", per_class=5, size=16)


def _run(msc: Path, out: Path, *extra: str) -> int:
    from rsbench.cli.main import main

    return main(["--quiet", "run", "mini-msc", "--model", "tiny", "--data", str(msc),
                 "--out", str(out), "--epochs", "2", "--batch-size", "4",
                 "--max-train-batches", "2", "--input-size", "0", "--workers", "0",
                 "--device", "cpu", "--set", "eval_every=1", *extra])


def test_run_writes_curves_and_tensorboard_scalars(msc, tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert _run(msc, tmp_path, "--weighting", "dwa", "--tensorboard") == 0
    run = tf.run_dir(tmp_path, "mini-msc", "tiny+dwa")
    with Image.open(run / "curves.png") as im:
        assert im.format == "PNG" and im.size[0] == 700
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    tasks = ("merced", "aid", "nwpu")
    assert {f"loss_step/{t}" for t in tasks} <= tags
    assert {f"loss/{t}" for t in tasks} | {"loss/sum", "lr"} <= tags
    assert {f"weight/{t}" for t in tasks} <= tags
    assert {f"test/{t}/oa" for t in tasks} <= tags
    assert [e.step for e in acc.Scalars("loss_step/aid")] == [0, 1, 2, 3]  # 2 epochs x 2 steps
    assert [e.step for e in acc.Scalars("loss/aid")] == [1, 2]
    # the final evaluation's OA is logged at the last epoch
    import json

    final = json.loads((run / "metrics.json").read_text())["tasks"]["aid"]["oa"]
    assert acc.Scalars("test/aid/oa")[-1].value == pytest.approx(final)


def test_tensorboard_missing_is_one_line_and_no_run(msc, tmp_path, capsys, monkeypatch) -> None:
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    capsys.readouterr()
    assert _run(msc, tmp_path, "--tensorboard") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'rsbench[tensorboard]'" in err[0]
    assert not (tmp_path / "mini-msc").exists()
