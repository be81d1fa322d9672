"""`rsbench synth`: synthetic copies of the source datasets in their real on-disk layouts."""

from __future__ import annotations

import click

from rsbench.cli.lazy import LazyGroup

SYNTH_COMMANDS = {
    "gid": "rsbench.cli.synth_gid:gid",
    "taiga": "rsbench.cli.synth_taiga:taiga",
    "scenes": "rsbench.cli.synth_scenes:scenes",
}


@click.group(cls=LazyGroup, lazy=SYNTH_COMMANDS)
def synth() -> None:
    """Write synthetic source datasets in the real layouts (for demos and tests).

    \b
    Example:
      rsbench synth gid --out gid-synth --classes 5 --images 4
    """
