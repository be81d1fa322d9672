"""`rsbench info`: summarise a built dataset."""

from __future__ import annotations

import click


@click.command()
@click.argument("dataset", type=click.Path(path_type=str))
def info(dataset: str) -> None:
    """Summarise a built dataset: tasks, classes and counts per split.

    \b
    Example:
      rsbench info psc15
    """
    from rsbench.datasets.format import open_dataset

    click.echo(open_dataset(dataset).summary())
