"""`rsbench build-taiga`: TAIGA ENVI files -> hyperspectral multitask patch dataset."""

from __future__ import annotations

import click

from rsbench.cli.options import build_options, window_options


@click.command("build-taiga")
@click.option("--taiga", "taiga_root", required=True, type=click.Path(),
              help="Folder with the TAIGA ENVI files (reflectance cube + forestdata_stands).")
@click.option("--out", required=True, type=click.Path(), help="Output dataset folder.")
@window_options(45, 13, "0:110", "Cube bands to keep, e.g. 0:110 (the TAIGA baseline) or "
                "0:60,70.")
@click.option("--split", type=click.Choice(["stands", "blocks"]), default="stands",
              show_default=True, help="stands: whole stands per split; blocks: square blocks.")
@click.option("--block-size", type=int, default=None,
              help="Block side in pixels for --split blocks [default: 8 x patch].")
@click.option("--test-stands", type=click.Path(), default=None,
              help="Text file of standID values to hold out as test (--split stands).")
@click.option("--min-class-fraction", type=float, default=0.05, show_default=True,
              help="Categories below this share of labelled pixels become 'ignore'.")
@click.option("--clip-percentile", type=float, default=98.0, show_default=True,
              help="Clip continuous targets at this percentile of non-zero training values.")
@build_options(workers=False)
def build_taiga(taiga_root, out, patch, stride, bands, split, test_fraction, val_fraction,
                block_size, test_stands, min_class_fraction, clip_percentile, seed,
                resume, splits) -> None:
    """Build the TAIGA hyperspectral multitask dataset (3 categorical + 10 continuous tasks).

    Streams the ENVI files strip by strip (the real cube is ~37 GB), stores the cropped cube
    and the label rasters once, and indexes overlapping windows into them. Splits cannot leak:
    no pixel of a validation or test window lies in any training window.

    \b
    Examples:
      rsbench build-taiga --taiga TAIGA --out taiga
      rsbench build-taiga --taiga TAIGA --out taiga-blocks --split blocks --block-size 512
      rsbench build-taiga --taiga TAIGA --out taiga-h --test-stands holdout_stands.txt
    """
    from rsbench.datasets.builders.taiga import build_taiga as build

    m = build(taiga_root, out, resume=resume, splits=splits, patch=patch, stride=stride, bands=bands,
              split=split, test_fraction=test_fraction, val_fraction=val_fraction,
              block_size=block_size, test_stands=test_stands,
              min_class_fraction=min_class_fraction, clip_percentile=clip_percentile, seed=seed)
    t = m["taiga"]
    w = t["split"]["windows"]
    click.echo(f"wrote {m['num_samples']} windows ({', '.join(f'{k} {v}' for k, v in m['splits'].items())}) to {out}")
    drop = {sp: sum(d.values()) for sp, d in w["dropped"].items()}
    click.echo("dropped windows straddling split regions or touching training windows: "
               + ", ".join(f"{k} {v}" for k, v in drop.items()))
    for name in t["categorical"]:
        tt = t["targets"][name]
        note = f" (dropped rare codes {tt['dropped_codes']})" if tt["dropped_codes"] else ""
        click.echo(f"{name}: {len(tt['classes'])} classes{note}")
