"""build-psc opens GID images for GDAL's memory-mapped GeoTIFF reads (GTIFF_VIRTUAL_MEM_IO).

That path is exact for what the images need (all bands, in order, pixel-interleaved into the
strip buffer) in every layout below, and wrong for a label's bands read out of order from a
4-band pixel-interleaved file (GDAL 3.10): labels must keep GDAL's usual reads.
"""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from rsbench.datasets.builders import psc
from rsbench.datasets.builders.psc import PscOptions, build_psc
from rsbench.datasets.format.reader import open_dataset

LAYOUTS = list(itertools.product((3, 4), ("pixel", "band"), ("strips-1", "strips-16", "tiles")))


def _write(path, data, interleave, layout):
    count, height, width = data.shape
    kw = dict(driver="GTiff", height=height, width=width, count=count, dtype="uint8",
              interleave=interleave)
    if layout == "tiles":
        kw.update(tiled=True, blockxsize=64, blockysize=64)
    else:
        kw.update(blockysize=int(layout.split("-")[1]))
    with rasterio.open(path, "w", **kw) as dst:
        dst.write(data)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("count,interleave,layout", LAYOUTS)
def test_image_strips_read_mapped_are_exact(tmp_path, count, interleave, layout):
    data = np.random.default_rng(count).integers(0, 256, (count, 150, 131), dtype=np.uint8)
    path = tmp_path / "image.tif"
    _write(path, data, interleave, layout)
    for r0 in (0, 37, 86):  # block-aligned and not
        out = np.zeros((64, 131, count), dtype=np.uint8)
        with psc._open(path, mapped=True) as img:  # as process_pair reads an image strip
            img.read(window=Window(0, r0, 131, 64), out=out.transpose(2, 0, 1))
        assert np.array_equal(out.transpose(2, 0, 1), data[:, r0:r0 + 64])


def test_an_rgba_label_gives_the_masks_of_its_rgb_copy(synth_gid5, tmp_path):
    opts = PscOptions(classes=5, size=64)
    rgb = build_psc(synth_gid5, tmp_path / "rgb", opts)
    rgba_root = tmp_path / "gid-rgba"
    shutil.copytree(synth_gid5, rgba_root)
    labels = sorted(rgba_root.rglob("label_5classes/*.tif"))
    for label in labels:  # 4 bands, pixel-interleaved, one row per strip: uncompressed GeoTIFF
        with rasterio.open(label) as src:
            bands, profile = src.read(), src.profile
        profile.update(count=4, interleave="pixel", blockysize=1)
        with rasterio.open(label, "w", **profile) as dst:
            dst.write(np.concatenate([bands, np.full_like(bands[:1], 255)]))
    rgba = build_psc(rgba_root, tmp_path / "rgba", opts)
    assert rgba["num_samples"] == rgb["num_samples"] > 0
    a, b = open_dataset(tmp_path / "rgb"), open_dataset(tmp_path / "rgba")
    assert np.array_equal(a.array("mask"), b.array("mask"))
    assert np.array_equal(a.index["label"], b.index["label"])


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("count,interleave,layout", LAYOUTS)
def test_colour_label_strips_decode_exactly(tmp_path, count, interleave, layout):
    from rsbench.datasets.builders.psc_strips import _label_codes, _Scratch
    from rsbench.datasets.sources import gid

    palette = [*gid.class_colors(5), (0, 0, 0), (12, 200, 7), (255, 255, 254)]  # + off-palette
    rng = np.random.default_rng(count)
    rgb = np.asarray(palette, dtype=np.uint8)[rng.integers(0, len(palette), (150, 131))]
    rgb = rgb.transpose(2, 0, 1)
    data = rgb if count == 3 else np.concatenate([rgb, rng.integers(0, 256, (1, 150, 131),
                                                                    dtype=np.uint8)])
    path = tmp_path / "label.tif"
    _write(path, data, interleave, layout)
    decoder = gid.ColorDecoder(5)
    expected = decoder.codes(rgb)  # packed in numpy, from the bands as written
    pair = gid.GidPair("x", path, path, "color")
    with psc._open(path, mapped=True) as lab:  # as process_pair opens a colour label
        scratch = _Scratch(64, 131, lab.count)
        for r0 in (0, 37, 86):
            codes, raw = _label_codes(lab, pair, Window(0, r0, 131, 64), 5, decoder, scratch)
            assert np.array_equal(codes, expected[r0:r0 + 64])
            assert np.array_equal(gid.code_of_key(raw), gid.rgb_code(*rgb[:, r0:r0 + 64]))
