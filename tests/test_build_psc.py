"""build-psc end to end: known-answer labels, both schemes, splits, resume, footprints, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from gidtools import to_rgb, write_pair

from rsbench.cli.main import main
from rsbench.datasets.builders.psc import PscOptions, build_psc
from rsbench.datasets.format.reader import open_dataset

S = 64  # patch size in these tests


def known_label() -> tuple[np.ndarray, int]:
    """Five 64×64 windows with known outcomes, plus a partial edge strip that must be dropped."""
    idx = np.zeros((S, 5 * S + 30), dtype=np.int64)
    w = [slice(k * S, (k + 1) * S) for k in range(5)]
    idx[:, w[0]] = 1
    idx[S // 2:, w[0]] = 2                      # exactly half/half: no majority
    win1 = np.full(S * S, 1)
    win1[:2049] = 3                              # 2049 of 4096 forest: just over half
    idx[:, w[1]] = win1.reshape(S, S)
    win2 = np.zeros(S * S, dtype=np.int64)
    win2[: int(0.2 * S * S)] = 1                 # 80 % unlabelled: too little labelled
    idx[:, w[2]] = win2.reshape(S, S)
    idx[:, w[3]] = 5                             # water, with off-palette pixels added below
    win4 = np.zeros(S * S, dtype=np.int64)
    win4[:1270] = 3
    win4[1270:1270 + 1188] = 4                   # 40 % unlabelled, forest 31 %, meadow 29 %
    idx[:, w[4]] = win4.reshape(S, S)
    idx[:, 5 * S:] = 1
    rgb = to_rgb(idx)
    off = np.zeros((S, S), dtype=bool)
    off[: int(0.2 * S), :] = True                # 20 % of window 3 off-palette
    rgb[:, w[3]][off] = (255, 0, 3)
    return rgb, int(off.sum())


def test_known_answers(tmp_path):
    rgb, n_off = known_label()
    image = np.random.default_rng(1).integers(0, 255, size=(*rgb.shape[:2], 3), dtype=np.uint8)
    write_pair(tmp_path / "GID", "GF2_PMS1__L1A0000000001-MSS1", rgb, image=image)
    m = build_psc(tmp_path / "GID", tmp_path / "out",
                  PscOptions(classes=5, size=S, max_off_palette=0.5))
    ds = open_dataset(tmp_path / "out")
    idx = ds.index
    assert idx["col_off"].tolist() == [S, 3 * S, 4 * S]
    assert idx["label"].tolist() == [2, 4, 2]       # forest, water, forest
    assert m["report"]["skipped"] == {"no_majority": 1, "mostly_unlabelled": 1}
    assert m["report"]["off_palette_pixels"]["GF2_PMS1__L1A0000000001-MSS1"] == n_off
    water = idx.index[idx["col_off"] == 3 * S][0]
    mask = ds.array("mask")[water]
    assert (mask == 0).sum() == n_off and set(np.unique(mask)) == {0, 5}
    assert np.array_equal(ds.array("image")[water], image[:, 3 * S:4 * S])
    assert idx.loc[water, "class_fractions"][0] == pytest.approx(n_off / S**2, rel=1e-6)


def test_size_larger_than_image_is_a_usage_error(tmp_path, capsys):
    rgb, _ = known_label()
    write_pair(tmp_path / "GID", "a", rgb)
    code = main(["build-psc", "--gid", str(tmp_path / "GID"), "--classes", "5", "--out",
                 str(tmp_path / "out"), "--size", "512"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--size 512 is larger than" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "dataset.json").exists()


@pytest.mark.parametrize("classes", [5, 15])
def test_both_schemes_build_consistently(request, tmp_path, classes):
    root = request.getfixturevalue(f"synth_gid{classes}")
    m = build_psc(root, tmp_path / "psc", PscOptions(classes=classes, size=S))
    ds = open_dataset(tmp_path / "psc")
    assert m["name"] == f"psc{classes}"
    n = len(ds.index)
    assert n > 20
    assert ds.array("image").shape == (n, S, S, 3)
    assert ds.array("mask").shape == (n, S, S)
    assert int(ds.array("mask").max()) <= classes
    counts = m["tasks"]["scene"]["counts"]
    assert sum(sum(v.values()) for v in counts.values()) == n
    names = m["tasks"]["scene"]["classes"]
    for split, per in counts.items():
        sub = ds.index[ds.index["split"] == split]["label"].value_counts()
        assert {names[k]: int(v) for k, v in sub.items()} == {k: v for k, v in per.items() if v}
    # the manifest's pixel counts (from the builder) equal a count of the stored masks
    seg = m["tasks"]["segmentation"]
    for split, per in seg["counts"].items():
        rows = np.flatnonzero((ds.index["split"] == split).to_numpy())
        direct = np.bincount(ds.array("mask")[rows].ravel(), minlength=classes + 1)
        assert [per[c] for c in seg["classes"]] == direct.tolist()
    # the stored mask reproduces the stored scene label under the rule
    for i in range(0, n, 7):
        h = np.bincount(ds.array("mask")[i].ravel(), minlength=classes + 1)
        assert h[1:].argmax() == ds.index.at[i, "label"]
        assert h[1:].max() > 0.5 * h[1:].sum()
    assert {"scene_counts.png", "pixel_counts.png", "examples.png"} <= {
        p.name for p in (tmp_path / "psc" / "preview").iterdir()}
    manifest = json.loads((tmp_path / "psc" / "dataset.json").read_text())
    assert len(manifest["sources"]) == 6 and all(len(s["sha256"]) == 64
                                                for s in manifest["sources"])


def test_nirrgb_bands(synth_gid5, tmp_path):
    build_psc(synth_gid5, tmp_path / "psc", PscOptions(classes=5, size=S, bands="nirrgb"))
    ds = open_dataset(tmp_path / "psc")
    assert ds.array("image").shape[-1] == 4
    # NirRGB's last three bands are the RGB image's bands
    rgb_ds = tmp_path / "rgb"
    build_psc(synth_gid5, rgb_ds, PscOptions(classes=5, size=S))
    assert np.array_equal(open_dataset(rgb_ds).array("image")[:5], ds.array("image")[:5, ..., 1:])


def test_patch_split_is_per_class_and_deterministic(synth_gid5, tmp_path):
    a = build_psc(synth_gid5, tmp_path / "a", PscOptions(classes=5, size=S, seed=7))
    b = build_psc(synth_gid5, tmp_path / "b", PscOptions(classes=5, size=S, seed=7))
    c = build_psc(synth_gid5, tmp_path / "c", PscOptions(classes=5, size=S, seed=8))
    ia, ib, ic = (open_dataset(tmp_path / k).index for k in "abc")
    assert ia["split"].tolist() == ib["split"].tolist()
    assert ia["split"].tolist() != ic["split"].tolist()
    assert a["tasks"] == b["tasks"] and a["splits"] == c["splits"]
    for _, grp in ia.groupby("label"):
        assert (grp["split"] == "train").sum() == round(0.8 * len(grp))


def test_image_split_holds_whole_images_out(synth_gid5, tmp_path):
    build_psc(synth_gid5, tmp_path / "p", PscOptions(classes=5, size=S, split_by="image"))
    idx = open_dataset(tmp_path / "p").index
    per_image = idx.groupby("image_id")["split"].nunique()
    assert (per_image == 1).all() and set(idx["split"]) == {"train", "test"}


def test_workers_give_the_same_dataset(synth_gid5, tmp_path):
    build_psc(synth_gid5, tmp_path / "one", PscOptions(classes=5, size=S))
    build_psc(synth_gid5, tmp_path / "two", PscOptions(classes=5, size=S), workers=2)
    one, two = open_dataset(tmp_path / "one"), open_dataset(tmp_path / "two")
    pd.testing.assert_frame_equal(one.index, two.index)
    assert np.array_equal(one.array("image"), two.array("image"))


def test_footprints_and_geotiff_export(synth_gid5, tmp_path):
    import geopandas as gpd

    build_psc(synth_gid5, tmp_path / "p", PscOptions(classes=5, size=S))
    ds = open_dataset(tmp_path / "p")
    fp = gpd.read_file(tmp_path / "p" / "footprints.gpkg")
    assert len(fp) == len(ds.index) and fp.crs.to_epsg() == 32650
    assert fp.geometry.area.round(3).unique().tolist() == [(S * 4.0) ** 2]
    assert main(["export", str(tmp_path / "p"), "--out", str(tmp_path / "x"), "--limit",
                 "2"]) == 0
    first = sorted((tmp_path / "x").rglob("000000.tif"))[0]
    with rasterio.open(first) as src:
        row = ds.index.iloc[0]
        x0, y0 = src.transform.c, src.transform.f
        assert src.crs.to_epsg() == 32650
        assert (x0, y0) == tuple(fp.geometry.iloc[0].bounds[i] for i in (0, 3))
        assert np.array_equal(np.moveaxis(src.read(), 0, -1), ds.array("image")[0])
        assert row["sample_id"] == 0


def test_resume_after_a_killed_build_repeats_no_finished_image(tmp_path):
    from rsbench.datasets.synth.gid import synth_gid

    synth_gid(tmp_path / "gid", classes=5, images=6, size=(512, 512), seed=5)
    out = tmp_path / "psc"
    cmd = [sys.executable, "-m", "rsbench", "--quiet", "build-psc", "--gid",
           str(tmp_path / "gid"), "--classes", "5", "--out", str(out), "--size", "32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / ".staging" / "parts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("*/part.json"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.parent.name: p.stat().st_mtime_ns for p in parts.glob("*/part.json")}
    assert 2 <= len(done) < 6, "the build must be killed half-way for this test to mean much"
    assert not (out / "dataset.json").exists()
    # without --resume the interrupted folder is refused
    assert subprocess.run(cmd, capture_output=True).returncode == 2
    assert subprocess.run(cmd + ["--resume"], capture_output=True).returncode == 0
    assert not (out / ".staging").exists()
    fresh = build_psc(tmp_path / "gid", tmp_path / "fresh", PscOptions(classes=5, size=32))
    resumed = open_dataset(out)
    pd.testing.assert_frame_equal(resumed.index, open_dataset(tmp_path / "fresh").index)
    assert np.array_equal(resumed.array("image"), open_dataset(tmp_path / "fresh").array("image"))
    assert resumed.manifest["tasks"] == fresh["tasks"]


# ------------------------------------------------------------------------------------------
# Bad input: one plain line, exit code 1 or 2, no dataset.json left behind.
# ------------------------------------------------------------------------------------------


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def assert_clean_failure(code, err, out: Path, expect_code: int, *needles: str):
    assert code == expect_code, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    assert not (out / "dataset.json").exists()


@pytest.fixture
def one_pair(tmp_path):
    rgb, _ = known_label()
    img, lab = write_pair(tmp_path / "GID", "GF2_PMS1__L1A0000000009-MSS1", rgb)
    return tmp_path / "GID", img, lab


def psc_args(gid_root, out, *more):
    return ["build-psc", "--gid", str(gid_root), "--classes", "5", "--out", str(out),
            "--size", str(S), *more]


def test_missing_and_empty_gid(tmp_path, capsys):
    code, err = run_cli(psc_args(tmp_path / "nope", tmp_path / "o"), capsys)
    assert_clean_failure(code, err, tmp_path / "o", 1, "does not exist")
    (tmp_path / "empty").mkdir()
    code, err = run_cli(psc_args(tmp_path / "empty", tmp_path / "o"), capsys)
    assert_clean_failure(code, err, tmp_path / "o", 1, "is empty")


def test_image_without_label_and_label_without_image(one_pair, tmp_path, capsys):
    gid_root, img, lab = one_pair
    extra = img.with_name("GF2_PMS2__L1A0000000010-MSS2.tif")
    extra.write_bytes(img.read_bytes())
    code, err = run_cli(psc_args(gid_root, tmp_path / "o"), capsys)
    assert_clean_failure(code, err, tmp_path / "o", 1, extra.name, "has no label")
    extra.unlink()
    lab.with_name("GF2_PMS2__L1A0000000011-MSS2_label.tif").write_bytes(lab.read_bytes())
    code, err = run_cli(psc_args(gid_root, tmp_path / "o"), capsys)
    assert_clean_failure(code, err, tmp_path / "o", 1, "has no image")


def test_mismatched_sizes(tmp_path, capsys):
    rgb, _ = known_label()
    write_pair(tmp_path / "GID", "a", rgb, image=np.zeros((S, 3 * S, 3), np.uint8))
    code, err = run_cli(psc_args(tmp_path / "GID", tmp_path / "o"), capsys)
    assert_clean_failure(code, err, tmp_path / "o", 1, "a_label.tif", "must match")


def test_label_in_the_other_schemes_colours(tmp_path, capsys):
    idx = np.tile(np.repeat(np.arange(1, 16), 10), (S, 1))[:, : 2 * S]
    write_pair(tmp_path / "GID", "a", to_rgb(idx, classes=15))
    code, err = run_cli(psc_args(tmp_path / "GID", tmp_path / "o"), capsys)
    assert_clean_failure(code, err, tmp_path / "o", 1, "a_label.tif",
                         "not 5-class colours", "most common: (", "try --classes 15")


def test_truncated_and_non_raster_tif(one_pair, tmp_path, capsys):
    gid_root, img, lab = one_pair
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 3])
    code, err = run_cli(psc_args(gid_root, tmp_path / "o"), capsys)
    assert_clean_failure(code, err, tmp_path / "o", 1, img.name)
    img.write_text("this is not a raster")
    code, err = run_cli(psc_args(gid_root, tmp_path / "o2"), capsys)
    assert_clean_failure(code, err, tmp_path / "o2", 1, img.name, "cannot be read as a raster")


def test_bad_classes_and_finished_out(one_pair, tmp_path, capsys):
    gid_root, _, _ = one_pair
    code, err = run_cli(["build-psc", "--gid", str(gid_root), "--classes", "7", "--out",
                         str(tmp_path / "o")], capsys)
    assert_clean_failure(code, err, tmp_path / "o", 2, "'7' is not one of '5', '15'")
    assert run_cli(psc_args(gid_root, tmp_path / "o", "--max-off-palette", "0.5"), capsys)[0] == 0
    code, err = run_cli(psc_args(gid_root, tmp_path / "o"), capsys)
    assert code == 2 and "already holds a finished dataset" in err


def test_reader_refuses_an_unfinished_folder(tmp_path, capsys):
    (tmp_path / "half" / ".staging").mkdir(parents=True)
    code, err = run_cli(["info", str(tmp_path / "half")], capsys)
    assert code == 1 and "unfinished build" in err and "--resume" in err


def test_every_command_has_help_with_an_example(capsys):
    for cmd in (["--help"], ["build-psc", "--help"], ["synth", "gid", "--help"],
                ["info", "--help"], ["export", "--help"]):
        assert main(cmd) == 0
        assert "Example" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert "rsbench, version" in capsys.readouterr().out


def test_torch_dataset_round_trip(synth_gid5, tmp_path):
    import torch
    from torchvision.transforms import v2

    from rsbench.datasets import TaskDataset

    build_psc(synth_gid5, tmp_path / "p", PscOptions(classes=5, size=S))
    flip = v2.RandomHorizontalFlip(p=1.0)
    ds = TaskDataset(tmp_path / "p", "scene", "train")
    flipped = TaskDataset(tmp_path / "p", "scene", "train", transform=flip)
    s, f = ds[0], flipped[0]
    raw = open_dataset(tmp_path / "p")
    row = s["index"]
    assert s["image"].shape == (3, S, S) and s["image"].dtype == torch.uint8
    assert np.array_equal(s["image"].permute(1, 2, 0).numpy(), raw.array("image")[row])
    assert int(s["label"]) == raw.index.at[row, "label"]
    assert np.array_equal(s["mask"].numpy(), raw.array("mask")[row])
    assert torch.equal(f["image"], s["image"].flip(-1)) and torch.equal(f["mask"],
                                                                        s["mask"].flip(-1))
    assert len(ds) == int((raw.index["split"] == "train").sum())


def test_builder_path_does_not_import_torch(synth_gid5, tmp_path):
    code = ("import sys; from rsbench.cli.main import main; "
            f"rc = main(['--quiet', 'build-psc', '--gid', {str(synth_gid5)!r}, '--classes', '5', "
            f"'--out', {str(tmp_path / 'p')!r}, '--size', '64']); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def test_resume_with_other_options_names_only_the_differences(tmp_path):
    from rsbench.datasets.format.writer import DatasetWriter
    from rsbench.errors import UsageError

    params = {"classes": 5, "min_fraction": 0.5, "mapping": ["x" * 50] * 40}
    with DatasetWriter(tmp_path / "out", builder="t", params=params) as first:
        first.part_writer("done").close()  # finished work: the build is worth resuming
    with pytest.raises(UsageError) as err:
        DatasetWriter(tmp_path / "out", builder="t", params={**params, "min_fraction": 0.6},
                      resume=True)
    msg = str(err.value)
    assert "min_fraction: 0.5 then, 0.6 now" in msg and "mapping" not in msg
    assert len(msg) < 300 and "\n" not in msg
