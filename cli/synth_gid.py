"""`rsbench synth gid`: a synthetic GID in the real layout."""

from __future__ import annotations

import click

from rsbench.cli.options import SEED, SIZE


@click.command()
@click.option("--out", required=True, type=click.Path(), help="Folder to write GID into.")
@click.option("--classes", type=click.Choice(["5", "15"]), default="5", show_default=True,
              help="Class scheme: 5 coarse or 15 fine classes.")
@click.option("--images", type=click.IntRange(min=1), default=4, show_default=True,
              help="Number of image/label pairs.")
@click.option("--size", type=SIZE, default="1024x1024", show_default=True,
              help="Image size as ROWSxCOLS (real GID: 7200x6800).")
@click.option("--seed", type=SEED, default=0, show_default=True)
def gid(out: str, classes: str, images: int, size: tuple[int, int], seed: int) -> None:
    """Write a synthetic GID: georeferenced 8-bit RGB and NirRGB GeoTIFFs with RGB colour labels.

    \b
    Example:
      rsbench synth gid --out gid-synth --classes 15 --images 4 --size 1024x1024
    """
    from rsbench.datasets.synth.gid import synth_gid

    folder = synth_gid(out, classes=int(classes), images=images, size=size, seed=seed)
    click.echo(f"wrote {images} synthetic GID-{classes} image/label pairs to {folder}")
