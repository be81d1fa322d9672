"""`rsbench reproduce`: every run of one paper table, then the table."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from rsbench.cli.launch_options import carry_out, launch_options
from rsbench.cli.report import table_options
from rsbench.cli.run import SeedsOption, _parse_seeds
from rsbench.reports.tables import TABLES


def _run_options(epochs, batch_size, input_size, lr, device, amp, workers, max_train_batches,
                 settings) -> tuple[list[str], dict]:
    """The `rsbench run` options to forward, and the settings they change (dotted keys)."""
    args: list[str] = []
    changed: dict = {}
    for flag, key, value in (("--epochs", "epochs", epochs), ("--batch-size", "batch_size",
                             batch_size), ("--input-size", "input_size", input_size),
                             ("--lr", "optimizer.lr", lr)):
        if value is not None:
            args += [flag, str(value)]
            changed[key] = value
    if device is not None:
        args += ["--device", device]
    if amp is not None:
        args.append("--amp" if amp else "--no-amp")
    if workers is not None:
        args += ["--workers", str(workers)]
    if max_train_batches is not None:
        args += ["--max-train-batches", str(max_train_batches)]
    changed["max_train_batches"] = max_train_batches
    import json

    for s in settings:
        key, _, raw = s.partition("=")
        args += ["--set", s]
        try:
            changed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            changed[key.strip()] = raw
    return args, changed


@click.command(context_settings={"show_default": True})
@click.argument("table_name", metavar="TABLE", type=click.Choice(list(TABLES)))
@click.option("--data", "data", multiple=True, required=True, metavar="DIR|BENCHMARK=DIR",
              help="Built dataset folder for the table's benchmarks; repeat as BENCHMARK=DIR "
                   "when the table reads several (transfer: msc=..., transfer-patternnet=..., "
                   "transfer-eurosat=...).")
@click.option("--seeds", "--seed", "seeds", cls=SeedsOption, multiple=True,
              callback=_parse_seeds, help="Seeds of every run, e.g. --seeds 0 1 2.  [default: 0]")
@click.option("--out", "runs_dir", default="runs", type=click.Path(path_type=str),
              help="Runs folder (as `rsbench run --out`); the table reads every run in it.")
@click.option("--dry-run", is_flag=True, help="Print the run commands (and the skipped runs "
              "with their reason) instead of running them.")
@click.option("--weights", type=click.Path(path_type=str), default=None,
              help="ImageNet weights file for the runs that need them (fine-tune); default: "
                   "torchvision's, when already in the local torch hub cache.")
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--input-size", type=click.IntRange(min=0), default=None)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="As `rsbench run --device` (default: auto).")
@click.option("--amp/--no-amp", default=None)
@click.option("--workers", type=click.IntRange(min=0), default=None)
@click.option("--max-train-batches", type=click.IntRange(min=1), default=None)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Override a benchmark setting in every run (as `rsbench run --set`).")
@click.option("--status", is_flag=True, help="Say what each of the table's runs is doing "
              "(done, running, queued, failed, not started, skipped), one line each, and stop.")
@launch_options
@table_options(out_flag="--table-out", paper=False)
def reproduce(table_name: str, data: tuple[str, ...], seeds: list[int], runs_dir: str,
              dry_run: bool, weights: str | None, epochs, batch_size, input_size, lr, device,
              amp, workers, max_train_batches, settings, status: bool, launch, fmt: str,
              out: str | None, ci: bool, plot: str | None) -> None:
    """Run every method of one paper TABLE that has no finished run at the same settings
    (`rsbench run ... --resume`: finished runs are kept, unfinished ones continue), then print
    the table with the paper's figures (--format, --table-out, --ci, --plot as `rsbench
    report`'s --format, --out, --ci, --plot). Runs that cannot be carried out here (a model not
    implemented, no local ImageNet weights, no dataset for a benchmark) are listed as skipped
    with the reason; the rest still run. Transfer runs start from the MSC run of the same seed,
    which runs first. Run options (--epochs, --lr, --set, ...) apply to every run and give the
    rows their own label in the table (e.g. "MTLN (epochs=1)").

    \b
    Example:
      rsbench reproduce mini-msc --data mini-msc --seeds 0 1 2
      rsbench reproduce psc5 --data psc5 --dry-run
      rsbench reproduce transfer --data msc=msc --data transfer-patternnet=tp \\
          --data transfer-eurosat=te --weights resnet34.pth
      rsbench reproduce mini-msc --data mini-msc --epochs 1 --input-size 0 --format latex \\
          --table-out table3b.tex
      rsbench reproduce mini-msc --data mini-msc --seeds 0 1 2 --jobs 4
      rsbench reproduce msc --data msc --launcher slurm --partition gpu --gpus-per-run 1
      rsbench reproduce msc --data msc --status
    """
    from rsbench.cli.run import run_folders
    from rsbench.errors import RsbenchError
    from rsbench.launch.jobs import expand
    from rsbench.launch.status import launch_status, print_status
    from rsbench.reports.reproduce import plan_steps
    from rsbench.reports.tables import get_table

    from .report import write_report

    run_args, changed = _run_options(epochs, batch_size, input_size, lr, device, amp, workers,
                                     max_train_batches, settings)
    steps = plan_steps(get_table(table_name).runs, seeds, data, run_args, weights)
    jobs = expand(steps, runs_dir, changed)
    if status:
        print_status(launch_status(jobs, runs_dir, run_folders))
        return
    if dry_run:
        _print_dry_run(steps, runs_dir)
        return
    launch.extra.update(workers=workers, device=device)
    outcome, submitted = carry_out(jobs, runs_dir, launch, f"rsbench-{table_name}")
    if submitted is not None:
        for job in jobs:
            if job.skip:
                click.echo(f"# skipped {job.label}: {job.skip}")
        for job, job_id in submitted:
            click.echo(f"submitted {job.label}: job {job_id}")
        again = f"rsbench reproduce {table_name} --out {shlex.quote(runs_dir)} " + " ".join(
            f"--data {shlex.quote(d)}" for d in data)
        click.echo(f"{len(submitted)} job(s) submitted; follow them with: {again} --status "
                   f"(same options); when they are done, {again} or rsbench report "
                   f"{shlex.quote(runs_dir)} --table {table_name} prints the table", err=True)
        return
    click.echo(f"reproduce {table_name}: {len(outcome.done)} run(s) finished, "
               f"{len(outcome.skipped)} skipped, {len(outcome.failed)} failed", err=True)
    for label, why in outcome.skipped:
        click.echo(f"  skipped {label}: {why}", err=True)
    for label, why in outcome.failed:
        click.echo(f"  failed {label}: {why}", err=True)
    if not outcome.done and not Path(runs_dir).is_dir():
        raise RsbenchError(f"no run of table {table_name} could be carried out (listed above); "
                           "nothing to report")
    write_report(runs_dir, table_name, fmt, out, True, ci, plot)
    if outcome.failed:
        raise RsbenchError(f"{len(outcome.failed)} run(s) of table {table_name} failed (listed "
                           "above); the table shows the others")


def _print_dry_run(steps, runs_dir: str) -> None:
    """The run commands a reproduce would carry out, and the skipped runs with their reason."""
    for step in steps:
        what = f"{step.plan.benchmark} {step.plan.method}"
        if step.skip:
            click.echo(f"# skipped {what}: {step.skip}")
            continue
        for seed in list(step.seeds) if step.plan.source else [None]:
            click.echo(f"rsbench {shlex.join(step.command(runs_dir, seed))}")
