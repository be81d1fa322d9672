"""Option types shared by several commands."""

from __future__ import annotations

import click


class SizeType(click.ParamType):
    """``ROWSxCOLS`` (or a single number for a square) as a (rows, cols) tuple."""

    name = "ROWSxCOLS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            parts = [int(p) for p in str(value).lower().split("x")]
        except ValueError:
            self.fail(f"{value!r} is not ROWSxCOLS, e.g. 512x640", param, ctx)
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2 or min(parts) <= 0:
            self.fail(f"{value!r} is not ROWSxCOLS with positive numbers", param, ctx)
        return tuple(parts)


SIZE = SizeType()


def workers_option(f):
    return click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                        help="Parallel worker processes.")(f)


# numpy's and torch's generators take seeds in 0..2**32-1; a seed outside fails at once, here
SEED = click.IntRange(0, 2**32 - 1)



def source_options(benchmark: str):
    """One ``--KEY PATH`` option per scene source registered for ``benchmark`` (msc, transfer),
    in registration order; the command receives them as keyword arguments named KEY."""
    from rsbench.datasets.sources import SCENE_SOURCES, sources_for

    def add(f):
        for key in reversed(sources_for(benchmark)):
            s = SCENE_SOURCES[key]
            f = click.option(f"--{key}", type=click.Path(),
                             help=f"Unpacked {s.title} ({s.top[0]}/).")(f)
        return f

    return add


def build_options(workers: bool = True):
    """The options every builder shares, after its own: ``--seed``, ``--workers`` (builders that
    decode in parallel), ``--splits`` and ``--resume``."""
    shared = [click.option("--seed", type=SEED, default=0, show_default=True)]
    if workers:
        shared.append(workers_option)
    shared += [
        click.option("--splits", "splits", type=click.Path(), default=None,
                     help="A splits.csv (from an earlier build's folder) to reproduce exactly, "
                          "whatever --seed."),
        click.option("--resume", is_flag=True, help="Continue an interrupted build in --out."),
    ]

    def add(f):
        for option in reversed(shared):  # decorators apply bottom-up: keep the listed order
            f = option(f)
        return f

    return add


def window_options(patch: int, stride: int, bands: str, bands_help: str):
    """``--patch``, ``--stride`` and ``--bands`` of the hyperspectral builders (each builder's
    defaults), then ``--test-fraction`` and ``--val-fraction``."""
    shared = [
        click.option("--patch", type=int, default=patch, show_default=True,
                     help="Window side in pixels (odd; the centre pixel carries the labels)."),
        click.option("--stride", type=int, default=stride, show_default=True,
                     help="Step of the patch-centre grid in pixels."),
        click.option("--bands", default=bands, show_default=True, help=bands_help),
        click.option("--test-fraction", type=float, default=0.15, show_default=True,
                     help="Share of labelled pixels in the test split."),
        click.option("--val-fraction", type=float, default=0.10, show_default=True,
                     help="Share of labelled pixels in the validation split."),
    ]

    def add(f):
        for option in reversed(shared):
            f = option(f)
        return f

    return add
