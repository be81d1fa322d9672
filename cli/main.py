"""The `rsbench` command: a lazy click group plus one-line error reporting.

To add a command: write ``cli/<name>.py`` with a click command and add one line to COMMANDS.
"""

from __future__ import annotations

import gc
import signal
import sys
import warnings

import click

from rsbench import __version__
from rsbench.cli.lazy import LazyGroup
from rsbench.cli.oserrors import disk_full_line, interrupted_line, is_disk_full, os_error_line
from rsbench.errors import RsbenchError
from rsbench.progress import set_quiet

COMMANDS = {
    "synth": "rsbench.cli.synth:synth",
    "build-psc": "rsbench.cli.build_psc:build_psc",
    "info": "rsbench.cli.info:info",
    "build-msc": "rsbench.cli.build_msc:build_msc",
    "build-transfer": "rsbench.cli.build_transfer:build_transfer",
    "build-taiga": "rsbench.cli.build_taiga:build_taiga",
    "build-hsi": "rsbench.cli.build_hsi:build_hsi",
    "separability": "rsbench.cli.separability:separability",
    "models": "rsbench.cli.models:models",
    "run": "rsbench.cli.run:run",
    "report": "rsbench.cli.report:report",
    "reproduce": "rsbench.cli.reproduce:reproduce",
    "status": "rsbench.cli.status:status",
    "taiga-map": "rsbench.cli.taiga_map:taiga_map",
    "export": "rsbench.cli.export:export",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rsbench")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def cli(quiet: bool, debug: bool) -> None:
    """rsbench: remote-sensing multitask benchmarks.

    Build benchmark datasets from the public source datasets, train multitask models and
    baselines on them, and write paper-style result tables.

    \b
    Example:
      rsbench synth gid --out gid-synth --classes 15
      rsbench build-psc --gid gid-synth --classes 15 --out psc15
      rsbench info psc15
    """
    set_quiet(quiet)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns every failure into one plain line on stderr."""
    code = _run(argv)
    if argv is None:  # the process exits next: a Ctrl-C while Python tears down (tens of ms
        # after the last file) would kill it with -2 and no word; the command's code stands
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # and the teardown's collections skip what is alive now: with pandas, matplotlib and
        # geopandas loaded, walking it took 0.2-0.3 s after every build (files are closed)
        gc.freeze()
    return code


def _run(argv: list[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # many source rasters (GID-MTL patches, some GID copies) carry no georeference: that is fine
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="rsbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:  # click turns Ctrl-C (KeyboardInterrupt) into Abort
        click.echo(f"rsbench: {interrupted_line(args)}", err=True)
        return 130
    except click.ClickException as exc:  # wrong options: one line too, not click's usage block
        message = " ".join(exc.format_message().split())
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
        click.echo(f"rsbench: error: {message}", err=True)
        return exc.exit_code
    except RsbenchError as exc:
        if debug:
            raise
        click.echo(f"rsbench: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        click.echo(f"rsbench: {interrupted_line(args)}", err=True)
        return 130
    except OSError as exc:  # a full disk, a file where a folder should be, no permission
        line = None if debug else os_error_line(exc, args)
        if line is None:
            if debug:
                raise
            return _unexpected(exc)
        click.echo(f"rsbench: error: {line}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, never a traceback
        if debug:
            raise
        if is_disk_full(exc):  # e.g. pyarrow's or GDAL's own error for a full disk
            click.echo(f"rsbench: error: {disk_full_line(exc, args)}", err=True)
            return 1
        return _unexpected(exc)
    return 0


def _unexpected(exc: BaseException) -> int:
    """A failure nobody foresaw: one line asking for a report."""
    click.echo(f"rsbench: error: unexpected {type(exc).__name__}: {exc} "
               "(rerun with --debug for the traceback, and please report it)", err=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
