"""A launch's runs as SLURM jobs through submitit (``--launcher slurm``), or as submitit's local
jobs on this machine (``--launcher submitit-local``: the same job code, for trying a set-up).

The runs that start from no other run go into one job array; a transfer run is a job of its own
that waits (``--dependency=afterany:``) for the array element of its source. Each job runs
:class:`RunTask`, which is ``rsbench run ... --resume`` in the job's process: a job preempted or
near its time limit gets submitit's signal (USR2, ``--signal=USR2@90``), is requeued
(``scontrol requeue``) and, started again, resumes from the run's last checkpoint, to the
same result as an uninterrupted run. The job's log is linked from the run folder
(``slurm-JOBID.log``); the ledger says which job holds which run, for ``--status``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rsbench.errors import UsageError
from rsbench.launch import ledger
from rsbench.launch.jobs import RunJob, job_fields, resolve_source
from rsbench.launch.options import LaunchOptions, mem_gb, sbatch_lines, time_minutes
from rsbench.launch.status import slurm_queue
from rsbench.locking import active_holder

INSTALL = "pip install 'rsbench[slurm]' (or pip install 'submitit>=1.5')"

try:
    from submitit.helpers import Checkpointable
except ImportError:  # the optional extra is not installed: --launcher slurm says how
    Checkpointable = object  # type: ignore[assignment,misc]


def require_submitit():
    try:
        import submitit
    except ImportError:
        raise UsageError(f"--launcher slurm needs submitit, which is not installed: {INSTALL}"
                         ) from None
    return submitit


class RunFailed(Exception):
    """The run ended with an error (its line is in the job's log and the ledger)."""


class RunTask(Checkpointable):
    """One job: ``rsbench run ARGS --resume`` in this process, recorded in the ledger. Being
    :class:`submitit.helpers.Checkpointable`, it is requeued as it is when preempted or timed
    out; ``--resume`` makes the second start continue the first."""

    def __init__(self, job: RunJob, out: str, execute: Callable[[list[str]], str | None],
                 locate: Callable[[list[str]], list[Path]], source_key: str | None = None,
                 wait_for_source: bool = False, threads: int | None = None,
                 prelude: Callable[[], None] | None = None):
        self.job, self.out, self.execute, self.locate = job, out, execute, locate
        self.source_key, self.wait_for_source, self.prelude = source_key, wait_for_source, prelude
        self.threads = threads

    def _update(self, **fields) -> None:
        ledger.update(self.out, self.job.key, **fields)

    def _source_args(self) -> list[str] | str:
        """The run's arguments with its --from folder, or why it cannot start."""
        while True:
            args = resolve_source(self.job, self.out)
            if args is not None:
                return args
            src = ledger.read_record(self.out, self.source_key) if self.source_key else {}
            state = src.get("state")
            if state in ("failed", "skipped", "interrupted"):
                return f"the run it starts from ({self.job.source_label}) {state}"
            if not self.wait_for_source or state == "done":
                return (f"no finished {self.job.source_label} run in {self.out} to start from "
                        "(it did not finish)")
            time.sleep(2)  # submitit-local has no job dependencies: wait here

    def _link_log(self, folder: Path, job_id: str, log: str) -> None:
        if folder.is_dir():
            link = folder / f"slurm-{job_id}.log"
            with contextlib.suppress(OSError):
                link.unlink(missing_ok=True)
                link.symlink_to(os.path.relpath(log, folder))

    def __call__(self) -> str:
        import submitit

        env = submitit.JobEnvironment()
        job_id, log = str(env.job_id), str(env.paths.stdout)
        self._update(state="running", job_id=job_id, pid=os.getpid(), log=log,
                     host=env.hostname, started=time.time())
        if self.prelude is not None:
            self.prelude()
        threads = self.threads or int(os.environ.get("SLURM_CPUS_PER_TASK") or 0)
        if threads:  # the job's CPUs, not every core of the node
            import torch

            torch.set_num_threads(threads)
        args = self._source_args()
        if isinstance(args, str):
            state = "skipped" if "starts from" in args else "failed"
            self._update(state=state, error=args, ended=time.time())
            print(f"rsbench: {state} {self.job.label}: {args}", flush=True)
            return state
        folder = self.locate(args)[0]
        self._update(run_folder=str(folder))
        self._link_log(folder, job_id, log)
        while (holder := active_holder(folder)) is not None and holder[0] != os.getpid():
            print(f"# {self.job.label}: process {holder[0]} is training it ({holder[1]}); "
                  "waiting for it instead of training it twice", flush=True)
            time.sleep(10)
        error = self.execute(args)
        self._link_log(folder, job_id, log)
        if error is not None:
            self._update(state="failed", error=error, ended=time.time())
            raise RunFailed(f"{self.job.label}: {error}")
        self._update(state="done", error=None, ended=time.time())
        return str(folder)


def make_executor(out: str, opts: LaunchOptions, name: str):
    """A submitit executor for ``opts`` (SLURM, or submitit's local one)."""
    submitit = require_submitit()
    cluster = "slurm" if opts.launcher == "slurm" else "local"
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--launcher slurm: there is no sbatch on this machine; run the "
                         "command on the cluster's login node (--launcher submitit-local "
                         "tries the same jobs here)")
    ex = submitit.AutoExecutor(folder=ledger.ledger_dir(out) / "slurm" / "%j", cluster=cluster)
    params: dict = {"name": name, "timeout_min": time_minutes(opts.time), "nodes": 1,
                    "tasks_per_node": 1, "stderr_to_stdout": True}
    if opts.cpus_per_run:
        params["cpus_per_task"] = opts.cpus_per_run
    if opts.gpus_per_run:
        params["gpus_per_node"] = opts.gpus_per_run
    if opts.mem:
        params["mem_gb"] = mem_gb(opts.mem)
    if cluster == "slurm":
        extra = {k: (v if v != "" else True) for k, v in sbatch_lines(opts.sbatch).items()}
        params.update(slurm_partition=opts.partition, slurm_account=opts.account,
                      slurm_additional_parameters=extra, slurm_setup=list(opts.slurm_setup))
        params = {k: v for k, v in params.items() if v not in (None, [], {})}
    ex.update_parameters(**params)
    return ex, cluster


def _already_handled(job: RunJob, out: str, locate, queue) -> str | None:
    """Why ``job`` needs no new submission: its run has finished, or a job still in the SLURM
    queue holds it (a second launch of one table trains nothing twice); None otherwise."""
    if job.skip:
        return None
    args = resolve_source(job, out)
    if args is not None:
        try:
            if (locate(args)[0] / "metrics.json").exists():
                ledger.update(out, job.key, **job_fields(job), state="done", error=None)
                return "already finished"
        except Exception:  # noqa: BLE001 - the job itself reports what is wrong
            pass
    rec = ledger.read_record(out, job.key)
    jid = rec.get("job_id")
    if jid and rec.get("state") in ("submitted", "running") and str(jid) in queue:
        return f"SLURM job {jid} ({queue[str(jid)].lower()}) already holds it"
    return None


def submit(jobs: Sequence[RunJob], out: str, opts: LaunchOptions, name: str,
           execute: Callable[[list[str]], str | None],
           locate: Callable[[list[str]], list[Path]],
           prelude: Callable[[], None] | None = None) -> list[tuple[RunJob, str]]:
    """Submit every job that is not skipped; [(job, job id)] in submission order. Runs already
    finished in ``out``, and runs a job still in the SLURM queue holds, are not submitted."""
    ex, cluster = make_executor(out, opts, name)
    keys = {j.label: j.key for j in jobs}
    todo = []
    queue = slurm_queue() if cluster == "slurm" else {}
    for job in jobs:
        held = _already_handled(job, out, locate, queue)
        if held:
            print(f"# {job.label}: {held}; not submitted again", flush=True)
            continue
        ledger.update(out, job.key, **job_fields(job), launcher=cluster if cluster == "slurm"
                      else "submitit-local", job_id=None, error=job.skip,
                      state="skipped" if job.skip else "queued", planned=time.time())
        if not job.skip:
            todo.append(job)
    tasks = {j.label: RunTask(j, out, execute, locate, keys.get(j.source_label),
                              wait_for_source=cluster == "local",
                              threads=opts.threads_per_run, prelude=prelude) for j in todo}
    first = [j for j in todo if not j.source_label or j.source_label not in tasks]
    later = [j for j in todo if j not in first]
    submitted: dict[str, tuple[str, str]] = {}  # label -> (job id, log)
    if first:
        with ex.batch():
            handles = [ex.submit(tasks[j.label]) for j in first]
        for j, h in zip(first, handles):
            submitted[j.label] = (str(h.job_id), str(h.paths.stdout))
    for j in later:  # after the array element of the run it starts from
        if cluster == "slurm":
            deps = {**sbatch_lines(opts.sbatch), "dependency":
                    f"afterany:{submitted[j.source_label][0]}"}
            ex.update_parameters(slurm_additional_parameters={
                k: (v if v != "" else True) for k, v in deps.items()})
        h = ex.submit(tasks[j.label])
        submitted[j.label] = (str(h.job_id), str(h.paths.stdout))
    result = []
    for j in todo:
        jid, log = submitted[j.label]
        fields = {"job_id": jid, "log": log}
        if ledger.read_record(out, j.key).get("state") == "queued":  # the job may have begun
            fields["state"] = "submitted"
        ledger.update(out, j.key, **fields)
        result.append((j, jid))
    return result
