"""`rsbench build-hsi`: a declared hyperspectral source's file -> patch dataset."""

from __future__ import annotations

import click

from rsbench.cli.options import build_options, window_options
from rsbench.datasets.sources import HSI_SOURCES


@click.command("build-hsi")
@click.option("--source", required=True, type=click.Choice(list(HSI_SOURCES)),
              help="The declared source (rsbench/datasets/sources/<source>.py).")
@click.option("--input", "path", required=True, type=click.Path(),
              help="The source's file (e.g. houston_dataset.mat).")
@click.option("--out", required=True, type=click.Path(), help="Output dataset folder.")
@window_options(9, 3, "0:", "Bands to keep, e.g. 0: (all) or 0:40,45.")
@click.option("--block-size", type=int, default=32, show_default=True,
              help="Side in pixels of the square blocks assigned to splits.")
@click.option("--min-class-fraction", type=float, default=0.0, show_default=True,
              help="Classes below this share of labelled pixels become 'ignore'.")
@build_options(workers=False)
def build_hsi(source, path, out, patch, stride, bands, block_size, test_fraction, val_fraction,
              min_class_fraction, seed, resume, splits) -> None:
    """Build a patch dataset from a declared hyperspectral source (one classification task
    per declared target), through the build-taiga passes.

    Square blocks go whole to train, val or test, and no pixel of a validation or test window
    lies in any training window. Labels on a finer grid than the image are brought onto it by
    the source's declared rule (houston: the mode of each 4x4 block).

    \b
    Examples:
      rsbench build-hsi --source houston --input houston_dataset.mat --out houston
      rsbench run houston --model hsi-mtl --data houston
    """
    from rsbench.datasets.builders.hsi_source import build_hsi as build

    m = build(source, path, out, resume=resume, splits=splits, patch=patch, stride=stride,
              bands=bands, block_size=block_size, test_fraction=test_fraction,
              val_fraction=val_fraction, min_class_fraction=min_class_fraction, seed=seed)
    t = m["taiga"]
    click.echo(f"wrote {m['num_samples']} windows ({', '.join(f'{k} {v}' for k, v in m['splits'].items())}) to {out}")
    drop = {sp: sum(d.values()) for sp, d in t["split"]["windows"]["dropped"].items()}
    click.echo("dropped windows straddling split blocks or touching training windows: "
               + ", ".join(f"{k} {v}" for k, v in drop.items()))
    for name in t["categorical"]:
        tt = t["targets"][name]
        note = f" (dropped rare codes {tt['dropped_codes']})" if tt["dropped_codes"] else ""
        click.echo(f"{name}: {len(tt['classes'])} classes{note}")
