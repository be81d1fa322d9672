"""build-msc / build-transfer on synthetic sources in the real layouts (and the real AID sample)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rsbench.cli.main import main as rsbench
from rsbench.datasets.builders.msc import DEFAULT_MAPPING, build_msc, read_mapping
from rsbench.datasets.builders.splits import split_per_class_grouped as assign_splits
from rsbench.datasets.builders.transfer import build_transfer
from rsbench.datasets.format.reader import open_dataset
from rsbench.datasets.sources.scene_images import decode_resize
from rsbench.datasets.sources.scenes import SPECS
from rsbench.datasets.synth.scenes import synth_scenes
from rsbench.errors import InputError, UsageError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PER_CLASS = 5
SIZE = (24, 24)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Synthetic Merced (odd sizes included), AID and NWPU, 5 images per class, small images."""
    root = tmp_path_factory.mktemp("scenes")
    out = {}
    for key, size in (("merced", (64, 64)), ("aid", (40, 40)), ("nwpu", (32, 32))):
        out[key] = synth_scenes(root / key, key, per_class=PER_CLASS, size=size)
    return out


@pytest.fixture(scope="module")
def msc(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("msc") / "msc"
    build_msc(out, sources, size=SIZE)
    return open_dataset(out)


def per_class_split_counts(ds, task):
    idx = ds.index[ds.index["task"] == task]
    return idx.groupby(["label", "split"]).size().unstack(fill_value=0)


def test_msc_counts_tasks_and_per_class_split(msc):
    m = msc.manifest
    assert m["name"] == "msc"
    assert list(m["tasks"]) == ["merced", "aid", "nwpu"]
    assert m["num_samples"] == PER_CLASS * (21 + 30 + 45)
    for key, task in m["tasks"].items():
        assert task["type"] == "classification" and task["rows"] == key
        assert task["target"] == "label" and task["classes"] == list(SPECS[key].classes)
        counts = per_class_split_counts(msc, key)
        assert len(counts) == len(SPECS[key].classes)
        assert (counts["train"] == 4).all() and (counts["test"] == 1).all()  # 80/20 of 5
    img = msc.array("image")
    assert img.dtype == np.uint8 and img.shape == (m["num_samples"], *SIZE, 3)


def test_msc_index_records_source_size_and_class_and_pixels_match(msc, sources):
    idx = msc.index
    assert {"path", "orig_height", "orig_width", "class", "source_class", "split"} <= set(idx)
    merced = idx[idx["task"] == "merced"]
    odd = merced[(merced["orig_height"] != 64) | (merced["orig_width"] != 64)]
    assert len(odd) >= 1  # synthetic Merced has odd sizes, like the real one
    roots = {k: Path(msc.manifest["sources"][i]["path"]) for i, k in enumerate(msc.tasks)}
    for i in [0, int(odd.index[0]), len(idx) - 1]:
        row = idx.iloc[i]
        path = roots[row["task"]] / row["path"]
        assert path.parent.name == row["class"] == row["source_class"]
        with Image.open(path) as im:
            assert (im.height, im.width) == (row["orig_height"], row["orig_width"])
        expected = decode_resize(str(path), SIZE).image
        np.testing.assert_array_equal(msc.sample_array("image", i), expected)


def test_msc_previews_and_info(msc, capsys):
    for task in ("merced", "aid", "nwpu"):
        for kind in ("montage", "counts"):
            with Image.open(msc.root / "preview" / f"{kind}_{task}.png") as im:
                assert im.format == "PNG" and im.width > 100
    assert rsbench(["info", str(msc.root)]) == 0
    out = capsys.readouterr().out
    assert "task nwpu (classification, 45 classes)" in out
    assert "thermal_power_station" in out


def test_mini_msc_selection_split_and_mapping(sources, tmp_path):
    build_msc(tmp_path / "mini", sources, mini=True, per_class=PER_CLASS, size=SIZE)
    ds = open_dataset(tmp_path / "mini")
    mapping = read_mapping(DEFAULT_MAPPING, ["merced", "aid", "nwpu"])
    assert ds.manifest["name"] == "mini-msc"
    assert len(mapping) == 12
    assert ds.manifest["num_samples"] == 3 * 12 * PER_CLASS
    for key, task in ds.tasks.items():
        assert task["classes"] == list(mapping)
        counts = per_class_split_counts(ds, key)
        assert (counts["train"] == 4).all() and (counts["test"] == 1).all()
        rows = ds.index[ds.index["task"] == key]
        for shared, grp in rows.groupby("class"):
            assert set(grp["source_class"]) <= set(mapping[shared][key])
    row = ds.index[(ds.index["task"] == "aid") & (ds.index["class"] == "airfield")].iloc[0]
    assert row["source_class"] == "Airport"


def test_mini_draw_is_deterministic_by_seed_and_per_task(sources, tmp_path):
    kw = dict(mini=True, per_class=3, size=(8, 8))
    build_msc(tmp_path / "a", sources, seed=1, **kw)
    build_msc(tmp_path / "b", sources, seed=1, **kw)
    build_msc(tmp_path / "c", sources, seed=2, **kw)
    build_msc(tmp_path / "d", {"aid": sources["aid"]}, seed=1, **kw)
    a, b, c, d = (open_dataset(tmp_path / n) for n in "abcd")
    cols = ["task", "path", "split"]
    pd.testing.assert_frame_equal(a.index[cols], b.index[cols])
    np.testing.assert_array_equal(a.array("image"), b.array("image"))
    assert not a.index[cols].equals(c.index[cols])
    aid = a.index[a.index["task"] == "aid"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(aid, d.index[cols].reset_index(drop=True))


def test_mapping_override(sources, tmp_path):
    csv = tmp_path / "mapping.csv"
    csv.write_text("# two classes only\nshared_class,merced,aid,nwpu\n"
                   "airfield,airplane|runway,Airport|Bridge,airport|runway\n"
                   "water,river|beach,River|Pond,lake|river\n")
    build_msc(tmp_path / "m", sources, mini=True, per_class=8, mapping=csv, size=(8, 8))
    ds = open_dataset(tmp_path / "m")
    assert ds.tasks["merced"]["classes"] == ["airfield", "water"]
    assert ds.tasks["aid"]["class_folders"]["water"] == ["River", "Pond"]
    idx = ds.index
    assert set(idx[(idx.task == "merced") & (idx["class"] == "airfield")]["source_class"]) == \
        {"airplane", "runway"}
    assert ds.manifest["num_samples"] == 3 * 2 * 8


@pytest.mark.parametrize("text, message", [
    ("shared_class,merced,aid\nx,airplane,Airport\ny,beach,Beach\n", r"lacks the column\(s\) nwpu"),
    ("shared_class,merced,aid,nwpu\nx,airplanes,Airport,airport\ny,beach,Beach,beach\n",
     r"'airplanes' is not one of the UC Merced class folders \(did you mean airplane"),
    ("shared_class,merced,aid,nwpu\nx,beach,Airport,airport\ny,beach,Beach,beach\n",
     r"'beach' is already mapped to 'x'"),
    ("shared_class,merced,aid,nwpu\nx,beach,Beach,beach\n", r"fewer than 2 shared classes"),
    ("shared_class,merced,aid,nwpu,why\nx,beach,Beach,beach,sand, sea\ny,river,River,river,\n",
     r"row 1 \(x\): 6 fields but the header has 5 .*put text that contains commas in double"),
    ("\n# only comments\n", r"lacks the column\(s\) shared_class, merced, aid, nwpu"),
])
def test_mapping_errors_name_file_and_fix(sources, tmp_path, text, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(InputError, match=message):
        build_msc(tmp_path / "m", sources, mini=True, mapping=csv, per_class=2)
    assert not (tmp_path / "m").exists()  # nothing written before the inputs are checked


def test_mapping_as_spreadsheets_write_it(sources, tmp_path):
    """A byte-order mark, quoted commas and '#' in text, trailing commas, blank lines."""
    csv = tmp_path / "mapping.csv"
    csv.write_bytes("\ufeff# exported\nshared_class, merced,aid,nwpu,why\n\n"
                    'beach,beach,Beach,beach,"sand, sea and #1 surf",\n'
                    "river,river,River,river,,\n".encode())
    assert read_mapping(csv, ["merced", "aid", "nwpu"]) == {
        "beach": {"merced": ["beach"], "aid": ["Beach"], "nwpu": ["beach"]},
        "river": {"merced": ["river"], "aid": ["River"], "nwpu": ["river"]}}


def test_mapping_that_is_a_folder(sources, tmp_path):
    with pytest.raises(InputError, match=r"--mapping .* is a folder; give a CSV file"):
        build_msc(tmp_path / "m", sources, mini=True, mapping=tmp_path, per_class=2)


def test_too_few_images_for_per_class(sources, tmp_path):
    with pytest.raises(InputError, match=r"has 5 images, fewer than --per-class 6; lower "
                                         r"--per-class to 5"):
        build_msc(tmp_path / "m", sources, mini=True, per_class=6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "give at least one source"),
    (dict(train_fraction=1.0), "between 0 and 1"),
    (dict(per_class=50), "add --mini"),
])
def test_usage_errors(sources, tmp_path, kwargs, message):
    srcs = {} if not kwargs else {"aid": sources["aid"]}
    with pytest.raises(UsageError, match=message):
        build_msc(tmp_path / "m", srcs, **kwargs)


def test_duplicates_are_reported_and_kept_on_one_side(tmp_path):
    synth_scenes(tmp_path / "src", "merced", per_class=10, size=(16, 16))
    images = tmp_path / "src" / "UCMerced_LandUse" / "Images"
    beach = images / "beach"
    for n in range(10, 14):  # four copies of beach00: a group of 5 inside one class
        shutil.copy(beach / "beach00.tif", beach / f"beach{n}.tif")
    shutil.copy(images / "forest" / "forest03.tif", images / "river" / "river10.tif")
    for seed in (0, 1):
        out = tmp_path / f"o{seed}"
        build_msc(out, {"merced": images}, size=(8, 8), seed=seed)
        ds = open_dataset(out)
        dups = ds.manifest["duplicates"]["merced"]
        assert dups["groups"] == 2 and dups["images"] == 7 and dups["cross_class_groups"] == 1
        assert sorted(len(g) for g in dups["paths"]) == [2, 5]
        grouped = ds.index[ds.index["dup_group"] >= 0]
        assert (grouped.groupby("dup_group")["split"].nunique() == 1).all()
        counts = per_class_split_counts(ds, "merced")
        assert counts.loc[SPECS["merced"].classes.index("forest"), "train"] == 8
        assert counts.loc[SPECS["merced"].classes.index("beach")].sum() == 14


def test_assign_splits_moves_duplicate_groups_whole():
    index = pd.DataFrame({"task": "t", "label": [0] * 10 + [1] * 10,
                          "dup_group": [0, 0, 0, 0] + [-1] * 6 + [-1] * 8 + [1, 1]})
    for seed in range(20):
        split = assign_splits(index, lambda task, label, n: 8, seed)
        assert split[:4].nunique() == 1 and split[18:].nunique() == 1
        assert (split[:10] == "train").sum() in (6, 8)  # group of 4 fits only if it lands early
        assert (split[10:] == "train").sum() == 8


def test_unreadable_image_stops_and_resume_finishes(tmp_path):
    synth_scenes(tmp_path / "src", "eurosat", per_class=4, size=(16, 16))
    bad = tmp_path / "src" / "2750" / "Pasture" / "Pasture_2.jpg"
    good = bad.read_bytes()
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "t"
    with pytest.raises(InputError, match=r"Pasture_2\.jpg cannot be read as an image"):
        build_transfer(out, "eurosat", tmp_path / "src", train_per_class=2, size=(8, 8))
    assert not (out / "dataset.json").exists()
    with pytest.raises(UsageError, match="--resume"):
        build_transfer(out, "eurosat", tmp_path / "src", train_per_class=2, size=(8, 8))
    bad.write_bytes(good)
    build_transfer(out, "eurosat", tmp_path / "src", train_per_class=2, size=(8, 8),
                   resume=True)
    build_transfer(tmp_path / "clean", "eurosat", tmp_path / "src", train_per_class=2,
                   size=(8, 8))
    a, b = open_dataset(out), open_dataset(tmp_path / "clean")
    np.testing.assert_array_equal(a.array("image"), b.array("image"))
    assert a.index[["path", "split"]].equals(b.index[["path", "split"]])


def test_transfer_sets(tmp_path):
    synth_scenes(tmp_path / "src", "patternnet", per_class=5, size=(16, 16))
    synth_scenes(tmp_path / "src", "eurosat", per_class=7, size=(16, 16))
    build_transfer(tmp_path / "p", "patternnet", tmp_path / "src", train_per_class=2,
                   size=(8, 8), workers=2)
    build_transfer(tmp_path / "e", "eurosat", tmp_path / "src" / "2750", train_per_class=3,
                   size=(8, 8))
    p, e = open_dataset(tmp_path / "p"), open_dataset(tmp_path / "e")
    assert p.manifest["name"] == "transfer-patternnet" and list(p.tasks) == ["patternnet"]
    assert e.manifest["name"] == "transfer-eurosat" and e.tasks["eurosat"]["classes"][0] == \
        "AnnualCrop"
    cp, ce = per_class_split_counts(p, "patternnet"), per_class_split_counts(e, "eurosat")
    assert len(cp) == 38 and (cp["train"] == 2).all() and (cp["test"] == 3).all()
    assert len(ce) == 10 and (ce["train"] == 3).all() and (ce["test"] == 4).all()
    with pytest.raises(InputError, match="not more than --train-per-class 5"):
        build_transfer(tmp_path / "x", "patternnet", tmp_path / "src", train_per_class=5)


def test_workers_give_identical_output(sources, tmp_path):
    build_msc(tmp_path / "w1", {"nwpu": sources["nwpu"]}, size=(8, 8), workers=1)
    build_msc(tmp_path / "w2", {"nwpu": sources["nwpu"]}, size=(8, 8), workers=2)
    a, b = open_dataset(tmp_path / "w1"), open_dataset(tmp_path / "w2")
    np.testing.assert_array_equal(a.array("image"), b.array("image"))
    assert a.index[["path", "split"]].equals(b.index[["path", "split"]])


def test_cli_build_and_one_line_errors(sources, tmp_path, capsys):
    out = tmp_path / "cli"
    code = rsbench(["--quiet", "build-msc", "--aid", str(sources["aid"]), "--out", str(out),
                    "--mini", "--per-class", "4", "--size", "16"])
    assert code == 0
    text = capsys.readouterr().out
    assert "mini-msc, 48 images (test 12, train 36), 16x16" in text
    assert json.loads((out / "dataset.json").read_text())["parameters"]["per_class"] == 4
    code = rsbench(["build-msc", "--merced", str(sources["aid"]), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "holds AID" in err and "Traceback" not in err
    code = rsbench(["build-transfer", "--out", str(tmp_path / "y")])
    assert code == 2 and "exactly one of --patternnet or --eurosat" in capsys.readouterr().err
    for size, message in [("0", "0 is too small; use at least 8"),
                          ("224x200", "'224x200' is not an image side in pixels"),
                          ("big", "'big' is not an image side in pixels")]:
        code = rsbench(["build-msc", "--aid", str(sources["aid"]), "--out",
                        str(tmp_path / "s"), "--size", size])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
        assert err.startswith("rsbench: error: Invalid value for '--size'")
        assert "build-msc --help" in err and "Usage:" not in err
    assert not (tmp_path / "s").exists()
    code = rsbench(["build-transfer", "--eurosat", "x", "--workers", "0", "--out", "y"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "'--workers': 0 is not in the range" in err
    code = rsbench(["--quiet", "build-msc", "--aid", str(sources["aid"]), "--out",
                    str(tmp_path / "sq"), "--size", "12x12"])  # synth's ROWSxCOLS form, square
    assert code == 0 and open_dataset(tmp_path / "sq").array("image").shape[1:] == (12, 12, 3)


def test_builder_does_not_import_torch(sources, tmp_path):
    code = (
        "import sys\n"
        "from rsbench.cli.main import main\n"
        f"rc = main(['--quiet', 'build-msc', '--nwpu', {str(sources['nwpu'])!r}, '--out', "
        f"{str(tmp_path / 'nt')!r}, '--size', '8'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_torch_reader_serves_built_samples(msc):
    import torch

    from rsbench.datasets.torch_dataset import TaskDataset

    torch.set_num_threads(1)
    ds = TaskDataset(msc, "aid", "test")
    assert len(ds) == 30
    sample = ds[3]
    row = msc.index.iloc[sample["index"]]
    assert sample["image"].shape == (3, *SIZE) and sample["image"].dtype == torch.uint8
    assert int(sample["label"]) == row["label"] and row["split"] == "test"


@pytest.mark.realdata
def test_real_aid_sample_builds(tmp_path):
    root = SHARED / "aid-sample"
    if not root.is_dir():
        pytest.skip(f"real AID sample not found at {root}")
    build_msc(tmp_path / "aid", {"aid": root}, size=(32, 32))
    ds = open_dataset(tmp_path / "aid")
    assert ds.tasks["aid"]["classes"] == list(SPECS["aid"].classes)
    assert ds.manifest["num_samples"] == 150
    counts = per_class_split_counts(ds, "aid")
    assert (counts["train"] == 4).all() and (counts["test"] == 1).all()
    assert set(ds.index["orig_height"]) == {150}  # this copy was downsampled from 600
    row = ds.index.iloc[0]
    assert row["path"] == "Airport/airport_1.jpg" and row["class"] == "Airport"
