"""Launchers on this machine (issue 18, part 1; issue 21 §3b): `reproduce --jobs 2` runs two
runs at once and fills the table with the serial command's metrics bit for bit; `--status`
and `rsbench status` say what each run is doing; a run another process trains is waited for,
not trained twice; a transfer run waits for its source, and is skipped when that fails; Ctrl-C
stops the whole reproduce with exit 130 and the line that continues it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

import pytest
import torch
import training_fixtures as tf
from click.testing import CliRunner

from rsbench.cli.reproduce import reproduce
from rsbench.cli.run import run_folders, run_in_process
from rsbench.cli.status import status
from rsbench.launch import ledger
from rsbench.launch.jobs import RunJob, expand
from rsbench.launch.local import LocalLauncher, make_slots
from rsbench.locking import active_holder
from rsbench.reports.plan import PlannedRun
from rsbench.reports.reproduce import plan_steps

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent
QUICK = ["--epochs", "1", "--batch-size", "2", "--max-train-batches", "1", "--input-size", "0",
         "--workers", "0", "--device", "cpu"]
ENTRY = """
import sys, training_fixtures as tf
tf.register()
from rsbench.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{PROJECT}", "OMP_NUM_THREADS": "1",
            "RSBENCH_QUIET": "1"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tf.write_msc(tmp_path_factory.mktemp("data") / "mini-msc", per_class=5, size=16)


@pytest.fixture(scope="module")
def serial(data, tmp_path_factory) -> tuple[Path, str]:
    """The serial `reproduce mini-msc` (one run after another in this process, 1 thread)."""
    out = tmp_path_factory.mktemp("serial") / "runs"
    table = out.parent / "table.md"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = CliRunner().invoke(reproduce, ["mini-msc", "--data", str(data), "--out", str(out),
                                           *QUICK, "--table-out", str(table)])
    finally:
        torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    return out, table.read_text()


def occupy(folder: Path) -> None:
    """Leave the remains of another run in ``folder``: the run that should go there fails with
    one plain line naming it (rsbench never overwrites another run)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"identity": {"fingerprint": "0" * 16}}))
    (folder / "checkpoint.pt").write_bytes(b"")


def metrics_by_method(out: Path) -> dict[str, dict]:
    return {json.loads(m.read_text())["method"]: json.loads(m.read_text())["tasks"]
            for m in out.rglob("metrics.json")}


def test_two_jobs_run_at_once_and_fill_the_table_with_the_serial_metrics(data, serial, tmp_path):
    out, table = tmp_path / "runs", tmp_path / "table.md"
    r = CliRunner().invoke(reproduce, ["mini-msc", "--data", str(data), "--out", str(out),
                                       *QUICK, "--jobs", "2", "--threads-per-run", "1",
                                       "--table-out", str(table)])
    assert r.exit_code == 0, r.output
    assert r.output.count("started mini-msc ") == 5 and "1 threads" in r.output
    serial_out, serial_table = serial
    got, want = metrics_by_method(out), metrics_by_method(serial_out)
    assert sorted(got) == ["cross-stitch", "den", "mtln", "single-task", "uncertainty"]
    assert got == want  # bit for bit: the same code at the same thread count
    assert table.read_text() == serial_table
    # two runs really ran at once: their processes' lifetimes overlap
    spans = [(rec["started"], rec["ended"]) for rec in ledger.all_records(out)
             if rec.get("state") == "done"]
    assert len(spans) == 5
    overlap = max(min(a[1], b[1]) - max(a[0], b[0]) for a, b in combinations(spans, 2))
    assert overlap > 0.5, spans
    for conf in out.rglob("config.json"):  # the thread count is stated in every run
        assert json.loads(conf.read_text())["threads"] == 1
    for folder in out.rglob("metrics.json"):  # each run's output is linked from its folder
        assert "rsbench run mini-msc" in (folder.parent / "launch.log").read_text()


def test_status_says_done_skipped_and_not_started(data, serial, tmp_path):
    serial_out, _ = serial
    r = CliRunner().invoke(reproduce, ["mini-msc", "--data", str(data), "--out",
                                       str(serial_out), *QUICK, "--status"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    mtln = next(ln for ln in lines if ln.startswith("mini-msc mtln seed 0"))
    assert " done " in mtln and "merced OA" in mtln and "mini-msc/mtln/" in mtln
    assert any(ln.startswith("mini-msc fine-tune seed 0") and "skipped" in ln
               and "no ImageNet weights" in ln for ln in lines)
    assert lines[-1] == "5 done, 1 skipped"
    # other settings (2 epochs): none of these runs exists yet
    r = CliRunner().invoke(reproduce, ["mini-msc", "--data", str(data), "--out",
                                       str(serial_out), *QUICK, "--epochs", "2", "--status"])
    assert r.output.splitlines()[-1] == "5 not started, 1 skipped"
    r = CliRunner().invoke(status, [str(serial_out)])
    assert r.exit_code == 0 and r.output.splitlines()[-1] == "5 done, 1 skipped", r.output
    r = CliRunner().invoke(status, [str(tmp_path / "nope")])
    assert r.exit_code == 1 and "runs folder" in str(r.exception)


def test_a_failed_run_is_reported_and_does_not_stop_the_others(data, tmp_path):
    out = str(tmp_path / "runs")
    base = ["run", "mini-msc", "--model", "tiny", "--data", str(data), "--out", out,
            "--resume", *QUICK]
    tf.register()
    jobs = [RunJob(f"mini-msc tiny seed {s}", [*base, "--seed", str(s)], s) for s in (0, 1)]
    occupy(run_folders(jobs[0].args)[0])
    lines = []
    outcome = LocalLauncher(jobs, out, run_folders, execute=run_in_process,
                            echo=lambda m, err=False: lines.append(m)).run()
    assert outcome.done == ["mini-msc tiny seed 1"]
    assert [label for label, _ in outcome.failed] == ["mini-msc tiny seed 0"]
    from rsbench.launch.status import launch_status

    st = {s.label: s for s in launch_status(jobs, out, run_folders)}
    failed = st["mini-msc tiny seed 0"]  # its one line names the occupied folder
    assert failed.state == "failed" and str(failed.folder) in failed.detail
    assert dict(outcome.failed)["mini-msc tiny seed 0"] == failed.detail
    assert st["mini-msc tiny seed 1"].state == "done"


def test_a_run_another_process_trains_is_waited_for_not_trained_twice(data, tmp_path):
    out = tmp_path / "runs"
    args = ["run", "mini-msc", "--model", "tiny", "--data", str(data), "--out", str(out),
            "--seed", "0", "--resume", *QUICK[:-6], "--epochs", "40", "--input-size", "0",
            "--workers", "0", "--device", "cpu"]
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    tf.register()
    folder = run_folders(args)[0]
    other = subprocess.Popen([sys.executable, str(entry), *args], env=child_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while active_holder(folder) is None:  # until the other process trains it
            assert other.poll() is None and time.time() < deadline, other.stderr.read()
            time.sleep(0.05)
        lines = []
        job = RunJob("mini-msc tiny seed 0", args, 0)
        outcome = LocalLauncher([job], str(out), run_folders, execute=run_in_process,
                                echo=lambda m, err=False: lines.append(m)).run()
    finally:
        other.wait(timeout=120)
    assert other.returncode == 0
    assert outcome.done == ["mini-msc tiny seed 0"] and not outcome.failed
    assert any(f"process {other.pid} is training it" in ln and "instead of training it twice"
               in ln for ln in lines), lines
    log = (folder / "run.log").read_text()
    assert log.count(" run ") == 1 and "resuming" not in log  # trained once, by the other


def test_a_transfer_run_starts_after_its_source_and_is_skipped_when_it_fails(tmp_path):
    tf.register()
    root = tmp_path / "data"
    msc = tf.write_msc(root / "msc", name="msc", per_class=5, size=16)
    eurosat = tf.write_msc(root / "eurosat", name="transfer-eurosat", tasks=(("eurosat", 3),),
                           per_class=5, size=16)
    plans = [PlannedRun("transfer-eurosat", "tiny", source=("msc", "tiny"))]
    data = [f"msc={msc}", f"transfer-eurosat={eurosat}"]
    out = str(tmp_path / "runs")
    steps = plan_steps(plans, [0], data, QUICK)
    jobs = expand(steps, out, {"epochs": 1, "batch_size": 2, "input_size": 0,
                               "max_train_batches": 1})
    assert [j.label for j in jobs] == ["msc tiny seed 0", "transfer-eurosat tiny-transfer seed 0"]
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    os.environ.update({"PYTHONPATH": child_env()["PYTHONPATH"]})
    outcome = LocalLauncher(jobs, out, run_folders, slots=make_slots(2, [], 1, 1, None),
                            program=[sys.executable, str(entry)],
                            echo=lambda m, err=False: None).run()
    assert len(outcome.done) == 2, outcome
    recs = {r["label"]: r for r in ledger.all_records(out)}
    source, transfer = recs["msc tiny seed 0"], recs["transfer-eurosat tiny-transfer seed 0"]
    assert transfer["started"] >= source["ended"]
    conf = json.loads((Path(transfer["run_folder"]) / "config.json").read_text())
    assert Path(conf["from_run"]) == Path(source["run_folder"])
    # the source fails: its transfer run is skipped, saying why, and never started
    jobs = expand(plan_steps(plans, [1], data, QUICK), out, {})
    occupy(run_folders(jobs[0].args)[0])
    outcome = LocalLauncher(jobs, out, run_folders, execute=run_in_process,
                            echo=lambda m, err=False: None).run()
    assert [label for label, _ in outcome.failed] == ["msc tiny seed 1"]
    assert outcome.skipped == [("transfer-eurosat tiny-transfer seed 1",
                                "the run it starts from (msc tiny seed 1) failed")]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_the_whole_reproduce_with_exit_130(data, tmp_path, jobs):
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "rsbench", "reproduce", "mini-msc", "--data", str(data),
           "--out", str(out), "--epochs", "300", "--batch-size", "2", "--max-train-batches",
           "1", "--input-size", "0", "--workers", "0", "--device", "cpu", "--jobs", jobs,
           "--threads-per-run", "1"] if jobs == "2" else [
        sys.executable, "-m", "rsbench", "reproduce", "mini-msc", "--data", str(data),
        "--out", str(out), "--epochs", "300", "--batch-size", "2", "--max-train-batches", "1",
        "--input-size", "0", "--workers", "0", "--device", "cpu"]
    p = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 180
    while not any(h.read_text().count("\n") >= 2 for h in out.rglob("history.csv")):
        assert p.poll() is None and time.time() < deadline, p.communicate()
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.rstrip().splitlines()[-1].startswith(
        "rsbench: interrupted; continue with: rsbench reproduce mini-msc"), err
    assert "unexpected" not in err
    methods = {p.parts[-4] for p in out.rglob("config.json")}
    assert len(methods) <= int(jobs)  # nothing started after the Ctrl-C
    for rec in ledger.all_records(out):
        assert rec["state"] in ("queued", "interrupted", "skipped"), rec
        if rec["state"] == "interrupted" and jobs == "2":
            with pytest.raises(OSError):  # the run's process has ended
                os.kill(rec["pid"], 0)


def test_run_with_several_seeds_and_jobs_trains_each_seed_in_its_own_process(data, serial,
                                                                             tmp_path):
    from rsbench.cli.run import run

    out = tmp_path / "runs"
    r = CliRunner().invoke(run, ["mini-msc", "--model", "mtln", "--data", str(data), "--out",
                                 str(out), "--seed", "0", "1", *QUICK, "--jobs", "2",
                                 "--threads-per-run", "1"])
    assert r.exit_code == 0, r.output
    pids = {rec["pid"] for rec in ledger.all_records(out)}
    assert len(pids) == 2 and os.getpid() not in pids
    serial_out, _ = serial
    [want] = [json.loads(m.read_text()) for m in serial_out.rglob("mtln/*/0/metrics.json")]
    got = {json.loads(m.read_text())["seed"]: json.loads(m.read_text())
           for m in out.rglob("metrics.json")}
    assert sorted(got) == [0, 1]
    # the same settings as the serial run: same fingerprint, same metrics to the bit
    assert got[0]["fingerprint"] == want["fingerprint"] and got[0]["tasks"] == want["tasks"]
