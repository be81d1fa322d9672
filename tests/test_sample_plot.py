"""TaskDataset.plot(i) and `rsbench info --plot`: Figures and PNGs for MSC, PSC and TAIGA samples,
the PSC mask drawn in the manifest's class colours."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from matplotlib.figure import Figure
from training_fixtures import write_msc, write_psc

from rsbench.cli.main import main as rsbench
from rsbench.datasets.builders.taiga import build_taiga
from rsbench.datasets.previews.sample_plot import rgb_bands
from rsbench.datasets.synth.taiga import synth_taiga
from rsbench.datasets.torch_dataset import TaskDataset
from rsbench.errors import UsageError

PSC_COLORS = [[0, 0, 0], [250, 10, 10], [10, 250, 10], [10, 10, 250]]


def png_size(path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def psc(tmp_path_factory):
    return write_psc(tmp_path_factory.mktemp("d") / "psc", classes=3, per_class=2,
                     colors=PSC_COLORS)


@pytest.fixture(scope="module")
def taiga(tmp_path_factory):
    src = tmp_path_factory.mktemp("taiga_src")
    synth_taiga(src, size=(120, 140), bands=24, stands=16, seed=7)
    out = tmp_path_factory.mktemp("b") / "taiga"
    build_taiga(src, out, patch=9, stride=8, bands="2:20", split="blocks", block_size=40, seed=2)
    return out


def test_msc_plot_is_a_png_titled_with_the_class(tmp_path):
    ds = TaskDataset(write_msc(tmp_path / "msc", per_class=2), "aid")
    fig = ds.plot(3, suptitle="aid sample 3")
    assert isinstance(fig, Figure)
    label = int(ds[3]["label"])
    assert fig.axes[0].get_title() == f"aid_c{label}"
    assert fig.get_suptitle() == "aid sample 3"
    fig.savefig(tmp_path / "msc.png")
    w, h = png_size(tmp_path / "msc.png")
    assert 200 < w < 800 and 200 < h < 800
    assert ds.plot(3, show_titles=False).axes[0].get_title() == ""


def test_psc_mask_panel_uses_the_manifest_colours(psc, tmp_path):
    ds = TaskDataset(psc, "segmentation")
    fig = ds.plot(0)
    img_ax, mask_ax = fig.axes[:2]
    assert img_ax.get_title() == "scene: class0"  # the scene label of the first sample
    shown = mask_ax.get_images()[0].get_array()
    mask = ds[0]["mask"].numpy()
    for k in np.unique(mask):
        assert (shown[mask == k] == PSC_COLORS[k]).all(), k
    legend = [t.get_text() for t in mask_ax.get_legend().get_texts()]
    assert legend == ["unlabelled", "class0", "class1"]
    fig.savefig(tmp_path / "psc.png")
    w, h = png_size(tmp_path / "psc.png")
    assert w > h > 200


def test_psc_without_colours_gets_a_palette_and_index_errors(tmp_path):
    ds = TaskDataset(write_psc(tmp_path / "p", classes=2, per_class=1), "scene")
    shown = ds.plot(-1).axes[1].get_images()[0].get_array()
    assert shown.shape[-1] == 3 and len(np.unique(shown.reshape(-1, 3), axis=0)) == 3
    with pytest.raises(UsageError, match="sample index 2 is out of range.*use 0..1"):
        ds.plot(2)


def test_taiga_plot_composite_labels_and_values(taiga, tmp_path):
    ds = TaskDataset(taiga, "basal_area", split="test")
    manifest = ds.data.manifest["taiga"]
    idx, how = rgb_bands(manifest, len(manifest["bands"]))
    wl = np.asarray(manifest["wavelengths"]) * 1000
    assert [abs(wl[i] - t) for i, t in zip(idx, (640, 550, 460))] == \
        [np.abs(wl - t).min() for t in (640, 550, 460)]
    fig = ds.plot(0)
    titles = [a.get_title() for a in fig.axes]
    assert titles[0] == "image, " + how + "\n(training mean ± 2 std)"
    assert titles[1:4] == ["fertility_class", "soil_class", "main_tree_species_class"]
    assert titles[4].startswith("basal_area [")
    text = fig.axes[5].texts[0].get_text()
    assert text.count("\n") == 9 and "basal_area:" in text
    # the listed value is the centre target in physical units: scaled * (max - min) + min
    t = ds.data.tasks["mean_height"]
    scaled = float(ds.data.index["mean_height"].iloc[int(ds.rows[0])])
    assert f"mean_height: {scaled * (t['max'] - t['min']) + t['min']:.3g} {t['unit']}" in text
    assert fig.axes[0].lines[0].get_xydata().tolist() == [[4.0, 4.0]]  # centre of the 9×9 window
    centre = ds.data.sample_array("targets_reg", int(ds.rows[0]))[4, 4, t["channel"]]
    assert np.isclose(centre, scaled, equal_nan=True)
    rgb = fig.axes[0].get_images()[0].get_array()
    assert rgb.shape == (9, 9, 3) and rgb.min() >= 0 and rgb.max() <= 1 and rgb.std() > 0
    fig.savefig(tmp_path / "taiga.png")
    w, h = png_size(tmp_path / "taiga.png")
    assert w > 1000 and h > 200
    # a categorical task: no regression map panel
    assert len(TaskDataset(taiga, "soil_class").plot(0).axes) == 5


def test_rgb_bands_without_wavelengths_are_the_stated_fractions():
    assert rgb_bands({"wavelengths": None}, 11) == ([6, 4, 1], "RGB = stored bands 6, 4, 1 "
                                                     "(no wavelengths)")


def test_cli_info_plot_writes_a_png_and_errors_are_one_line(psc, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert rsbench(["info", str(psc), "--plot", "1", "--split", "train", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert png_size(out)[0] > 200
    for args, message in [(["--plot", "0"], "--plot needs --out FILE.png"),
                          (["--plot", "99", "--out", str(tmp_path / "x.png")],
                           "sample index 99 is out of range"),
                          (["--plot", "0", "--out", str(tmp_path / "x.jpg")], "must end in .png"),
                          (["--out", str(out)], "go with --plot INDEX"),
                          (["--plot", "0", "--task", "nope", "--out", str(out)], "no task 'nope'")]:
        code = rsbench(["info", str(psc), *args])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x.png").exists()
