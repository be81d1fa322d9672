"""Readers check what they read (issue 14, item 5): >8-bit scene images are converted by their
real range (never clipped to white), non-RGB images are refused with one line, and an ENVI
header whose byte order does not fit the data is named."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from reliability.hardening_data import TAIGA_BUILD, merced_source, one_line, taiga_source
from rsbench.cli.main import main
from rsbench.datasets.format.reader import open_dataset
from rsbench.datasets.sources.envi import EnviRaster, looks_byte_swapped
from rsbench.datasets.sources.scene_images import decode_resize
from rsbench.errors import InputError

CUBE = "20170615_reflectance_mosaic_128b"


def rgb8(seed: int = 0, size: int = 32) -> np.ndarray:
    """A (size, size, 3) uint8 image with the full 0..255 range."""
    img = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    img[0, 0] = (0, 0, 0)
    img[0, 1] = (255, 255, 255)
    return img


def write_tiff(path: Path, bands_first: np.ndarray, **kw) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver="GTiff", width=bands_first.shape[2],
                           height=bands_first.shape[1], count=bands_first.shape[0],
                           dtype=bands_first.dtype, **kw) as ds:
            ds.write(bands_first)
    return path


@pytest.mark.parametrize("layout", [{"interleave": "pixel", "photometric": "RGB"},
                                    {"interleave": "band"}])
@pytest.mark.parametrize("bits", [11, 16])
def test_16bit_rgb_tiff_is_scaled_by_its_real_range(tmp_path, layout, bits):
    img = rgb8()
    wide = np.rint(img.astype(np.float64) * ((1 << bits) - 1) / 255).astype(np.uint16)
    path = write_tiff(tmp_path / "a.tif", wide.transpose(2, 0, 1), **layout)
    dec = decode_resize(str(path), (32, 32))
    assert dec.error == ""
    assert np.abs(dec.image.astype(int) - img).max() <= 1  # not white, not dark: the same image


def test_16bit_grey_tiff_is_not_white(tmp_path):
    grey = rgb8()[:, :, 0]
    Image.fromarray(grey.astype(np.uint16) * 8).save(tmp_path / "g.tif")  # 11-bit values
    dec = decode_resize(str(tmp_path / "g.tif"), (32, 32))
    assert dec.error == "" and dec.image.mean() < 200
    for c in range(3):
        assert np.abs(dec.image[:, :, c].astype(int) - grey).max() <= 1


def test_8bit_images_decode_as_before(tmp_path):
    img = rgb8()
    Image.fromarray(img).save(tmp_path / "a.tif")
    dec = decode_resize(str(tmp_path / "a.tif"), (32, 32))
    assert np.array_equal(dec.image, img)


def test_four_band_tiff_is_refused(tmp_path):
    four = np.concatenate([rgb8().transpose(2, 0, 1), rgb8(1)[None, :, :, 0]])
    dec = decode_resize(str(write_tiff(tmp_path / "n.tif", four)), (32, 32))
    assert dec.image is None and "has 4 bands" in dec.error and "RGB" in dec.error


def _swap_in(src: Path, make) -> Path:
    """A synthetic UC Merced whose first beach image is rewritten by ``make(path, rgb)``."""
    root = merced_source(src)
    target = sorted((root / "UCMerced_LandUse" / "Images" / "beach").glob("*.tif"))[0]
    make(target, np.asarray(Image.open(target).convert("RGB")))
    return target


def test_build_msc_stores_a_16bit_merced_image_correctly(tmp_path, capsys):
    def to_16bit(path, img):
        wide = img.astype(np.uint16) * 8  # 11-bit data in a 16-bit file
        write_tiff(path, wide.transpose(2, 0, 1), interleave="pixel", photometric="RGB")

    target = _swap_in(tmp_path / "src", to_16bit)
    pillow_alone = np.asarray(Image.open(target).convert("RGB"))
    assert pillow_alone.max() <= 8  # Pillow keeps only the high byte: a nearly black image
    out = tmp_path / "msc"
    assert main(["-q", "build-msc", "--merced", str(tmp_path / "src"), "--out", str(out),
                 "--size", "32"]) == 0
    ds = open_dataset(out)
    idx = ds.index
    row = idx.index[idx["path"].str.endswith(f"beach/{target.name}")][0]
    stored = np.asarray(ds.array("image")[row])
    expected = decode_resize(str(target), (32, 32)).image
    assert np.array_equal(stored, expected) and 40 < stored.mean() < 215


def test_build_msc_refuses_a_four_band_merced_image(tmp_path, capsys):
    def to_four_bands(path, img):
        write_tiff(path, np.concatenate([img.transpose(2, 0, 1), img[None, :, :, 0]]))

    target = _swap_in(tmp_path / "src", to_four_bands)
    capsys.readouterr()
    assert main(["-q", "build-msc", "--merced", str(tmp_path / "src"), "--out",
                 str(tmp_path / "msc"), "--size", "32"]) == 1
    line = one_line(capsys.readouterr().err)
    assert str(target) in line and "4 bands" in line


# ------------------------------------------------------------------ ENVI byte order


@pytest.fixture(scope="module")
def taiga_src(tmp_path_factory) -> Path:
    return taiga_source(tmp_path_factory.mktemp("taiga") / "src")


def _set_byte_order(header: Path, order: int) -> None:
    text = header.read_text()
    assert "byte order = 0" in text
    header.write_text(text.replace("byte order = 0", f"byte order = {order}"))


@pytest.mark.parametrize("name", [CUBE, "forestdata_stands"])
def test_big_endian_envi_is_read_with_its_byte_order(taiga_src, tmp_path, name):
    src = Path(shutil.copytree(taiga_src, tmp_path / "be"))
    little = EnviRaster.open(taiga_src / name)
    data = np.fromfile(src / name, dtype=little.dtype)
    data.byteswap().tofile(src / name)
    _set_byte_order(src / f"{name}.hdr", 1)
    big = EnviRaster.open(src / name)
    assert big.dtype.byteorder == ">"
    np.testing.assert_array_equal(big.read_rows(0, big.lines), little.read_rows(0, little.lines))


@pytest.mark.parametrize("name", [CUBE, "forestdata_stands"])
def test_wrong_byte_order_is_named(taiga_src, tmp_path, name):
    src = Path(shutil.copytree(taiga_src, tmp_path / "wrong"))
    _set_byte_order(src / f"{name}.hdr", 1)
    with pytest.raises(InputError, match=r"'byte order = 1'.*byte-swapped.*'byte order = 0'"):
        EnviRaster.open(src / name)


def test_build_taiga_with_a_wrong_byte_order_is_one_line(taiga_src, tmp_path, capsys):
    src = Path(shutil.copytree(taiga_src, tmp_path / "wrong"))
    _set_byte_order(src / f"{CUBE}.hdr", 1)
    capsys.readouterr()
    assert main(["-q", "build-taiga", "--taiga", str(src), "--out", str(tmp_path / "o"),
                 *TAIGA_BUILD]) == 1
    line = one_line(capsys.readouterr().err)
    assert f"{CUBE}.hdr" in line and "byte order" in line
    assert not (tmp_path / "o").exists()


def test_byte_order_check_on_plausible_and_swapped_samples():
    rng = np.random.default_rng(0)
    reflectance = rng.integers(188, 584, 5000).astype(np.int16)  # the real range
    assert not looks_byte_swapped(reflectance)
    assert looks_byte_swapped(reflectance.byteswap())
    full_range = rng.integers(0, 65536, 5000).astype(np.uint16)  # no byte is more regular
    assert not looks_byte_swapped(full_range)
    floats = rng.normal(0.2, 0.05, 5000).astype(np.float32)
    assert not looks_byte_swapped(floats)
    assert looks_byte_swapped(floats.byteswap())
    whole = rng.integers(0, 100, 5000).astype(np.float32)  # zero low bytes, varied exponents
    assert not looks_byte_swapped(whole)
    assert not looks_byte_swapped(reflectance[:10].byteswap())  # too few values to judge


def test_an_unreadable_scene_image_is_named_as_a_permission_problem(tmp_path, monkeypatch):
    import rsbench.datasets.sources.scene_images as scene_images

    path = tmp_path / "a.tif"
    Image.fromarray(rgb8()).save(path)

    def denied(p, *a, **k):  # tests run as root: chmod would not stop the read
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(scene_images.Image, "open", denied)
    dec = decode_resize(str(path), (32, 32))
    assert dec.image is None and "permission denied" in dec.error
    assert "download" not in dec.error
