"""`rsbench synth scenes`: a synthetic copy of any registered scene source (rsbench/datasets/sources/)."""

from __future__ import annotations

import click

from rsbench.cli.options import SEED, SIZE
from rsbench.datasets.sources import SCENE_SOURCES

DATASETS = list(SCENE_SOURCES)
SIZES = ", ".join(f"{s.title} {s.size[0]}" if s.size[0] == s.size[1] else
                  f"{s.title} {s.size[0]}x{s.size[1]}" for s in SCENE_SOURCES.values())


@click.command()
@click.option("--dataset", required=True, type=click.Choice(DATASETS),
              help="Which scene dataset to imitate.")
@click.option("--out", required=True, type=click.Path(), help="Folder to write it into.")
@click.option("--per-class", type=click.IntRange(min=1), default=10, show_default=True,
              help="Images per class.")
@click.option("--real-counts", is_flag=True,
              help="Write the published number of images per class instead of --per-class.")
@click.option("--size", type=SIZE, default=None,
              help=f"Image size ROWSxCOLS [default: the published size: {SIZES}].")
@click.option("--seed", type=SEED, default=0, show_default=True)
def scenes(dataset: str, out: str, per_class: int, real_counts: bool,
           size: tuple[int, int] | None, seed: int) -> None:
    """Write a synthetic scene dataset in the real layout: real class folders and file names,
    TIFF (UC Merced) or JPEG images of the published size (a few odd UC Merced sizes), with
    class-dependent colours and textures.

    \b
    Example:
      rsbench synth scenes --dataset merced --out sources --per-class 20
      rsbench synth scenes --dataset aid --out sources --per-class 20 --size 256
      rsbench synth scenes --dataset nwpu --out sources --per-class 20
    """
    from rsbench.datasets.sources.scenes import spec
    from rsbench.datasets.synth.scenes import synth_scenes

    top = synth_scenes(out, dataset, per_class=None if real_counts else per_class, seed=seed,
                       size=size)
    s = spec(dataset)
    n = sum(s.counts) if real_counts else per_class * len(s.classes)
    click.echo(f"wrote a synthetic {s.title} ({len(s.classes)} classes, {n} images) to {top}")
