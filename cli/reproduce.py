"""`rsbench reproduce`: every run of one paper table, then the table."""

from __future__ import annotations

import click

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


def _execute(cmd: list[str]) -> str | None:
    """Run `rsbench run` in this process (one import of torch for the whole table); None when
    it finished, else its one-line error. Any failure is reported, never raised, so that the
    table's other runs still go ahead."""
    from rsbench.cli.run import run
    from rsbench.errors import RsbenchError

    try:
        run.main(args=cmd[1:], prog_name="rsbench run", standalone_mode=False)
    except click.ClickException as exc:
        return " ".join(exc.format_message().split())
    except RsbenchError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one failed run must not stop the table
        return f"unexpected {type(exc).__name__}: {exc}"
    return None


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
@table_options(out_flag="--table-out", paper=False)
def reproduce(table_name: str, data: tuple[str, ...], seeds: list[int], runs_dir: str,
              dry_run: bool, weights: str | None, epochs, batch_size, input_size, lr, device,
              amp, workers, max_train_batches, settings, fmt: str, out: str | None,
              ci: bool, plot: str | None) -> None:
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
    """
    import shlex

    from rsbench.errors import RsbenchError
    from rsbench.reports.reproduce import find_source_run, plan_steps
    from rsbench.reports.tables import get_table

    from .report import write_report

    run_args, changed = _run_options(epochs, batch_size, input_size, lr, device, amp, workers,
                                     max_train_batches, settings)
    steps = plan_steps(get_table(table_name).runs, seeds, data, run_args, weights)
    done, failed, skipped = 0, [], [s for s in steps if s.skip]
    for step in steps:
        what = f"{step.plan.benchmark} {step.plan.method}"
        if step.skip:
            click.echo(f"# skipped {what}: {step.skip}")
            continue
        per_seed = list(step.seeds) if step.plan.source else [None]
        for seed in per_seed:
            source = None
            if step.plan.source and not dry_run:
                found = find_source_run(runs_dir, *step.plan.source, seed, changed)
                if found is None:
                    failed.append(f"{what} seed {seed}: no finished "
                                  f"{' '.join(step.plan.source)} run of seed {seed} to start from")
                    click.echo(f"# skipped {what} seed {seed}: its source run did not finish")
                    continue
                source = str(found)
            cmd = step.command(runs_dir, seed, source)
            click.echo(f"{'' if dry_run else '$ '}rsbench {shlex.join(cmd)}")
            if dry_run:
                continue
            error = _execute(cmd)
            if error is None:
                done += 1
            else:
                click.echo(f"rsbench: error: {error}", err=True)
                failed.append(f"{what}" + (f" seed {seed}" if seed is not None else "")
                              + f": {error}")
    if dry_run:
        return
    click.echo(f"reproduce {table_name}: {done} run command(s) finished, {len(skipped)} "
               f"skipped, {len(failed)} failed", err=True)
    for s in skipped:
        click.echo(f"  skipped {s.plan.benchmark} {s.plan.method}: {s.skip}", err=True)
    for f in failed:
        click.echo(f"  failed {f}", err=True)
    write_report(runs_dir, table_name, fmt, out, True, ci, plot)
    if failed:
        raise RsbenchError(f"{len(failed)} run(s) of table {table_name} failed (listed above); "
                           "the table shows the others")
