"""Importing the published GID-MTL patches; real-sample checks skip when the sample is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from conftest import shared_data
from gidtools import to_rgb

from rsbench.cli.main import main
from rsbench.datasets.builders.gid_mtl import import_gid_mtl
from rsbench.datasets.builders.psc import PscOptions
from rsbench.datasets.format.reader import open_dataset
from rsbench.datasets.sources.gid import ColorDecoder, class_names


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_real_colour_labels_decode_to_the_real_gray_labels():
    base = shared_data("gid-mtl5-sample")
    decoder = ColorDecoder(5)
    checked = 0
    for color_path in sorted((base / "label_color").rglob("*.tif")):
        gray = _read(base / "label_gray" / color_path.relative_to(base / "label_color"))[0]
        codes = decoder.codes(_read(color_path))
        decoded = np.where(codes == decoder.off, 0, codes)
        expected = np.where(gray == 5, 0, gray.astype(np.int64) + 1)
        assert np.array_equal(decoded, expected), color_path
        checked += 1
    assert checked == 50


def test_real_sample_imports_and_the_rule_reproduces_every_scene_label(tmp_path):
    base = shared_data("gid-mtl5-sample")
    m = import_gid_mtl(base, tmp_path / "psc5", PscOptions(classes=5))
    ds = open_dataset(tmp_path / "psc5")
    assert m["num_samples"] == 50
    assert (ds.index["rule_label"] == ds.index["label"]).all()
    assert m["report"]["rule_disagreements"] == []
    # undefined pixels (gray 5) are stored as 0 in the mask, class k as k+1
    row = 0
    gray = _read(base / ds.index.at[row, "label_source"])[0]
    assert np.array_equal(ds.array("mask")[row], np.where(gray == 5, 0, gray + 1))
    assert {c: sum(v[c] for v in m["tasks"]["scene"]["counts"].values())
            for c in class_names(5)} == dict.fromkeys(class_names(5), 10)


def write_fake_gid_mtl(root: Path) -> None:
    """A GID-MTL15-layout folder with a 225-pixel patch and a duplicated image."""
    rng = np.random.default_rng(0)
    imgs_first = None
    names = class_names(15)
    for k, name in enumerate(names[:3]):
        for n in range(1, 5):
            size = 225 if (k, n) == (1, 2) else 224
            gray = np.full((size, size), k, dtype=np.uint8)
            gray[:40] = 15  # undefined
            img = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
            if (k, n) == (2, 4):  # exact duplicate of class 0, image 1
                img = imgs_first
            if (k, n) == (0, 1):
                imgs_first = img.copy()
            for sub, arr in (("image", img), ("label_gray", gray[..., None]),
                             ("label_color", to_rgb(np.where(gray == 15, 0, gray + 1), 15))):
                path = root / "GID-MTL15" / sub / name / f"{n}.tif"
                path.parent.mkdir(parents=True, exist_ok=True)
                with rasterio.open(path, "w", driver="GTiff", height=size, width=size,
                                   count=arr.shape[2], dtype="uint8") as dst:
                    dst.write(np.moveaxis(arr, -1, 0))


def test_crops_225_pixel_patches_and_removes_duplicates(tmp_path):
    write_fake_gid_mtl(tmp_path / "GID-MTL")
    m = import_gid_mtl(tmp_path / "GID-MTL", tmp_path / "out", PscOptions(classes=15))
    ds = open_dataset(tmp_path / "out")
    assert m["num_samples"] == 11
    assert m["report"]["cropped_to_size"] == ["urban_residential/2.tif (225x225)"]
    assert m["report"]["duplicates_removed"] == [
        {"removed": "rural_residential/4", "kept": "industrial_land/1", "same_scene_label": False}]
    assert ds.array("image").shape == (11, 224, 224, 3)
    assert not (ds.index["image_id"] == "rural_residential/4").any()


def test_wrong_classes_for_the_folder_is_a_clear_error(tmp_path, capsys):
    write_fake_gid_mtl(tmp_path / "GID-MTL")
    code = main(["build-psc", "--gid-mtl", str(tmp_path / "GID-MTL"), "--classes", "5",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "GID-MTL15" in err and "--classes" in err
    assert not (tmp_path / "o" / "dataset.json").exists()
