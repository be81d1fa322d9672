"""The runs of a launch, one seed each (:class:`RunJob`), with the run each one starts from.

A table's :class:`~rsbench.reports.reproduce.Step` stands for every seed of one planned run; a
launcher needs one process per seed, so each seed becomes a job. A transfer run's ``--from``
folder is only known once its source run has finished: :func:`resolve_source` finds it then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rsbench.reports.reproduce import Step, find_source_run


@dataclass
class RunJob:
    """One seed of one planned run: its label, its `rsbench run` arguments and, for a transfer
    run, the label and (benchmark, model) of the run it starts from."""

    label: str  # e.g. "mini-msc mtln seed 0"
    args: list[str]  # after the program name: ["run", BENCHMARK, ...]; --from added by resolve
    seed: int
    source: tuple[str, str] | None = None
    source_label: str | None = None
    skip: str | None = None
    changed: Mapping[str, object] = field(default_factory=dict)  # settings the options change

    @property
    def key(self) -> str:
        """What names the job in the ledger: its label and every option but ``--from``."""
        return " ".join([self.label, "|", *self.args])


def label_of(benchmark: str, method: str, seed: int) -> str:
    return f"{benchmark} {method} seed {seed}"


def expand(steps: Sequence[Step], out: str, changed: Mapping[str, object]) -> list[RunJob]:
    """One job per seed of every step, sources before the runs that start from them."""
    jobs = []
    for step in steps:
        for seed in step.seeds:
            label = label_of(step.plan.benchmark, step.plan.method, seed)
            args = step.command(out, seed)
            if step.plan.source:  # the placeholder goes; resolve_source adds the real folder
                args = args[:args.index("--from")] + args[args.index("--from") + 2:]
            source_label = (label_of(*step.plan.source, seed) if step.plan.source else None)
            jobs.append(RunJob(label, args, seed, step.plan.source, source_label, step.skip,
                               dict(changed)))
    return jobs


def resolve_source(job: RunJob, out: str) -> list[str] | None:
    """``job``'s arguments with ``--from`` the finished source run's folder (None when it has
    not finished); the arguments as they are for a job without a source."""
    if not job.source:
        return list(job.args)
    found = find_source_run(out, *job.source, job.seed, job.changed)
    return None if found is None else [*job.args, "--from", str(Path(found))]


def job_fields(job: RunJob) -> dict:
    """What the ledger keeps of a job, enough to rebuild it (:func:`job_from_record`)."""
    return {"label": job.label, "args": job.args, "seed": job.seed,
            "source": list(job.source) if job.source else None,
            "source_label": job.source_label, "skip": job.skip, "changed": dict(job.changed)}


def job_from_record(rec: Mapping) -> RunJob | None:
    """The job a ledger record describes; None for a record of another shape."""
    try:
        source = tuple(rec["source"]) if rec.get("source") else None
        return RunJob(str(rec["label"]), [str(a) for a in rec["args"]], int(rec["seed"]),
                      source, rec.get("source_label"), rec.get("skip"),
                      dict(rec.get("changed") or {}))
    except (KeyError, TypeError, ValueError):
        return None
