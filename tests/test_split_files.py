"""Split files (issue 13): every builder writes splits.csv with stable keys, and --splits FILE
reproduces that split sample by sample under another --seed; bad files give one line and
build nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from rsbench.cli.main import main
from rsbench.datasets import open_dataset
from rsbench.datasets.format.split_files import SPLIT_FILE

S = 64


def split_of(root) -> pd.Series:
    """Split per stable key, read from the dataset's own splits.csv."""
    table = pd.read_csv(root / SPLIT_FILE, dtype=str)
    return table.set_index("key")["split"]


def assert_reproduced(first, other_seed, from_file):
    a, b, c = split_of(first), split_of(other_seed), split_of(from_file)
    assert not a.equals(b), "another seed must draw another split for this test to mean much"
    pd.testing.assert_series_equal(a, c)
    ia, ic = open_dataset(first).index, open_dataset(from_file).index
    pd.testing.assert_series_equal(ia["split"], ic["split"])  # sample by sample
    info = open_dataset(from_file).summary()
    assert "split: from the file" in info and str(first / SPLIT_FILE) in info
    assert "drawn by the builder" in open_dataset(first).summary()


def test_psc_split_file_reproduces_under_another_seed(synth_gid5, tmp_path):
    from rsbench.datasets.builders.psc import PscOptions, build_psc

    build_psc(synth_gid5, tmp_path / "a", PscOptions(classes=5, size=S, seed=0))
    build_psc(synth_gid5, tmp_path / "b", PscOptions(classes=5, size=S, seed=1))
    build_psc(synth_gid5, tmp_path / "c", PscOptions(classes=5, size=S, seed=1),
              splits=tmp_path / "a" / SPLIT_FILE)
    keys = split_of(tmp_path / "a").index
    assert keys.str.match(r"^.+\.tif#\d+,\d+,64,64$").all()  # source file and pixel window
    assert_reproduced(tmp_path / "a", tmp_path / "b", tmp_path / "c")


@pytest.mark.parametrize("builder", ["msc", "transfer"])
def test_scene_split_files_reproduce_under_another_seed(builder, tmp_path):
    from rsbench.datasets.synth.scenes import synth_scenes

    if builder == "msc":
        from rsbench.datasets.builders.msc import build_msc

        src = synth_scenes(tmp_path / "src", "merced", per_class=3, size=(16, 16))

        def build(out, seed, **kw):
            return build_msc(out, {"merced": src}, size=(16, 16), seed=seed, **kw)
    else:
        from rsbench.datasets.builders.transfer import build_transfer

        src = synth_scenes(tmp_path / "src", "eurosat", per_class=4, size=(16, 16))

        def build(out, seed, **kw):
            return build_transfer(out, "eurosat", src, train_per_class=2, size=(16, 16),
                                  seed=seed, **kw)
    build(tmp_path / "a", 0)
    build(tmp_path / "b", 5)
    build(tmp_path / "c", 5, splits=tmp_path / "a" / SPLIT_FILE)
    assert_reproduced(tmp_path / "a", tmp_path / "b", tmp_path / "c")


def test_taiga_split_file_reproduces_under_another_seed(tmp_path):
    from rsbench.datasets.builders.taiga import build_taiga
    from rsbench.datasets.synth.taiga import synth_taiga

    src = synth_taiga(tmp_path / "src", size=(96, 96), bands=10, stands=12, seed=2)
    opts = dict(patch=5, stride=4, bands="0:8")
    build_taiga(src, tmp_path / "a", seed=0, **opts)
    build_taiga(src, tmp_path / "b", seed=3, **opts)
    build_taiga(src, tmp_path / "c", seed=3, splits=tmp_path / "a" / SPLIT_FILE, **opts)
    assert split_of(tmp_path / "a").index.str.startswith("stand ").all()
    assert_reproduced(tmp_path / "a", tmp_path / "b", tmp_path / "c")


@pytest.mark.parametrize("damage,needle", [
    (lambda t: pd.concat([t, pd.DataFrame({"key": ["merced/nope.tif"], "split": ["train"]})]),
     "key(s) these sources do not have: merced/nope.tif"),
    (lambda t: t.iloc[1:], "does not cover 1 sample(s)"),
    (lambda t: pd.concat([t, t.iloc[:2]]), "lists 2 key(s) twice"),
    (lambda t: t.assign(split=t["split"].replace("test", "holdout")), "split name(s) holdout"),
])
def test_bad_split_files_give_one_line_and_build_nothing(damage, needle, tmp_path, capsys):
    from rsbench.datasets.synth.scenes import synth_scenes

    src = synth_scenes(tmp_path / "src", "merced", per_class=5, size=(16, 16))
    args = ["build-msc", "--merced", str(src), "--size", "16"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    damage(pd.read_csv(tmp_path / "a" / SPLIT_FILE, dtype=str)).to_csv(bad, index=False)
    assert main([*args, "--out", str(tmp_path / "b"), "--splits", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and str(bad) in err, err
    assert not (tmp_path / "b" / "dataset.json").exists()
