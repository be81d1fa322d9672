"""build-taiga on a synthetic TAIGA with known structure: leak-free splits, train-only stats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rsbench.datasets.builders.taiga import (
    IGNORE,
    TaigaOptions,
    build_taiga,
    inverse_median_frequency,
    weighted_percentile,
)
from rsbench.datasets.format.reader import open_dataset
from rsbench.datasets.sources.envi import EnviRaster
from rsbench.datasets.sources.taiga import CONTINUOUS, CUBE_NAMES, STANDS_NAME
from rsbench.datasets.synth.taiga import synth_taiga
from rsbench.errors import InputError, UsageError

OPTS = dict(patch=9, stride=4, bands="2:20")


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    out = tmp_path_factory.mktemp("taiga_src")
    synth_taiga(out, size=(180, 200), bands=24, stands=28, seed=7)
    return out


@pytest.fixture(scope="module")
def stands_ds(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "stands"
    build_taiga(src, out, **OPTS, split="stands", seed=1)
    return open_dataset(out)


@pytest.fixture(scope="module")
def blocks_ds(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "blocks"
    build_taiga(src, out, **OPTS, split="blocks", block_size=40, seed=2)
    return open_dataset(out)


def source_labels(src):
    return EnviRaster.open(src / f"{STANDS_NAME}.hdr").read_rows(0, 180)


def windows(ds, split):
    idx = ds.index[ds.index["split"] == split]
    return idx[["win_row", "win_col", "win_h", "win_w"]].to_numpy()


def overlaps(a, b):
    """Any pixel shared by a window of ``a`` and a window of ``b`` (all pairs)."""
    if len(a) == 0 or len(b) == 0:
        return False
    ra, ca, ha, wa = (a[:, i][:, None] for i in range(4))
    rb, cb, hb, wb = (b[:, i][None, :] for i in range(4))
    return bool(((ra < rb + hb) & (rb < ra + ha) & (ca < cb + wb) & (cb < ca + wa)).any())


@pytest.mark.parametrize("which", ["stands_ds", "blocks_ds"])
def test_no_pixel_of_val_or_test_window_in_any_training_window(which, request):
    ds = request.getfixturevalue(which)
    assert set(ds.index["split"]) == {"train", "val", "test"}
    assert (ds.index["task"] == "taiga").all()
    train = windows(ds, "train")
    assert not overlaps(train, windows(ds, "test"))
    assert not overlaps(train, windows(ds, "val"))
    # the check is not vacuous: neighbouring windows of one split do overlap
    assert overlaps(train[:50], train[:50][::-1])
    dropped = ds.manifest["taiga"]["split"]["windows"]["dropped"]
    assert sum(d["straddling_split_boundary"] for d in dropped.values()) > 0


def test_stands_are_whole_and_windows_pure(stands_ds, src):
    m = stands_ds.manifest["taiga"]
    regions = m["split"]["regions"]
    split_of = {sid: sp for sp, ids in regions.items() for sid in ids}
    assert sum(len(v) for v in regions.values()) == len(split_of)  # each stand in one split
    lab = source_labels(src)
    r0, c0 = m["crop"]["row_off"], m["crop"]["col_off"]
    for row in stands_ds.index.itertuples():
        win = lab[r0 + row.win_row:r0 + row.win_row + row.win_h,
                  c0 + row.win_col:c0 + row.win_col + row.win_w, 13]
        assert {split_of[s] for s in np.unique(win[win > 0])} == {row.split}
        assert split_of[row.stand_id] == row.split


def test_blocks_windows_stay_in_their_split_blocks(blocks_ds):
    m = blocks_ds.manifest["taiga"]
    bs, W = m["split"]["block_size"], 200
    split_of = {b: sp for sp, ids in m["split"]["regions"].items() for b in ids}
    idx = blocks_ds.index
    r0, c0 = m["crop"]["row_off"], m["crop"]["col_off"]
    for row in idx.itertuples():
        rows = np.arange(r0 + row.win_row, r0 + row.win_row + row.win_h) // bs
        cols = np.arange(c0 + row.win_col, c0 + row.win_col + row.win_w) // bs
        blocks = {int(r * (W // bs + 1) + c) for r in rows for c in cols}
        assert {split_of.get(b) for b in blocks} - {None} == {row.split}


def test_windows_are_valid_image_and_match_the_cube(stands_ds, src):
    m = stands_ds.manifest["taiga"]
    cube = EnviRaster.open(src / f"{CUBE_NAMES[0]}.hdr")
    r0, c0 = m["crop"]["row_off"], m["crop"]["col_off"]
    assert m["bands"] == list(range(2, 20))
    for i in [0, len(stands_ds.index) // 2, len(stands_ds.index) - 1]:
        row = stands_ds.index.iloc[i]
        win = stands_ds.sample_array("image", i)
        assert win.shape == (9, 9, 18) and win.dtype == np.int16
        ref = cube.read_rows(r0 + row.win_row, r0 + row.win_row + 9, np.arange(2, 20),
                             c0 + row.win_col, c0 + row.win_col + 9)
        np.testing.assert_array_equal(win, ref)
    img = stands_ds.array("image")
    for r, c, h, w in windows(stands_ds, "train")[::7]:
        assert not (img[r:r + h, c:c + w] == 0).all(-1).any()


def test_continuous_scaling_uses_training_pixels_only(stands_ds, src):
    m = stands_ds.manifest["taiga"]
    train_ids = m["split"]["regions"]["train"]
    lab = source_labels(src)
    sid = lab[..., 13]
    train = np.isin(sid, train_ids)
    held = np.isin(sid, m["split"]["regions"]["test"] + m["split"]["regions"]["val"])
    differs = 0
    for j, (var, _, factor) in enumerate(CONTINUOUS):
        t = stands_ds.task(var)
        phys = lab[..., 3 + j][train] / factor
        clip = np.percentile(phys[phys != 0], 98)
        assert t["clip"] == pytest.approx(clip) and t["max"] == pytest.approx(clip)
        assert t["min"] == pytest.approx(phys.min())
        everywhere = lab[..., 3 + j][train | held] / factor
        differs += not np.isclose(np.percentile(everywhere[everywhere != 0], 98), clip)
        # centre targets map back to the physical (clipped) source value
        idx = stands_ds.index
        phys_pred = idx[var].to_numpy() * (t["max"] - t["min"]) + t["min"]
        r = idx["image_row"].to_numpy()
        c = idx["image_col"].to_numpy()
        np.testing.assert_allclose(phys_pred, np.minimum(lab[r, c, 3 + j] / factor, clip),
                                   rtol=1e-5, atol=1e-4)
        assert 0 <= np.nanmin(stands_ds.array("targets_reg")[..., j])
        assert np.nanmax(stands_ds.array("targets_reg")[..., j]) <= 1
    assert differs > 0  # held-out pixels would have changed the statistics


def test_rare_classes_dropped_and_weights(src, tmp_path):
    out = tmp_path / "rare"
    build_taiga(src, out, **OPTS, min_class_fraction=0.2, seed=1)
    ds = open_dataset(out)
    lab = source_labels(src)
    sid = lab[..., 13]
    fert = lab[..., 0][sid > 0]
    frac = {c: (fert == c).mean() for c in np.unique(fert) if c > 0}
    task = ds.task("fertility_class")
    assert task["codes"] == [c for c in sorted(frac) if frac[c] >= 0.2]
    assert task["dropped_codes"] == [c for c in sorted(frac) if frac[c] < 0.2]
    assert task["dropped_codes"], "the fixture should have rare fertility classes"
    # dropped categories are 'ignore' in the label raster and in the centre targets
    tc = ds.array("targets_cls")[..., 0]
    m = ds.manifest["taiga"]
    r0, c0 = m["crop"]["row_off"], m["crop"]["col_off"]
    crop_fert = lab[r0:r0 + tc.shape[0], c0:c0 + tc.shape[1], 0]
    assert (tc[np.isin(crop_fert, task["dropped_codes"])] == IGNORE).all()
    kept = np.isin(crop_fert, task["codes"]) & (tc != IGNORE)
    assert kept.any()
    np.testing.assert_array_equal(np.array(task["codes"])[tc[kept]], crop_fert[kept])
    # inverse-median-frequency weights from training pixels
    train = np.isin(sid, m["split"]["regions"]["train"])
    counts = np.array([(lab[..., 0][train] == c).sum() for c in task["codes"]])
    assert task["train_pixels"] == counts.tolist()
    freq = counts / counts.sum()
    np.testing.assert_allclose(task["class_weights"], np.median(freq) / freq)


def test_helpers():
    v = np.array([5.0, 1.0, 3.0])
    n = np.array([2, 3, 4])
    dense = np.repeat(v, n)
    for q in (0, 37.5, 98, 100):
        assert weighted_percentile(v, n, q) == pytest.approx(np.percentile(dense, q))
    np.testing.assert_allclose(inverse_median_frequency([10, 30, 0, 60]),
                               [3.0, 1.0, 0.0, 0.5])


def test_torch_dataset_reads_windows(stands_ds):
    torch = pytest.importorskip("torch")
    from rsbench.datasets.torch_dataset import TaskDataset

    torch.set_num_threads(1)
    data = TaskDataset(stands_ds, "main_tree_species_class", "train")
    s = data[0]
    assert tuple(s["image"].shape) == (18, 9, 9)
    assert "label_basal_area" in s and s["label"].dtype == torch.int64


def test_manifest_conventions(stands_ds):
    m = stands_ds.manifest
    assert m["name"] == "taiga"
    assert len(m["tasks"]) == 13
    assert all(t["rows"] == "taiga" for t in m["tasks"].values())
    assert [n for n, t in m["tasks"].items() if t["type"] == "classification"] == \
        ["fertility_class", "soil_class", "main_tree_species_class"]
    assert m["tasks"]["basal_area"]["unit"] == "m2/ha"
    assert m["arrays"]["image"]["window_columns"] == ["win_row", "win_col", "win_h", "win_w"]
    st = m["taiga"]["image_stats"]
    assert len(st["min"]) == 18 and all(a <= b for a, b in zip(st["min"], st["max"]))
    assert (stands_ds.root / "footprints.gpkg").exists()
    assert (stands_ds.root / "preview" / "splits.png").stat().st_size > 1000
    import geopandas as gpd

    fp = gpd.read_file(stands_ds.root / "footprints.gpkg")
    assert set(fp["split"]) == {"train", "val", "test"} and fp.crs.to_epsg() == 32635
    assert not fp.geometry.iloc[0].intersects(fp.geometry.iloc[1]) or \
        fp.geometry.iloc[0].intersection(fp.geometry.iloc[1]).area == 0


def test_test_stands_file(src, tmp_path, stands_ds):
    ids = stands_ds.manifest["taiga"]["split"]["regions"]["train"][:3]
    f = tmp_path / "holdout.txt"
    f.write_text("\n".join(map(str, ids)) + "\n")
    build_taiga(src, tmp_path / "h", **OPTS, test_stands=str(f))
    ds = open_dataset(tmp_path / "h")
    assert ds.manifest["taiga"]["split"]["regions"]["test"] == sorted(ids)


def test_resume_after_interruption(src, tmp_path, monkeypatch, stands_ds):
    out = tmp_path / "resumed"

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("rsbench.datasets.builders.taiga.select_windows", boom)
    with pytest.raises(KeyboardInterrupt):
        build_taiga(src, out, **OPTS, split="stands", seed=1)
    monkeypatch.undo()
    assert not (out / "dataset.json").exists()
    with pytest.raises(UsageError, match="--resume"):
        build_taiga(src, out, **OPTS, split="stands", seed=1)
    assert (out / ".staging" / "stages" / "image.json").exists()
    cube_reads = []
    orig = EnviRaster.read_rows

    def counting(self, *a, **k):
        if self.data.name == CUBE_NAMES[0]:
            cube_reads.append(a)
        return orig(self, *a, **k)

    monkeypatch.setattr(EnviRaster, "read_rows", counting)
    build_taiga(src, out, resume=True, **OPTS, split="stands", seed=1)
    assert cube_reads == []  # the finished cube pass was not redone
    ds = open_dataset(out)
    pd.testing.assert_frame_equal(ds.index, stands_ds.index)
    np.testing.assert_array_equal(ds.array("image"), stands_ds.array("image"))


def test_bad_options_and_inputs(src, tmp_path):
    with pytest.raises(UsageError, match="odd"):
        TaigaOptions(patch=10).check()
    with pytest.raises(UsageError, match="bands"):
        build_taiga(src, tmp_path / "x", bands="0:99")
    with pytest.raises(InputError, match="no TAIGA reflectance cube"):
        build_taiga(tmp_path, tmp_path / "y")
    from rsbench.cli.main import main

    assert main(["build-taiga", "--taiga", str(tmp_path), "--out", str(tmp_path / "z")]) == 1
