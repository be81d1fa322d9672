"""Run folders received from someone else: no code runs from them, one run per folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import training_fixtures as tf

from rsbench.errors import InputError, UsageError
from rsbench.training.config import load_benchmark
from rsbench.training.runner import Run, RunRequest, run_benchmark

PROJECT = Path(__file__).resolve().parents[2]


class _Payload:
    """Unpickling this writes the marker file: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture(autouse=True)
def _small():
    torch.set_num_threads(1)
    tf.register()


@pytest.fixture(scope="module")
def msc(tmp_path_factory) -> Path:
    return tf.write_msc(tmp_path_factory.mktemp("d") / "mini-msc", per_class=5, size=16)


def _cfg():
    cfg = load_benchmark("mini-msc", {"epochs": 1, "batch_size": 4, "input_size": 16})
    cfg["backbone"] = None
    return cfg


def _finished_run(msc: Path, out: Path) -> Path:
    m = run_benchmark(_cfg(), RunRequest(model="tiny", data=str(msc), out=str(out),
                                         max_train_batches=1))
    return Path(m["run_folder"])


def _plant(run: Path, marker: Path) -> None:
    torch.save({"model": {}, "evil": _Payload(marker)}, run / "checkpoint.pt")


def test_crafted_checkpoint_is_refused_by_resume_in_one_line(msc, tmp_path, capsys):
    run = _finished_run(msc, tmp_path / "runs")
    (run / "metrics.json").unlink()  # an "interrupted" run someone shared
    marker = tmp_path / "marker"
    _plant(run, marker)
    with pytest.raises(InputError) as err:
        run_benchmark(_cfg(), RunRequest(model="tiny", data=str(msc), out=str(tmp_path / "runs"),
                                         max_train_batches=1, resume=True))
    msg = str(err.value)
    assert "\n" not in msg
    assert str(run / "checkpoint.pt") in msg and "not a safe rsbench checkpoint" in msg
    assert not marker.exists()


def test_crafted_checkpoint_is_refused_by_from_and_taiga_map(msc, tmp_path):
    from rsbench.reports.taiga_map import load_run_model
    from rsbench.training.run_folder import rebuild_model

    run = _finished_run(msc, tmp_path / "runs")
    marker = tmp_path / "marker"
    _plant(run, marker)
    for load in (lambda: rebuild_model(run),
                 lambda: load_run_model(run, _Bands(), torch.device("cpu"))):
        with pytest.raises(InputError, match="not a safe rsbench checkpoint"):
            load()
    eurosat = tf.write_msc(tmp_path / "eurosat", name="transfer-eurosat",
                           tasks=(("eurosat", 3),), per_class=5, size=16)
    cfg = load_benchmark("transfer-eurosat", {"epochs": 1, "batch_size": 4, "input_size": 16})
    with pytest.raises(InputError, match="not a safe rsbench checkpoint"):
        run_benchmark(cfg, RunRequest(model="tiny", data=str(eurosat), out=str(tmp_path / "t"),
                                      from_run=str(run), max_train_batches=1))
    assert not marker.exists()


class _Bands:
    """The part of a dataset taiga-map's loader reads: the image array's bands."""

    root = "data"
    manifest = {"arrays": {"image": {"shape": [1, 16, 16, 3]}}}


def test_cli_names_a_crafted_checkpoint_in_one_line(msc, tmp_path):
    run = _finished_run(msc, tmp_path / "runs")
    marker = tmp_path / "marker"
    _plant(run, marker)
    eurosat = tf.write_msc(tmp_path / "eurosat", name="transfer-eurosat",
                           tasks=(("eurosat", 3),), per_class=5, size=16)
    env = {**os.environ, "PYTHONPATH": f"{PROJECT / 'tests'}{os.pathsep}{PROJECT}",
           "OMP_NUM_THREADS": "1", "RSBENCH_QUIET": "1"}
    code = ("import sys, training_fixtures as tf; tf.register(); "
            "from rsbench.cli.main import main; sys.exit(main(sys.argv[1:]))")
    p = subprocess.run([sys.executable, "-c", code, "run", "transfer-eurosat", "--model", "tiny",
                        "--data", str(eurosat), "--from", str(run), "--out", str(tmp_path / "t"),
                        "--epochs", "1", "--input-size", "16", "--workers", "0"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().count("\n") == 0 and "not a safe rsbench checkpoint" in p.stderr
    assert not marker.exists()


_HOLD = ("import sys, time; from pathlib import Path; from rsbench.locking import folder_lock\n"
         "with folder_lock(Path(sys.argv[1]), 'rsbench run (other)'):\n"
         "    Path(sys.argv[2]).write_text('held')\n"
         "    time.sleep(120)\n")


def test_a_second_run_into_a_busy_run_folder_is_refused(msc, tmp_path):
    req = RunRequest(model="tiny", data=str(msc), out=str(tmp_path / "runs"),
                     max_train_batches=1)
    folder = Run(_cfg(), req).dir
    flag = tmp_path / "flag"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), str(flag)], env=env)
    try:
        deadline = time.time() + 60
        while not flag.exists() and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(UsageError) as err:
            run_benchmark(_cfg(), req)
        msg = str(err.value)
        assert str(folder) in msg and f"process {holder.pid}" in msg and "\n" not in msg
        assert not (folder / "config.json").exists()  # nothing written by the refused run
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed): its lock does not block
    m = run_benchmark(_cfg(), req)
    assert Path(m["run_folder"]) == folder and m["complete"]
