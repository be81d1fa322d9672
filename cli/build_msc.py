"""`rsbench build-msc`: UC Merced + AID + NWPU-RESISC45 → MSC / mini-MSC."""

from __future__ import annotations

import click

from rsbench.cli.options import build_options, source_options


class SquareSize(click.ParamType):
    """A square image side: ``224``, or ``224x224`` (the form ``rsbench synth`` uses)."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            sides = [value]
        else:
            try:
                sides = [int(v) for v in str(value).lower().split("x")]
            except ValueError:
                sides = []
        if not 1 <= len(sides) <= 2 or len(set(sides)) != 1:
            self.fail(f"{value!r} is not an image side in pixels; give one number, e.g. 224",
                      param, ctx)
        if sides[0] < 8:
            self.fail(f"{sides[0]} is too small; use at least 8 (the paper uses 224)", param, ctx)
        return sides[0]


SQUARE_SIZE = SquareSize()


@click.command("build-msc")
@source_options("msc")
@click.option("--out", required=True, type=click.Path(), help="Output dataset folder.")
@click.option("--mini", is_flag=True, help="mini-MSC: the 12 shared classes, --per-class images "
              "of each in each task.")
@click.option("--size", type=SQUARE_SIZE, default=224, show_default=True,
              help="Images are resized (antialiased) to SIZE×SIZE once, at build time.")
@click.option("--train-fraction", type=float, default=0.8, show_default=True,
              help="Share of each class (per task) that goes to train; the rest is test.")
@click.option("--per-class", type=click.IntRange(min=1), default=None,
              help="mini-MSC images per class and task [default: 100, as in the paper].")
@click.option("--mapping", type=click.Path(), default=None,
              help="CSV mapping the shared classes to each source's class folders [default: "
              "rsbench/data/mini_msc_mapping.csv].")
@build_options()
def build_msc(out, mini, size, train_fraction, per_class, mapping, seed, workers, resume, splits,
              **sources) -> None:
    """Build MSC (all images of every source) or mini-MSC (--mini) for multi-task scene
    classification: one task per source dataset, each with its own classes, split per class.

    \b
    Examples:
      rsbench build-msc --merced UCMerced_LandUse --aid AID --nwpu NWPU-RESISC45 \\
          --out msc --workers 8
      rsbench build-msc --merced UCMerced_LandUse --aid AID --nwpu NWPU-RESISC45 \\
          --out mini-msc --mini --per-class 100
      rsbench build-msc --aid AID --out aid-only --size 256
    """
    from rsbench.datasets.builders.msc import build_msc as build
    from rsbench.datasets.format.summary import format_count_table

    manifest = build(out, sources, mini=mini,
                     size=(size, size), train_fraction=train_fraction, per_class=per_class,
                     mapping=mapping, seed=seed, workers=workers, resume=resume,
                     splits=splits)
    _report(out, manifest, format_count_table)


def _report(out, manifest, format_count_table) -> None:
    click.echo(f"{out}: {manifest['name']}, {manifest['num_samples']} images "
               f"({', '.join(f'{k} {v}' for k, v in manifest['splits'].items())}), "
               f"{manifest['image_size'][0]}x{manifest['image_size'][1]}")
    for name, task in manifest["tasks"].items():
        counts = task.get("counts", {})
        total = {s: sum(c.values()) for s, c in counts.items()}
        click.echo(f"  task {name}: {len(task['classes'])} classes, "
                   + ", ".join(f"{s} {n}" for s, n in total.items()))
    dups = manifest.get("duplicates") or {}
    for name, d in dups.items():
        click.echo(f"  {name}: {d['images']} images in {d['groups']} exact-duplicate groups "
                   f"({d['cross_class_groups']} across classes), kept on one side of the split; "
                   "see duplicates in dataset.json")
    if len(manifest["tasks"]) == 1:
        click.echo(format_count_table(next(iter(manifest["tasks"].values()))))
    click.echo(f"previews: {out}/preview/   class tables: rsbench info {out}")
