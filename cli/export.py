"""`rsbench export`: one GeoTIFF or PNG per sample of a built dataset."""

from __future__ import annotations

import click


@click.command()
@click.argument("dataset", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["geotiff", "png"]), default="geotiff",
              show_default=True, help="GeoTIFF keeps the georeference where there is one.")
@click.option("--out", required=True, type=click.Path(), help="Folder to write into.")
@click.option("--task", default=None, help="Task whose samples to export [default: first].")
@click.option("--split", default=None, help="Only this split [default: all].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N samples.")
def export(dataset, fmt, out, task, split, limit) -> None:
    """Write each sample (and its mask) as a file: OUT/<split>/<class>/<id>.tif|png.

    \b
    Example:
      rsbench export psc15 --format geotiff --out psc15-tiles --split test
    """
    from rsbench.datasets.export import export_dataset
    from rsbench.datasets.format.reader import open_dataset

    n = export_dataset(open_dataset(dataset), out, fmt, task=task, split=split, limit=limit)
    click.echo(f"wrote {n} files to {out}")
