"""Scene dataset readers and the synthetic scene generator, on copies in the real layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.datasets.sources.scenes import SPECS, read_scene_dataset
from rsbench.datasets.synth.scenes import MERCED_ODD_SIZES, synth_scenes
from rsbench.errors import InputError, UsageError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# dataset -> (path of the first image below --out, image format)
FIRST_FILE = {
    "merced": ("UCMerced_LandUse/Images/agricultural/agricultural00.tif", "TIFF"),
    "aid": ("AID/Airport/airport_1.jpg", "JPEG"),
    "nwpu": ("NWPU-RESISC45/airplane/airplane_001.jpg", "JPEG"),
    "patternnet": ("PatternNet/images/airplane/airplane001.jpg", "JPEG"),
    "eurosat": ("2750/AnnualCrop/AnnualCrop_1.jpg", "JPEG"),
}


@pytest.mark.parametrize("key", list(SPECS))
def test_synthetic_copy_has_real_layout_and_reads_from_any_level(tmp_path, key):
    s = SPECS[key]
    top = synth_scenes(tmp_path, key, per_class=2, size=(40, 40))
    rel = "/".join((*s.top, s.classes[0], s.file_name(s.classes[0], s.first_number())))
    fmt = "TIFF" if ".tif" in s.ext else "JPEG"
    if key in FIRST_FILE:  # the published names, independently of the source's own file
        assert (rel, fmt) == FIRST_FILE[key]
    with Image.open(tmp_path / rel) as im:
        assert im.format == fmt and im.mode == "RGB"
    class_root = tmp_path.joinpath(*s.top)
    assert sorted(p.name for p in class_root.iterdir()) == sorted(s.classes)
    for given in (tmp_path, top, class_root):  # parent, unpacked folder, class folders' parent
        src = read_scene_dataset(given, key)
        assert src.root == class_root
        assert len(src.images) == 2 * len(s.classes)
        assert [im.class_name for im in src.images[::2]] == list(s.classes)
        assert all(s.classes[im.label] == im.class_name for im in src.images)
    second = s.file_name(s.classes[-1], s.first_number() + 1)
    assert src.images[-1].path == class_root / s.classes[-1] / second


def test_merced_has_some_odd_sizes_like_the_real_one(tmp_path):
    synth_scenes(tmp_path, "merced", per_class=5)
    sizes = {}
    for im in read_scene_dataset(tmp_path, "merced").images:
        with Image.open(im.path) as pil:
            sizes[im.path.name] = (pil.height, pil.width)
    odd = {n: s for n, s in sizes.items() if s != (256, 256)}
    assert 1 <= len(odd) <= 0.1 * len(sizes)
    assert set(odd.values()) <= set(MERCED_ODD_SIZES)


def test_synthetic_classes_are_learnable_from_colour_statistics(tmp_path):
    synth_scenes(tmp_path, "nwpu", per_class=4, size=(48, 48))
    src = read_scene_dataset(tmp_path, "nwpu")
    pixels = [np.asarray(Image.open(im.path), dtype=np.float32).reshape(-1, 3)
              for im in src.images]
    feats = np.array([np.concatenate([p.mean(0), p.std(0)]) for p in pixels])
    feats = (feats - feats.mean(0)) / feats.std(0)
    labels = np.array([im.label for im in src.images])
    correct = 0
    for i in range(len(feats)):  # leave-one-out nearest class mean
        keep = np.arange(len(feats)) != i
        means = np.array([feats[keep & (labels == k)].mean(0) for k in range(45)])
        correct += int(np.argmin(((means - feats[i]) ** 2).sum(1)) == labels[i])
    assert correct / len(feats) > 0.8  # 45 classes: chance is 2%


def test_natural_order_and_stray_files_ignored(tmp_path):
    synth_scenes(tmp_path, "aid", per_class=11, size=(24, 24))
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "AID" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "AID" / "Airport" / "Thumbs.db").write_bytes(b"\0")
    (tmp_path / "AID" / "Airport" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "AID" / "readme.txt").write_text("AID")
    (tmp_path / "__MACOSX" / "AID").mkdir(parents=True)
    src = read_scene_dataset(tmp_path, "aid")
    airport = [im.path.name for im in src.images if im.class_name == "Airport"]
    assert airport == [f"airport_{n}.jpg" for n in range(1, 12)]
    assert len(src.images) == 11 * 30


def test_relative_path_gives_absolute_root(tmp_path, monkeypatch):
    """The root goes into the manifest and the resume check: it must not depend on the cwd."""
    synth_scenes(tmp_path / "d", "eurosat", per_class=1, size=(16, 16))
    monkeypatch.chdir(tmp_path)
    src = read_scene_dataset("d", "eurosat")
    assert src.root == tmp_path / "d" / "2750" and src.images[0].path.is_absolute()


def test_eurosat_under_extra_folder(tmp_path):
    synth_scenes(tmp_path / "EuroSAT", "eurosat", per_class=2, size=(16, 16))
    src = read_scene_dataset(tmp_path, "eurosat")
    assert src.root == tmp_path / "EuroSAT" / "2750" and len(src.images) == 20


@pytest.fixture()
def merced(tmp_path):
    synth_scenes(tmp_path, "merced", per_class=2, size=(24, 24))
    return tmp_path / "UCMerced_LandUse" / "Images"


def test_unexpected_class_folder_is_named(merced):
    (merced / "harbor").rename(merced / "harbour")
    with pytest.raises(InputError, match=r"harbour is not one of the 21 published UC Merced class folders"):
        read_scene_dataset(merced, "merced")


def test_missing_class_is_named(merced):
    shutil.rmtree(merced / "runway")
    with pytest.raises(InputError, match=r"lacks 1 of the 21 UC Merced class folders \(runway\)"):
        read_scene_dataset(merced.parent, "merced")


def test_empty_class_folder(merced):
    for p in (merced / "beach").iterdir():
        p.unlink()
    with pytest.raises(InputError, match=r"beach holds no \.tif images"):
        read_scene_dataset(merced, "merced")


def test_wrong_file_type_is_named(merced):
    Image.new("RGB", (8, 8)).save(merced / "beach" / "beach02.png")
    with pytest.raises(InputError, match=r"beach02\.png is a \.png file, but UC Merced images"):
        read_scene_dataset(merced, "merced")


def test_eurosat_multispectral_release_is_explained(tmp_path):
    synth_scenes(tmp_path, "eurosat", per_class=1, size=(16, 16))
    jpg = tmp_path / "2750" / "Forest" / "Forest_1.jpg"
    Image.open(jpg).save(jpg.with_suffix(".tif"))
    jpg.unlink()
    with pytest.raises(InputError, match=r"multispectral"):
        read_scene_dataset(tmp_path, "eurosat")


def test_dataset_of_the_wrong_kind_is_named(tmp_path):
    synth_scenes(tmp_path, "aid", per_class=1, size=(16, 16))
    synth_scenes(tmp_path / "n", "nwpu", per_class=1, size=(16, 16))
    with pytest.raises(InputError, match=r"holds AID .*not UC Merced"):
        read_scene_dataset(tmp_path / "AID", "merced")
    with pytest.raises(InputError, match=r"holds NWPU-RESISC45 .*not PatternNet"):
        read_scene_dataset(tmp_path / "n", "patternnet")


def test_parent_holding_several_datasets_finds_each(tmp_path):
    for key in ("merced", "nwpu", "patternnet"):
        synth_scenes(tmp_path, key, per_class=1, size=(16, 16))
    for key in ("merced", "nwpu", "patternnet"):
        assert read_scene_dataset(tmp_path, key).spec.key == key


def test_missing_and_foreign_paths(tmp_path):
    with pytest.raises(InputError, match=r"--aid .*does not exist"):
        read_scene_dataset(tmp_path / "nope", "aid")
    (tmp_path / "AID.zip").write_bytes(b"PK")
    with pytest.raises(InputError, match=r"is a file"):
        read_scene_dataset(tmp_path / "AID.zip", "aid")
    (tmp_path / "holiday" / "photos").mkdir(parents=True)
    with pytest.raises(InputError, match=r"does not look like AID.*found holiday"):
        read_scene_dataset(tmp_path, "aid")
    with pytest.raises(UsageError, match="unknown scene dataset"):
        read_scene_dataset(tmp_path, "ucm")


def test_synth_refuses_too_many_images_and_nonempty_target(tmp_path):
    with pytest.raises(UsageError, match="at most 100"):
        synth_scenes(tmp_path, "merced", per_class=101)
    synth_scenes(tmp_path, "eurosat", per_class=1, size=(16, 16))
    with pytest.raises(UsageError, match="not empty"):
        synth_scenes(tmp_path, "eurosat", per_class=1, size=(16, 16))


@pytest.mark.realdata
def test_real_aid_sample_is_read_with_its_real_class_names():
    root = SHARED / "aid-sample"
    if not root.is_dir():
        pytest.skip(f"real AID sample not found at {root}")
    for given in (root, root / "AID"):
        src = read_scene_dataset(given, "aid")
        assert src.root == root / "AID"
        assert sorted({im.class_name for im in src.images}) == sorted(SPECS["aid"].classes)
        assert len(src.images) == 150
    first = src.images[0]
    assert first.class_name == "Airport" and first.path.name == "airport_1.jpg"
    assert [im.path.name for im in src.images if im.class_name == "StorageTanks"] == \
        [f"storagetanks_{n}.jpg" for n in range(1, 6)]
    with Image.open(first.path) as im:
        assert im.format == "JPEG" and im.mode == "RGB"


def test_synth_scenes_cli(tmp_path, capsys):
    from rsbench.cli.main import main as rsbench

    code = rsbench(["--quiet", "synth", "scenes", "--dataset", "patternnet", "--out",
                    str(tmp_path), "--per-class", "2", "--size", "16x16", "--seed", "3"])
    assert code == 0
    assert "synthetic PatternNet (38 classes, 76 images)" in capsys.readouterr().out
    assert (tmp_path / "PatternNet/images/wastewater_treatment_plant/"
            "wastewater_treatment_plant002.jpg").is_file()
    code = rsbench(["synth", "scenes", "--dataset", "merced", "--out", str(tmp_path),
                    "--per-class", "101"])
    assert code == 2 and "use at most 100" in capsys.readouterr().err
