"""`rsbench status`: what every run in a runs folder is doing, one line each."""

from __future__ import annotations

import click


@click.command()
@click.argument("runs_dir", metavar="RUNS_DIR", type=click.Path(path_type=str))
def status(runs_dir: str) -> None:
    """One line per run of RUNS_DIR: every run a launcher (`reproduce`, `run --jobs`, SLURM)
    planned there, then every other run folder: done (its metrics), running (PID or SLURM job
    id, epoch reached), queued, failed (its last error line), interrupted, not started,
    skipped (the reason). `rsbench reproduce TABLE --status` does the same for one table.

    \b
    Example:
      rsbench status runs
    """
    from pathlib import Path

    from rsbench.cli.run import run_folders
    from rsbench.errors import InputError
    from rsbench.launch.status import print_status, runs_dir_status

    if not Path(runs_dir).is_dir():
        raise InputError(f"runs folder {runs_dir} does not exist; give the --out folder of "
                         "`rsbench run` or `rsbench reproduce` (default: runs)")
    print_status(runs_dir_status(runs_dir, run_folders))
