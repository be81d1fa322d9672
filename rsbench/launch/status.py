"""What every planned run is doing, one line each (``reproduce TABLE --status``,
``rsbench status RUNS_DIR``): done (its metrics), running (PID or SLURM job id, epoch
reached), queued, failed (its last error line), interrupted, not started, skipped (reason).

The run folder is asked first (``metrics.json``: done; its lock: running, by that PID), then the
launch ledger (failed, skipped, submitted to SLURM) and the SLURM queue (``squeue``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from rsbench.launch import ledger
from rsbench.launch.jobs import RunJob, job_from_record, resolve_source
from rsbench.locking import active_holder

Locate = Callable[[list[str]], list[Path]]


@dataclass
class RunStatus:
    label: str
    state: str  # done, running, queued, failed, interrupted, not started, skipped
    detail: str = ""
    folder: Path | None = None

    def line(self, width: int = 0) -> str:
        where = f" [{self.folder}]" if self.folder and self.state != "skipped" else ""
        return f"{self.label:<{width}}  {self.state:<11}  {self.detail}{where}".rstrip()


def slurm_queue() -> dict[str, str]:
    """{job id: state} of the jobs in the SLURM queue (array elements one by one); {} without
    SLURM."""
    if shutil.which("squeue") is None:
        return {}
    try:
        p = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(ln.split(None, 1) for ln in p.stdout.splitlines() if len(ln.split()) == 2)


def metrics_summary(metrics: Mapping) -> str:
    """The headline figures of a finished run, e.g. "merced OA 91.20, aid OA 80.00"."""
    parts = []
    for task, m in (metrics.get("tasks") or {}).items():
        if not isinstance(m, Mapping):
            continue
        for key, name in (("oa", "OA"), ("miou", "mIoU"), ("r2", "R²")):
            if isinstance(m.get(key), int | float):
                value = m[key] if key == "r2" else 100 * m[key]
                parts.append(f"{task} {name} {value:.2f}" if key != "r2"
                             else f"{task} {name} {value:.3f}")
                break
    return ", ".join(parts) or "finished"


def epochs_reached(folder: Path) -> str:
    """"epoch E/N" from the run's history.csv and config.json ("" when unknown)."""
    try:
        with open(folder / "history.csv", newline="") as f:
            done = sum(1 for _ in csv.DictReader(f))
    except OSError:
        done = 0
    try:
        total = json.loads((folder / "config.json").read_text()).get("epochs")
    except (OSError, ValueError, AttributeError):
        total = None
    return f"epoch {done}/{total}" if total else (f"epoch {done}" if done else "")


def _alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def folder_status(label: str, folder: Path, rec: Mapping, queue: Mapping[str, str]) -> RunStatus:
    """The status of a run whose folder is known (it may not exist yet)."""
    jid = rec.get("job_id")
    slurm = ((f"SLURM job {jid}" if rec.get("launcher") == "slurm" else f"job {jid}")
             if jid else "")
    if (folder / "metrics.json").exists():
        try:
            metrics = json.loads((folder / "metrics.json").read_text())
        except (OSError, ValueError):
            metrics = {}
        return RunStatus(label, "done", metrics_summary(metrics), folder)
    holder = active_holder(folder) if folder.is_dir() else None
    progress = epochs_reached(folder) if folder.is_dir() else ""
    if holder is not None:
        who = ", ".join(x for x in (slurm, f"pid {holder[0]}", progress or "starting") if x)
        return RunStatus(label, "running", who, folder)
    on_slurm = rec.get("launcher") == "slurm"
    in_queue = queue.get(str(jid)) if jid and on_slurm else None
    if in_queue:
        state = "running" if in_queue in ("RUNNING", "COMPLETING") else "queued"
        extra = f", {progress} so far" if progress else ""
        return RunStatus(label, state, f"{slurm} {in_queue.lower()}{extra}", folder)
    if rec.get("state") in ("failed", "skipped"):
        state = rec["state"]
        log = rec.get("log")
        return RunStatus(label, state, (rec.get("error") or state)
                         + (f" (log {log})" if log and state == "failed" else ""), folder)
    if rec.get("state") in ("submitted", "running"):
        gone = (shutil.which("squeue") is not None) if on_slurm else (
            not _alive(rec.get("pid") or rec.get("job_pid")))
        if gone:
            err = ledger.last_error(rec.get("log"))
            what = f"{slurm} ended" if jid else "its process ended"
            return RunStatus(label, "failed", f"{what} without finishing"
                             + (f": {err}" if err else "")
                             + (f" (log {rec['log']})" if rec.get("log") else ""), folder)
    if (folder / "checkpoint.pt").exists():
        return RunStatus(label, "interrupted", f"stopped after {progress}; reproduce again "
                                               "(or rsbench run ... --resume) continues it",
                         folder)
    if rec.get("state") in ("queued", "waiting") and _alive(rec.get("launcher_pid")):
        return RunStatus(label, "queued", f"by process {rec['launcher_pid']}", folder)
    if rec.get("state") in ("submitted", "running") and jid:
        return RunStatus(label, "queued", slurm, folder)
    return RunStatus(label, "not started", "", None)


def job_status(job: RunJob, out: str, locate: Locate, queue: Mapping[str, str]) -> RunStatus:
    """The status of one planned run of a launch."""
    from rsbench.errors import RsbenchError

    rec = ledger.read_record(out, job.key)
    if job.skip:
        return RunStatus(job.label, "skipped", job.skip)
    args = resolve_source(job, out)
    if args is None:
        if rec.get("state") in ("failed", "skipped"):
            return RunStatus(job.label, rec["state"], rec.get("error") or "")
        jid = rec.get("job_id")
        if jid and queue.get(str(jid)):
            return RunStatus(job.label, "queued", f"SLURM job {jid} "
                             f"{queue[str(jid)].lower()}, after {job.source_label}")
        return RunStatus(job.label, "not started", f"starts from {job.source_label} once that "
                                                   "has finished")
    try:
        folder = locate(args)[0]
    except (RsbenchError, click.ClickException) as exc:
        if rec.get("run_folder") and Path(rec["run_folder"]).is_dir():  # e.g. data moved since
            return folder_status(job.label, Path(rec["run_folder"]), rec, queue)
        msg = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        return RunStatus(job.label, "not started", "cannot start: " + " ".join(msg.split()))
    return folder_status(job.label, folder, rec, queue)


def launch_status(jobs: Iterable[RunJob], out: str, locate: Locate) -> list[RunStatus]:
    queue = slurm_queue()
    return [job_status(j, out, locate, queue) for j in jobs]


def runs_dir_status(out: str, locate: Locate) -> list[RunStatus]:
    """Every run the ledger of ``out`` knows, then every other run folder in it."""
    queue = slurm_queue()
    lines, seen = [], set()
    for rec in ledger.all_records(out):
        job = job_from_record(rec)
        if job is None:
            continue
        st = job_status(job, out, locate, queue)
        lines.append(st)
        if st.folder:
            seen.add(Path(st.folder).resolve())
    for conf in sorted(Path(out).rglob("config.json")):
        folder = conf.parent
        if ledger.LEDGER in folder.parts or folder.resolve() in seen:
            continue
        try:
            c = json.loads(conf.read_text())
            label = f"{c['benchmark']} {c['method']} seed {c['seed']}"
        except (OSError, ValueError, KeyError, TypeError):
            continue
        lines.append(folder_status(label, folder, {}, queue))
    return lines


def print_status(lines: list[RunStatus], echo=click.echo) -> None:
    width = max((len(s.label) for s in lines), default=0)
    for s in lines:
        echo(s.line(width))
    order = ("done", "running", "queued", "interrupted", "failed", "not started", "skipped")
    counts = {state: sum(s.state == state for s in lines) for state in order}
    echo(", ".join(f"{n} {state}" for state, n in counts.items() if n) or "no runs")
