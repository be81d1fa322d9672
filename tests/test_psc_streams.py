"""Sequential build-psc writes each sample once: parts append to shared staging streams that
finalize adopts as the final arrays (no copy), with the same bytes as a parallel build, and
every interruption (a kill between adoptions, a resume that mixes parallel and sequential
parts) still ends in the same dataset."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from rsbench.datasets import open_dataset
from rsbench.datasets.builders.psc import PscOptions, build_psc
from rsbench.datasets.format import finalize as fin
from rsbench.errors import InputError

OPTS = PscOptions(classes=5, size=32)


@pytest.fixture(scope="module")
def gid(tmp_path_factory):
    from rsbench.datasets.synth.gid import synth_gid

    root = tmp_path_factory.mktemp("gid")
    synth_gid(root, classes=5, images=4, size=(192, 224), seed=11)
    return root


@pytest.fixture(scope="module")
def parallel(gid, tmp_path_factory):
    """The reference: two workers, so every part has its own files and finalize copies."""
    out = tmp_path_factory.mktemp("ref") / "psc"
    build_psc(gid, out, OPTS, workers=2)
    return out


def assert_same(a, b) -> None:
    da, db = open_dataset(a), open_dataset(b)
    pd.testing.assert_frame_equal(da.index, db.index)
    for name in ("image", "mask"):
        assert (a / "arrays" / f"{name}.npy").read_bytes() == \
            (b / "arrays" / f"{name}.npy").read_bytes()


def test_sequential_build_adopts_its_streams_without_a_copy(gid, parallel, tmp_path,
                                                            monkeypatch):
    out = tmp_path / "psc"
    inodes = {}

    def note(step: str) -> None:
        if step == "rasters":  # before the arrays step: the streams are still in staging
            for name in ("image", "mask"):
                inodes[name] = os.stat(out / ".staging" / "streams" / f"{name}.npy").st_ino

    monkeypatch.setattr(fin, "reached", note)
    build_psc(gid, out, OPTS, workers=1)
    assert inodes and all(os.stat(out / "arrays" / f"{n}.npy").st_ino == i
                          for n, i in inodes.items())
    assert_same(out, parallel)
    assert not (out / ".staging").exists()


class Killed(BaseException):
    pass


@pytest.mark.parametrize("point", ["adopt image", "adopt mask", "arrays"])
def test_kill_between_adoptions_resumes_to_the_same_dataset(point, gid, parallel, tmp_path,
                                                             monkeypatch):
    out = tmp_path / "psc"

    def kill(step: str) -> None:
        if step == point:
            raise Killed(step)

    monkeypatch.setattr(fin, "reached", kill)
    with pytest.raises(Killed):
        build_psc(gid, out, OPTS, workers=1)
    monkeypatch.undo()
    assert not (out / "dataset.json").exists()
    build_psc(gid, out, OPTS, workers=1, resume=True)
    assert_same(out, parallel)


def test_resume_mixing_parallel_and_sequential_parts(gid, parallel, tmp_path):
    """Parts made by workers (own files) and by a sequential resume (streams) are gathered by
    copying, in index order, to the same bytes."""
    from tests.gidtools import to_rgb

    label = next((gid / "Large-scale Classification_5classes" / "label_5classes").glob("*.tif"))
    good = label.read_bytes()
    import rasterio

    with rasterio.open(label) as src:
        h, w, profile = src.height, src.width, src.profile
    try:
        with rasterio.open(label, "w", **profile) as dst:  # off-palette colours everywhere
            dst.write(np.moveaxis(to_rgb(np.zeros((h, w), np.int64)) + 7, -1, 0))
        out = tmp_path / "psc"
        with pytest.raises(InputError, match="not 5-class colours"):
            build_psc(gid, out, OPTS, workers=2)
        assert len(list((out / ".staging" / "parts").glob("*/part.json"))) >= 1
    finally:
        label.write_bytes(good)
    build_psc(gid, out, OPTS, workers=1, resume=True)
    assert_same(out, parallel)
