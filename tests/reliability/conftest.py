"""Fixtures of the reliability catalogue: a tiny synthetic TAIGA and its uninterrupted build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

OPTS = dict(patch=5, stride=4, bands="0:8")
OPTS_CLI = ["--patch", "5", "--stride", "4", "--bands", "0:8"]


@pytest.fixture(scope="session")
def tiny_taiga(tmp_path_factory) -> Path:
    from rsbench.datasets.synth.taiga import synth_taiga

    return synth_taiga(tmp_path_factory.mktemp("taiga_src"), size=(96, 96), bands=10, stands=12,
                       seed=2)


@pytest.fixture(scope="session")
def taiga_reference(tiny_taiga, tmp_path_factory) -> Path:
    from rsbench.datasets.builders.taiga import build_taiga

    out = tmp_path_factory.mktemp("taiga_ref") / "ref"
    build_taiga(tiny_taiga, out, **OPTS)
    return out


def assert_same_dataset(a: Path, b: Path) -> None:
    """Two finished folders hold the same dataset: manifest (but its time stamp), index,
    arrays, footprints and previews; and no staging leftovers."""
    ma, mb = (json.loads((p / "dataset.json").read_text()) for p in (a, b))
    ma.pop("created"), mb.pop("created")
    assert ma == mb
    pd.testing.assert_frame_equal(pd.read_parquet(a / "index.parquet"),
                                  pd.read_parquet(b / "index.parquet"))
    for f in sorted((a / "arrays").iterdir()):
        np.testing.assert_array_equal(np.load(f), np.load(b / "arrays" / f.name))
    assert sorted(p.name for p in (a / "arrays").iterdir()) == \
        sorted(p.name for p in (b / "arrays").iterdir())
    assert sorted(p.name for p in (a / "preview").iterdir()) == \
        sorted(p.name for p in (b / "preview").iterdir())
    assert (a / "footprints.gpkg").exists() == (b / "footprints.gpkg").exists()
    for p in (a, b):
        assert not (p / ".staging").exists() and not (p / ".staging-done").exists()
