"""`--launcher submitit-local` and `--launcher slurm` (issue 18, part 1): the runs go to
submitit jobs, `status` follows them, a job signalled as preempted (USR2, submitit's signal) is
requeued and resumes to the metrics of an uninterrupted run, and a transfer run waits for its
source job. The SLURM tests start a one-node cluster (tests/slurm/start_slurm.sh, as root)
and are skipped, saying why, where SLURM is not installed or does not come up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import training_fixtures as tf

pytest.importorskip("submitit", reason="submitit (the optional extra rsbench[slurm]) is absent")

from rsbench.cli.run import run_folders, run_in_process  # noqa: E402
from rsbench.launch import ledger  # noqa: E402
from rsbench.launch.jobs import RunJob, expand  # noqa: E402
from rsbench.launch.options import LaunchOptions  # noqa: E402
from rsbench.launch.slurm import submit  # noqa: E402
from rsbench.launch.status import launch_status  # noqa: E402
from rsbench.locking import lock_holder  # noqa: E402
from rsbench.reports.plan import PlannedRun  # noqa: E402
from rsbench.reports.reproduce import plan_steps  # noqa: E402

TESTS = Path(__file__).resolve().parent
LONG = ["--epochs", "150", "--batch-size", "2", "--max-train-batches", "1", "--input-size", "0",
        "--workers", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tf.write_msc(tmp_path_factory.mktemp("data") / "mini-msc", per_class=5, size=16)


@pytest.fixture(autouse=True)
def importable_fixtures(monkeypatch):
    """Jobs are new processes: they import the tiny test model from tests/."""
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}{os.pathsep}{TESTS.parent}")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("RSBENCH_QUIET", "1")
    tf.register()


def long_run(data: Path, out: Path, seed: int = 0) -> RunJob:
    args = ["run", "mini-msc", "--model", "tiny", "--data", str(data), "--out", str(out),
            "--seed", str(seed), "--resume", *LONG]
    return RunJob(f"mini-msc tiny seed {seed}", args, seed)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> dict:
    """The metrics of the long run trained in one go, in this process, on one thread."""
    tf.register()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        job = long_run(data, tmp_path_factory.mktemp("ref") / "runs")
        assert run_in_process(job.args) is None
    finally:
        torch.set_num_threads(threads)
    return json.loads((run_folders(job.args)[0] / "metrics.json").read_text())["tasks"]


def wait_for(what, timeout: float = 240, every: float = 0.1):
    deadline = time.time() + timeout
    while not (result := what()):
        assert time.time() < deadline, f"timed out waiting for {what.__doc__}"
        time.sleep(every)
    return result


def epochs_done(folder: Path) -> int:
    """rows of the run's history"""
    try:
        return (folder / "history.csv").read_text().count("\n") - 1
    except OSError:
        return 0


def test_submitit_local_job_preempted_is_requeued_and_resumes_identically(
        data, uninterrupted, tmp_path):
    out = tmp_path / "runs"
    job = long_run(data, out)
    opts = LaunchOptions(launcher="submitit-local", threads_per_run=1, time="60")
    [(_, job_id)] = submit([job], str(out), opts, "test", run_in_process, run_folders,
                           prelude=tf.register)
    folder = run_folders(job.args)[0]
    wait_for(lambda: epochs_done(folder) >= 2)
    [st] = launch_status([job], str(out), run_folders)
    assert st.state == "running" and f"job {job_id}" in st.detail and "epoch" in st.detail
    pid, _ = lock_holder(folder)
    os.kill(pid, signal.SIGUSR2)  # what submitit's controller sends before the time limit
    wait_for(lambda: (folder / "metrics.json").exists())
    log = (folder / "run.log").read_text()
    assert "resuming" in log, log  # the requeued job continued the run
    assert json.loads((folder / "metrics.json").read_text())["tasks"] == uninterrupted
    assert f"slurm-{job_id}.log" in os.listdir(folder)
    wait_for(lambda: launch_status([job], str(out), run_folders)[0].state == "done")
    # a second launch of the same run submits nothing: the run has finished
    assert submit([job], str(out), opts, "test", run_in_process, run_folders) == []


# --------------------------------------------------------------------------------------------
# a real one-node SLURM cluster
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node SLURM cluster of this test session (its own config, ports and daemons)."""
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("starting a test SLURM cluster needs root")
    folder = tmp_path_factory.mktemp("slurm")
    p = subprocess.run(["bash", str(TESTS / "slurm" / "start_slurm.sh"), str(folder)],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        subprocess.run(["bash", str(TESTS / "slurm" / "stop_slurm.sh"), str(folder)])
        pytest.skip(f"the test SLURM cluster did not come up: {p.stderr.strip()[-300:]}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")
    yield folder
    subprocess.run(["bash", str(TESTS / "slurm" / "stop_slurm.sh"), str(folder)])
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def squeue_state(job_id: str) -> str:
    p = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T"], capture_output=True,
                       text=True)
    return p.stdout.strip()


def test_slurm_job_requeued_after_usr2_resumes_identically(slurm, data, uninterrupted,
                                                           tmp_path):
    out = tmp_path / "runs"
    job = long_run(data, out)
    opts = LaunchOptions(launcher="slurm", threads_per_run=1, time="30")
    [(_, job_id)] = submit([job], str(out), opts, "test", run_in_process, run_folders,
                           prelude=tf.register)
    folder = run_folders(job.args)[0]
    wait_for(lambda: epochs_done(folder) >= 2)
    [st] = launch_status([job], str(out), run_folders)
    assert st.state == "running" and f"SLURM job {job_id}" in st.detail
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    wait_for(lambda: squeue_state(job_id) == "PENDING")  # requeued
    [st] = launch_status([job], str(out), run_folders)
    assert st.state == "queued" and "so far" in st.detail, st
    # SLURM holds a requeued job back for two minutes: let it start now
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    wait_for(lambda: (folder / "metrics.json").exists())
    assert "resuming" in (folder / "run.log").read_text()
    assert json.loads((folder / "metrics.json").read_text())["tasks"] == uninterrupted
    assert (folder / f"slurm-{job_id}.log").read_text().count("Requeued job") == 1


def test_slurm_transfer_job_waits_for_its_source_job(slurm, tmp_path):
    root = tmp_path / "data"
    msc = tf.write_msc(root / "msc", name="msc", per_class=5, size=16)
    eurosat = tf.write_msc(root / "eurosat", name="transfer-eurosat", tasks=(("eurosat", 3),),
                           per_class=5, size=16)
    quick = ["--epochs", "2", "--batch-size", "2", "--max-train-batches", "1", "--input-size",
             "0", "--workers", "0", "--device", "cpu"]
    steps = plan_steps([PlannedRun("transfer-eurosat", "tiny", source=("msc", "tiny"))], [0],
                       [f"msc={msc}", f"transfer-eurosat={eurosat}"], quick)
    out = str(tmp_path / "runs")
    jobs = expand(steps, out, {"epochs": 2, "batch_size": 2, "input_size": 0,
                               "max_train_batches": 1})
    submitted = submit(jobs, out, LaunchOptions(launcher="slurm", threads_per_run=1), "test",
                       run_in_process, run_folders, prelude=tf.register)
    assert [j.label for j, _ in submitted] == [j.label for j in jobs]
    wait_for(lambda: all(s.state == "done" for s in launch_status(jobs, out, run_folders)))
    recs = {r["label"]: r for r in ledger.all_records(out)}
    source, transfer = recs["msc tiny seed 0"], recs["transfer-eurosat tiny-transfer seed 0"]
    assert transfer["started"] >= source["ended"]
    conf = json.loads((Path(transfer["run_folder"]) / "config.json").read_text())
    assert Path(conf["from_run"]) == Path(source["run_folder"])
