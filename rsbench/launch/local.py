"""Run a launch's jobs on this machine: one at a time in this process (``--jobs 1``, the serial
``reproduce``) or up to N at once, each an ``rsbench run`` subprocess with its own CPU threads
or GPU(s) (``--jobs N``).

Whatever the mode, the same rules hold: a run starts after the run it starts from (``--from``)
has finished, and is skipped, with the reason, when that one failed; a failed run never stops
the others; a run whose folder another process is training (its lock) is not started twice but
waited for, saying so; Ctrl-C stops every run (each keeps its last epoch's checkpoint) and is
raised again so that the command exits 130 with the line that continues it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from rsbench.launch import ledger
from rsbench.launch.jobs import RunJob, job_fields, resolve_source
from rsbench.locking import active_holder

Execute = Callable[[list[str]], "str | None"]  # run in this process: None, or its error line
Echo = Callable[..., None]  # click.echo's signature (message, err=False)
Locate = Callable[[list[str]], list[Path]]  # the run folder(s) `rsbench run ARGS` writes


@dataclass
class Slot:
    """Where one concurrent run goes: its environment (threads, GPUs) and extra arguments."""

    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    gpus: int = 0  # > 1: the run is started with torchrun, one process per GPU


def cpu_count() -> int:
    """Cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def make_slots(jobs: int, gpus: Sequence[str], gpus_per_run: int,
               threads_per_run: int | None, workers: int | None) -> list[Slot]:
    """``jobs`` slots: with GPUs, ``gpus_per_run`` of them each (CUDA_VISIBLE_DEVICES); the CPU
    threads divided between the runs (``threads_per_run``, default cores // jobs) and, unless
    ``workers`` was given, loader workers to match (threads - 1)."""
    from rsbench.errors import UsageError

    if gpus and gpus_per_run * jobs > len(gpus):
        raise UsageError(f"--jobs {jobs} --gpus-per-run {gpus_per_run} needs "
                         f"{jobs * gpus_per_run} GPUs; {len(gpus)} are visible "
                         f"({','.join(gpus)}); lower --jobs")
    threads = threads_per_run or max(1, cpu_count() // jobs)
    slots = []
    for i in range(jobs):
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[i * gpus_per_run:(i + 1) * gpus_per_run])
        extra = [] if workers is not None else ["--workers", str(max(0, min(6, threads - 1)))]
        slots.append(Slot(env, extra, gpus_per_run if gpus else 0))
    return slots


def visible_gpus() -> list[str]:
    """The GPUs this process may give out: CUDA_VISIBLE_DEVICES's list, else every device."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g for g in listed.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() \
        else []


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Running:
    job: RunJob
    proc: subprocess.Popen
    folder: Path
    log: Path
    started: float


class _SigintFlag:
    """Notes that Ctrl-C was pressed while a run executes in this process: a run that turns the
    KeyboardInterrupt into an error of its own (click's Abort, a library's ValueError) must not
    let the launch go on to the next run."""

    def __init__(self):
        self.hit = False

    def __enter__(self):
        self._previous = None
        with contextlib.suppress(ValueError):  # not the main thread: nothing to install
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        self.hit = True
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class LocalLauncher:
    """Carries out ``jobs`` into the runs folder ``out``: in this process (``slots`` None) with
    ``execute``, else as subprocesses ``program run ...``, one per slot at a time."""

    def __init__(self, jobs: Sequence[RunJob], out: str, locate: Locate, *,
                 execute: Execute | None = None, slots: Sequence[Slot] | None = None,
                 program: Sequence[str] | None = None, echo: Echo = click.echo,
                 poll_s: float = 0.2):
        self.jobs, self.out, self.locate, self.execute = list(jobs), out, locate, execute
        self.slots = list(slots) if slots else None
        self.program = list(program or [sys.executable, "-m", "rsbench"])
        self.echo, self.poll_s = echo, poll_s
        self.state: dict[str, str] = {}
        self.outcome = Outcome()
        self.running: dict[int, _Running] = {}
        self._waiting: set[str] = set()

    # bookkeeping ---------------------------------------------------------------------------
    def _finish(self, job: RunJob, state: str, line: str | None = None, **fields) -> None:
        self.state[job.label] = state
        ledger.update(self.out, job.key, state=state, label=job.label, error=line,
                      ended=time.time(), **fields)
        if state == "done":
            self.outcome.done.append(job.label)
        elif state == "failed":
            self.outcome.failed.append((job.label, line or "failed"))
            self.echo(f"rsbench: error: {job.label}: {line}", err=True)
        elif state == "skipped":
            self.outcome.skipped.append((job.label, line or ""))
            self.echo(f"# skipped {job.label}: {line}")

    def _ready(self, job: RunJob) -> tuple[list[str], Path] | None:
        """(arguments, run folder) when ``job`` can start now; None to wait (or when it was
        settled as failed or skipped)."""
        from rsbench.errors import RsbenchError

        if job.source_label and job.source_label in self.state:
            source_state = self.state[job.source_label]
            if source_state in ("failed", "skipped"):
                self._finish(job, "skipped", f"the run it starts from ({job.source_label}) "
                                             f"{source_state}")
                return None
            if source_state != "done":
                return None
        args = resolve_source(job, self.out)
        if args is None:
            self._finish(job, "failed", f"no finished {' '.join(job.source)} run of seed "
                                        f"{job.seed} in {self.out} to start from")
            return None
        try:
            folder = self.locate(args)[0]
        except (RsbenchError, click.ClickException) as exc:
            msg = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            self._finish(job, "failed", " ".join(msg.split()))
            return None
        holder = active_holder(folder)
        if holder is not None and holder[0] != os.getpid():
            if job.label not in self._waiting:
                self._waiting.add(job.label)
                self.echo(f"# {job.label}: process {holder[0]} is training it "
                          f"({holder[1] or folder}); waiting for it instead of training it "
                          "twice")
                ledger.update(self.out, job.key, state="waiting", label=job.label,
                              pid=holder[0], run_folder=str(folder))
            return None
        return args, folder

    # the two ways of running -----------------------------------------------------------------
    def _run_here(self, job: RunJob, args: list[str], folder: Path) -> None:
        import shlex

        self.echo(f"$ rsbench {shlex.join(args)}")
        ledger.update(self.out, job.key, state="running", label=job.label, pid=os.getpid(),
                      launcher="serial", started=time.time(), run_folder=str(folder),
                      args=args)
        with _SigintFlag() as sigint:
            try:
                error = self.execute(args)
            except KeyboardInterrupt:
                sigint.hit = True
                error = "interrupted"
        if sigint.hit:
            self._finish(job, "interrupted", "interrupted (Ctrl-C)")
            raise KeyboardInterrupt
        if error is not None and self._held_elsewhere(job, folder):
            return
        self._finish(job, "done" if error is None else "failed", error)

    def _start(self, job: RunJob, args: list[str], folder: Path, slot_index: int) -> None:
        import shlex

        slot = self.slots[slot_index]
        log = ledger.log_path(self.out, job.key)
        log.parent.mkdir(parents=True, exist_ok=True)
        prefix = self.program
        if slot.gpus > 1:  # one run on several GPUs: torchrun, one process per GPU
            prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                      "--nproc-per-node", str(slot.gpus), *self.program[1:]]
        cmd = [*prefix, *args, *slot.args]
        with open(log, "w") as fh:
            fh.write(f"$ {shlex.join(cmd)}\n")
            fh.flush()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env={**os.environ, **slot.env})
        now = time.time()
        self.running[slot_index] = _Running(job, proc, folder, log, now)
        self.state[job.label] = "running"
        ledger.update(self.out, job.key, state="running", label=job.label, pid=proc.pid,
                      launcher="local", started=now, run_folder=str(folder), log=str(log),
                      args=[*args, *slot.args], env=slot.env)
        gpu = slot.env.get("CUDA_VISIBLE_DEVICES")
        self.echo(f"started {job.label} (pid {proc.pid}, "
                  + (f"GPU {gpu}, " if gpu else f"{slot.env['OMP_NUM_THREADS']} threads, ")
                  + f"log {log})")

    def _reap(self) -> None:
        for i, r in list(self.running.items()):
            rc = r.proc.poll()
            if rc is None:
                continue
            del self.running[i]
            if r.folder.is_dir():  # the run's output, next to the run
                link = r.folder / "launch.log"
                with contextlib.suppress(OSError):
                    link.unlink(missing_ok=True)
                    link.symlink_to(os.path.relpath(r.log, r.folder))
            took = time.time() - r.started
            if rc == 0:
                self.echo(f"finished {r.job.label} in {took:.1f} s")
                self._finish(r.job, "done")
            elif not self._held_elsewhere(r.job, r.folder):
                self._finish(r.job, "failed", ledger.last_error(r.log) or f"exit code {rc}",
                             log=str(r.log))

    def _held_elsewhere(self, job: RunJob, folder: Path) -> bool:
        """After a failure: was it another process holding the run (a race with a second
        launcher)? Then the job waits for that process instead of failing."""
        holder = active_holder(folder)
        if holder is None or holder[0] == os.getpid():
            return False
        self.state.pop(job.label, None)
        self._pending.insert(0, job)
        return True

    # main loop ------------------------------------------------------------------------------
    def run(self) -> Outcome:
        self._pending = []
        for job in self.jobs:
            if job.skip:
                ledger.update(self.out, job.key, **job_fields(job))
                self._finish(job, "skipped", job.skip)
            else:
                self.state[job.label] = "queued"
                ledger.update(self.out, job.key, state="queued", error=None,
                              launcher_pid=os.getpid(), **job_fields(job))
                self._pending.append(job)
        try:
            while self._pending or self.running:
                self._reap()
                started = False
                for job in list(self._pending):
                    free = ([i for i in range(len(self.slots)) if i not in self.running]
                            if self.slots else [None])
                    if not free:
                        break
                    ready = self._ready(job)
                    if job.label in self.state and self.state[job.label] in (
                            "failed", "skipped"):
                        self._pending.remove(job)
                        continue
                    if ready is None:
                        continue
                    self._pending.remove(job)
                    self._waiting.discard(job.label)
                    if self.slots is None:
                        self._run_here(job, *ready)
                    else:
                        self._start(job, *ready, free[0])
                    started = True
                if not started and (self._pending or self.running):
                    time.sleep(self.poll_s if self.running else 1.0)
        except KeyboardInterrupt:
            self._stop_all()
            raise
        return self.outcome

    def _stop_all(self) -> None:
        """Ctrl-C: every run gets SIGINT (it stops after writing nothing half-done), then is
        killed if it has not ended within 30 s."""
        for r in self.running.values():
            with contextlib.suppress(OSError):
                r.proc.send_signal(signal.SIGINT)
        deadline = time.time() + 30
        for r in self.running.values():
            try:
                r.proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
            self._finish(r.job, "interrupted", "interrupted (Ctrl-C)")
        self.running.clear()
