"""`rsbench build-transfer`: PatternNet / EuroSAT generalization sets (MTLN paper, Table VI)."""

from __future__ import annotations

import click

from rsbench.cli.build_msc import SQUARE_SIZE
from rsbench.cli.options import build_options, source_options


@click.command("build-transfer")
@source_options("transfer")
@click.option("--out", required=True, type=click.Path(), help="Output dataset folder.")
@click.option("--train-per-class", type=click.IntRange(min=1), default=100, show_default=True,
              help="Training images per class; all the others are test images.")
@click.option("--size", type=SQUARE_SIZE, default=224, show_default=True,
              help="Images are resized (antialiased) to SIZE×SIZE once, at build time.")
@build_options()
def build_transfer(out, train_per_class, size, seed, workers, resume, splits, **sources) -> None:
    """Build a generalization set of Table VI: --train-per-class images of each class for
    training, the rest for testing.

    \b
    Examples:
      rsbench build-transfer --patternnet PatternNet --out transfer-patternnet
      rsbench build-transfer --eurosat EuroSAT --out transfer-eurosat --size 64
    """
    from rsbench.cli.build_msc import _report
    from rsbench.datasets.builders.transfer import build_transfer as build
    from rsbench.datasets.format.summary import format_count_table
    from rsbench.errors import UsageError

    given = {k: v for k, v in sources.items() if v is not None}
    if len(given) != 1:
        raise UsageError("give exactly one of " + " or ".join(f"--{k}" for k in sources)
                         + " (one transfer set per --out)")
    ((dataset, source),) = given.items()
    manifest = build(out, dataset, source, train_per_class=train_per_class, size=(size, size),
                     seed=seed, workers=workers, resume=resume, splits=splits)
    _report(out, manifest, format_count_table)
