"""`rsbench taiga-map`: classification maps of a TAIGA test region from a finished run."""

from __future__ import annotations

import click


@click.command("taiga-map")
@click.argument("run", type=click.Path(path_type=str))
@click.option("--data", required=True, type=click.Path(path_type=str),
              help="The build-taiga dataset the run was trained on.")
@click.option("--size", type=click.IntRange(min=8), default=64, show_default=True,
              help="Side of the square test region in pixels.")
@click.option("--out", type=click.Path(path_type=str), default=None,
              help="Folder for the PNGs (default: the run folder).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
def taiga_map(run: str, data: str, size: int, out: str | None, device: str) -> None:
    """Ground truth vs predicted classes of every categorical variable over a test region
    (the HSI paper's Fig. 10): each pixel predicted as the centre of its own window.

    \b
    Example:
      rsbench taiga-map runs/taiga/hsi-mtl/0 --data taiga --size 96
    """
    from rsbench.reports.taiga_map import write_maps

    for path in write_maps(run, data, out=out, size=size, device=device):
        click.echo(f"wrote {path}")
