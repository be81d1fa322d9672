"""`rsbench report`: paper-style tables from finished runs."""

from __future__ import annotations

import click

from rsbench.reports.tables import TABLES


@click.command(context_settings={"show_default": True})
@click.argument("runs_dir", default="runs", type=click.Path(path_type=str))
@click.option("--table", "table_name", required=True, type=click.Choice(list(TABLES)),
              help="Which of the paper's tables to write.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "latex"]),
              default="markdown")
@click.option("--out", type=click.Path(path_type=str), default=None,
              help="Write to this file instead of standard output.")
@click.option("--paper", is_flag=True, help="Add the paper's published figures as reference rows.")
def report(runs_dir: str, table_name: str, fmt: str, out: str | None, paper: bool) -> None:
    """Turn the finished runs under RUNS_DIR into one of the papers' tables: the MTLN paper's
    (rows are methods, columns tasks, average and parameters) or the HSI paper's taiga-* Tables
    II-VII. Mean ± std over seeds with the best value in bold (Tables II-III: mean, minimum and
    maximum per variable). Runs that are missing or unfinished are shown as missing, never
    filled in.

    \b
    Example:
      rsbench report runs --table msc --paper
      rsbench report runs --table psc5 --format latex --out table4a.tex
      rsbench report runs --table params --format csv
      rsbench report runs --table taiga-regression --format csv
    """
    import os
    from pathlib import Path

    from rsbench.reports.render import RENDERERS
    from rsbench.reports.runs import collect_runs
    from rsbench.reports.table import build_table
    from rsbench.reports.tables import get_table

    table = build_table(get_table(table_name), collect_runs(runs_dir), paper=paper)
    text = RENDERERS[fmt](table)
    if out is None:
        click.echo(text, nl=False)
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    click.echo(f"wrote {path}", err=True)
