"""`rsbench report`: paper-style tables from finished runs."""

from __future__ import annotations

import click

from rsbench.reports.tables import TABLES


def table_options(out_flag: str = "--out", paper: bool = True):
    """The options `report` and `reproduce` share: format, output file (``out_flag``), paper
    rows (unless ``paper`` is False), CI, plot."""
    options = [
        click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "latex"]),
                     default="markdown"),
        click.option(out_flag, "out", type=click.Path(path_type=str, dir_okay=False),
                     default=None,
                     help="Write the table to this file instead of standard output (a CSV also "
                          "gets NAME.provenance.csv: the runs, seeds and settings of each row)."),
    ]
    if paper:
        options.append(click.option("--paper", is_flag=True, help="Add the paper's published "
                                    "figures as reference rows."))
    return _stack(options + [
        click.option("--ci", is_flag=True,
                     help="Add the 95% confidence interval of the mean over seeds to every "
                          "cell (Student t; n/a with one seed)."),
        click.option("--plot", type=click.Path(path_type=str, dir_okay=False), default=None,
                     metavar="FILE.png",
                     help="Also draw the table as a chart: one panel per task metric, mean with "
                          "error bars (std, or the CI with --ci), paper figures as markers."),
    ])


def _stack(options):
    def apply(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return apply


def provenance_path(path):
    """``table.csv`` → ``table.provenance.csv`` (beside it)."""
    return path.with_name(path.stem + ".provenance.csv")


def write_report(runs_dir: str, table_name: str, fmt: str, out: str | None, paper: bool,
                 ci: bool, plot: str | None) -> None:
    """Build one table from the runs under ``runs_dir`` and write it (and its chart)."""
    import os
    from pathlib import Path

    from rsbench.errors import UsageError
    from rsbench.reports.provenance import provenance_csv
    from rsbench.reports.render import RENDERERS
    from rsbench.reports.runs import collect_runs
    from rsbench.reports.table import build_table
    from rsbench.reports.tables import get_table

    if plot is not None and not plot.lower().endswith(".png"):
        raise UsageError(f"--plot {plot}: give a file name ending in .png")
    runs = collect_runs(runs_dir)
    for warning in runs.warnings:
        click.echo(f"rsbench: warning: {warning}", err=True)
    table = build_table(get_table(table_name), runs, paper=paper)
    table.ci = ci
    text = RENDERERS[fmt](table)
    if plot is not None:
        from rsbench.plots.table import plot_table

        click.echo(f"wrote {plot_table(table, plot, ci=ci)}", err=True)
    if out is None:
        click.echo(text, nl=False)
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    outputs = [(path, text)]
    if fmt == "csv":
        outputs.append((provenance_path(path), provenance_csv(table)))
    for p, content in outputs:
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, p)
        click.echo(f"wrote {p}", err=True)


@click.command(context_settings={"show_default": True})
@click.argument("runs_dir", default="runs", type=click.Path(path_type=str))
@click.option("--table", "table_name", required=True, type=click.Choice(list(TABLES)),
              help="Which of the paper's tables to write.")
@table_options()
def report(runs_dir: str, table_name: str, fmt: str, out: str | None, paper: bool, ci: bool,
           plot: str | None) -> None:
    """Turn the finished runs under RUNS_DIR into one of the papers' tables: the MTLN paper's
    (rows are methods, columns tasks, average and parameters) or the HSI paper's taiga-* Tables
    II-VII. Mean ± std over seeds with the best value in bold (Tables II-III: mean, minimum and
    maximum per variable). Runs that are missing or unfinished are shown as missing, never
    filled in.

    Runs are found anywhere under RUNS_DIR (every metrics.json with its config.json) and grouped
    by method and settings: the benchmark's own settings give the method's row, runs at other
    settings (--epochs, --lr, --set, ...) get their own row labelled by what differs, e.g.
    "MTLN (epochs=2)"; the footnote says which seeds and settings each row holds. A
    metrics.json that cannot be read is one warning and skipped.

    \b
    Example:
      rsbench report runs --table msc --paper
      rsbench report runs --table psc5 --format latex --out table4a.tex
      rsbench report runs --table msc --ci --plot msc.png --paper
      rsbench report runs --table params --format csv
      rsbench report runs --table taiga-regression --format csv --out t3.csv
    """
    write_report(runs_dir, table_name, fmt, out, paper, ci, plot)
