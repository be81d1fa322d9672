"""`rsbench synth taiga`: a synthetic TAIGA in the real ENVI layout."""

from __future__ import annotations

import click

from rsbench.cli.options import SEED, SIZE


@click.command()
@click.option("--out", required=True, type=click.Path(), help="Folder to write TAIGA into.")
@click.option("--size", type=SIZE, default="768x768", show_default=True,
              help="Image size as ROWSxCOLS (real TAIGA: 12143x12826).")
@click.option("--bands", type=click.IntRange(8, 512), default=128, show_default=True,
              help="Spectral bands of the cube (real TAIGA: 128, 400-1000 nm).")
@click.option("--stands", type=click.IntRange(min=4), default=24, show_default=True,
              help="Number of forest stands (polygons).")
@click.option("--seed", type=SEED, default=0, show_default=True)
def taiga(out: str, size: tuple[int, int], bands: int, stands: int, seed: int) -> None:
    """Write a synthetic TAIGA: int16 BSQ reflectance cube + int32 BIP forestdata_stands.

    Every pixel of a stand shares its 13 forest variables; spectra depend on them, so models
    can learn every task. Same seed, same files.

    \b
    Example:
      rsbench synth taiga --out taiga-synth --size 768x768 --bands 128 --stands 24
      rsbench build-taiga --taiga taiga-synth --out taiga --patch 45 --stride 13
    """
    from rsbench.datasets.synth.taiga import synth_taiga

    folder = synth_taiga(out, size=size, bands=bands, stands=stands, seed=seed)
    click.echo(f"wrote a synthetic TAIGA ({size[0]}x{size[1]} px, {bands} bands, ~{stands} "
               f"stands) to {folder}")
