"""Tiny sources and datasets for the hardening tests, written by the project's own generators."""

from __future__ import annotations

from pathlib import Path

from rsbench.cli.main import main

TAIGA_SIZE, TAIGA_BANDS = (140, 160), 16
TAIGA_BUILD = ["--patch", "9", "--stride", "4", "--bands", "0:16"]


def taiga_source(root: Path) -> Path:
    """A synthetic TAIGA (140x160 px, 16 bands) in ``root``."""
    from rsbench.datasets.synth.taiga import synth_taiga

    synth_taiga(root, size=TAIGA_SIZE, bands=TAIGA_BANDS, stands=14, seed=5)
    return root


def taiga_dataset(src: Path, out: Path) -> Path:
    """``src`` built by build-taiga into ``out``."""
    assert main(["-q", "build-taiga", "--taiga", str(src), "--out", str(out), *TAIGA_BUILD]) == 0
    return out


def merced_source(root: Path, per_class: int = 2, size: int = 32) -> Path:
    """A synthetic UC Merced (21 classes) of ``per_class`` images of ``size`` px in ``root``."""
    from rsbench.datasets.synth.scenes import synth_scenes

    synth_scenes(root, "merced", per_class=per_class, size=(size, size), seed=0)
    return root


def one_line(err: str) -> str:
    """The single stderr line of a failed command (asserts there is exactly one)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "unexpected" not in lines[0] and "Traceback" not in err, err
    return lines[0]
