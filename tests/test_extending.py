"""The README's "Extending rsbench" examples run as written, and the registries feed the CLI."""

from __future__ import annotations

import csv
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from rsbench.datasets.sources import SCENE_SOURCES, sources_for

README = Path(__file__).resolve().parents[1] / "README.md"
# the order of the section's ```python blocks
SCENE_SOURCE, HSI_SOURCE, MODEL, WEIGHTING, TABLE = range(5)


def readme_blocks() -> list[str]:
    """The ```python blocks of the README's "Extending rsbench" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Extending rsbench", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def load(name: str, code: str) -> types.ModuleType:
    """Run ``code`` as module ``name`` (registered in sys.modules, as an import would)."""
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    exec(compile(code, f"README.md:{name}", "exec"), mod.__dict__)
    return mod


@pytest.fixture
def readme_source():
    """The README's example scene source, registered for the test and removed afterwards."""
    before = dict(SCENE_SOURCES)
    try:
        yield load("readme_myscenes", readme_blocks()[SCENE_SOURCE]).MYSCENES
    finally:
        SCENE_SOURCES.clear()
        SCENE_SOURCES.update(before)
        sys.modules.pop("readme_myscenes", None)


def readme_json_blocks() -> list[str]:
    """The ```json blocks of the same section (benchmark configs)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Extending rsbench", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```json\n(.*?)```", section, re.S)


def test_readme_line_counts_are_those_of_its_examples() -> None:
    """Each "`path` (N lines)" of the section is followed by its example of N lines."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Extending rsbench", 1)[1].split("\n## ", 1)[0]
    claims = re.findall(r"`[\w/.-]+\.(?:py|json)` \((\d+) lines\)", section)
    blocks = re.findall(r"```(?:python|json)\n(.*?)```", section, re.S)
    assert len(claims) == len(blocks) == 6
    assert [int(n) for n in claims] == [len(b.rstrip("\n").splitlines()) for b in blocks]


def test_readme_has_one_example_per_kind() -> None:
    assert len(readme_blocks()) == 5  # scene source, hyperspectral source, model, weighting, table
    assert len(readme_json_blocks()) == 1  # a benchmark that extends another


@pytest.fixture(scope="module")
def readme_extensions(tmp_path_factory):
    """The README's model, weighting, table and benchmark variant, registered for these tests
    (the variant in a copy of the config folder), and a small synthetic MSC to run them on."""
    import shutil

    from training_fixtures import write_msc

    from rsbench.models.registry import _FACTORIES
    from rsbench.reports.tables import TABLES
    from rsbench.training import config
    from rsbench.training.weighting import WEIGHTINGS

    root = tmp_path_factory.mktemp("extending")
    configs = root / "configs"
    shutil.copytree(config.CONFIG_DIR, configs)
    (configs / "msc-fixed.json").write_text(readme_json_blocks()[0])
    saved_dir = config.CONFIG_DIR
    blocks = readme_blocks()
    names = ("readme_tiny_shared", "readme_fixed", "readme_msc_oa")
    try:
        for name, code in zip(names, (blocks[MODEL], blocks[WEIGHTING], blocks[TABLE])):
            load(name, code)
        config.CONFIG_DIR = configs
        data = write_msc(root / "msc", name="msc", per_class=5, size=16)
        yield {"data": data, "runs": root / "runs"}
    finally:
        config.CONFIG_DIR = saved_dir
        _FACTORIES.pop("tiny-shared", None)
        WEIGHTINGS.pop("fixed", None)
        TABLES.pop("msc-oa", None)
        for name in names:
            sys.modules.pop(name, None)


def run_args(benchmark: str, ext: dict, *more: str) -> list[str]:
    return ["-q", "run", benchmark, "--model", "tiny-shared", "--data", str(ext["data"]),
            "--epochs", "1", "--input-size", "0", "--max-train-batches", "2", "--workers", "0",
            "--batch-size", "4", "--out", str(ext["runs"]), *more]


def test_readme_model_trains_on_msc_and_its_table_reports_it(readme_extensions, capsys) -> None:
    """msc names a ResNet-34 backbone; the one-file model has none and still runs, and the
    README's table shows its OA per task (MTLN, never run here, as missing)."""
    import json

    from rsbench.cli.main import main
    from rsbench.cli.report import write_report

    assert main(run_args("msc", readme_extensions)) == 0
    run = next((readme_extensions["runs"] / "msc" / "tiny-shared").glob("*/0"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["complete"] and set(metrics["tasks"]) == {"merced", "aid", "nwpu"}
    kwargs = json.loads((run / "config.json").read_text())["model_spec"]["kwargs"]
    assert "backbone" not in kwargs
    capsys.readouterr()
    write_report(str(readme_extensions["runs"]), "msc-oa", "markdown", None, paper=False, ci=False,
                 plot=None)
    text = capsys.readouterr().out
    # the short test run's settings differ from msc's: its own row, labelled by them
    row = next(line for line in text.splitlines() if line.startswith("| Tiny shared (")).split("|")
    assert "epochs=1" in row[1]
    shown = [float(c.strip("* ▲")) for c in row[2:5]]
    assert shown == [round(100 * metrics["tasks"][t]["oa"], 2) for t in ("merced", "aid", "nwpu")]


def test_readme_model_names_a_wrong_option(readme_extensions, capsys) -> None:
    from rsbench.cli.main import main

    code = main(run_args("msc", readme_extensions, "--set", "model_options.depth=2"))
    err = capsys.readouterr().err
    assert code == 2 and "takes no option 'depth'" in err and "backbone" not in err


def test_readme_benchmark_variant_changes_one_key_and_trains(readme_extensions) -> None:
    """msc-fixed = msc with the README weighting 2:1:1: the same resolved config but for that
    key, and a run that trains with it."""
    import json

    from rsbench.cli.main import main
    from rsbench.training.config import load_benchmark

    variant, base = load_benchmark("msc-fixed"), load_benchmark("msc")
    changed = {k for k in variant.keys() | base.keys() if variant.get(k) != base.get(k)}
    assert changed == {"description", "benchmark", "weighting"}
    assert variant["weighting"] == {"name": "fixed", "weights": [2, 1, 1]}
    assert main(run_args("msc-fixed", readme_extensions)) == 0
    run = next((readme_extensions["runs"] / "msc-fixed" / "tiny-shared").glob("*/0"))
    assert json.loads((run / "config.json").read_text())["weighting"]["weights"] == [2, 1, 1]
    last = list(csv.DictReader((run / "history.csv").open()))[-1]
    assert [float(last[f"weight_{t}"]) for t in ("merced", "aid", "nwpu")] == [2.0, 1.0, 1.0]


def test_readme_scene_source_is_synthesised_read_and_built(readme_source, tmp_path) -> None:
    from rsbench.datasets.builders.transfer import build_transfer
    from rsbench.datasets.format.reader import open_dataset
    from rsbench.datasets.sources.scenes import read_scene_dataset
    from rsbench.datasets.synth.scenes import synth_scenes

    assert "myscenes" in sources_for("transfer")
    top = synth_scenes(tmp_path / "src", "myscenes", per_class=3, size=(16, 16))
    assert (top / "images" / "town" / "town_1.jpg").is_file()
    src = read_scene_dataset(top, "myscenes")
    assert [im.class_name for im in src.images] == ["field"] * 3 + ["town"] * 3
    build_transfer(tmp_path / "t", "myscenes", top, train_per_class=1, size=(16, 16))
    ds = open_dataset(tmp_path / "t")
    assert ds.manifest["name"] == "transfer-myscenes"
    assert ds.tasks["myscenes"]["classes"] == ["field", "town"]


def test_readme_model_builds_through_the_registry(readme_extensions) -> None:
    from rsbench.errors import UsageError
    from rsbench.models import available_models, build_model
    from rsbench.models.base import TaskInfo

    assert "tiny-shared" in available_models()  # the README code's decorator registered it
    tasks = [TaskInfo("a", "classification", 3), TaskInfo("b", "classification", 5)]
    model = build_model("tiny-shared", tasks, width=4)
    out = model(torch.zeros(2, 3, 8, 8), ["a", "b"])
    assert out["a"].shape == (2, 3) and out["b"].shape == (2, 5)
    with pytest.raises(UsageError, match="takes no option 'depth'"):
        build_model("tiny-shared", tasks, depth=2)


def test_readme_table_is_registered_where_defined(readme_extensions) -> None:
    from rsbench.reports.tables import get_table

    table = get_table("msc-oa")  # register_table in the README code registered it
    assert table.name == "msc-oa" and [c.value for c in table.columns] == [
        "merced.oa", "aid.oa", "nwpu.oa"]


def test_readme_model_tables_list_every_registered_model() -> None:
    from rsbench.models.registry import model_factories

    listed = set(re.findall(r"^\| `([a-z0-9+\-]+)` \|", README.read_text(encoding="utf-8"),
                            re.M))
    # rsbench's own models (other tests register throwaway ones such as "tiny")
    shipped = {name for name, f in model_factories().items()
               if f.__module__.startswith("rsbench.models.")}
    assert len(shipped) >= 20 and shipped <= listed


def test_scene_source_choices_come_from_the_registry() -> None:
    from rsbench.cli.build_msc import build_msc
    from rsbench.cli.build_transfer import build_transfer
    from rsbench.cli.synth_scenes import scenes

    dataset = next(p for p in scenes.params if p.name == "dataset")
    assert list(dataset.type.choices) == list(SCENE_SOURCES)
    msc = [p.name for p in build_msc.params if p.name in SCENE_SOURCES]
    transfer = [p.name for p in build_transfer.params if p.name in SCENE_SOURCES]
    assert msc == list(sources_for("msc")) == ["merced", "aid", "nwpu"]
    assert transfer == list(sources_for("transfer")) == ["patternnet", "eurosat"]
    assert sorted(msc + transfer) == sorted(SCENE_SOURCES)


def test_setup_cfg_lists_every_package() -> None:
    """A non-editable install ships only the packages setup.cfg names; a new folder must be there."""
    import configparser

    root = README.parent
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(root).parts)
             for p in (root / "rsbench").rglob("__init__.py")}
    assert found <= listed


def test_readme_weighting_weighs_the_gradients(readme_extensions) -> None:
    from rsbench.training.weighting import build_weighting

    # the README code's decorator registered it
    w = build_weighting("fixed", ["a", "b"], {"a": "classification", "b": "classification"},
                        weights=[2.0, 0.5])
    x = torch.nn.Parameter(torch.tensor(3.0))
    w.backward({"a": x * 1.0, "b": x * x}, [x], torch.amp.GradScaler("cpu", enabled=False))
    assert x.grad.item() == pytest.approx(2.0 * 1 + 0.5 * 2 * 3)
    assert w.weights() == pytest.approx({"a": 2.0, "b": 0.5})


# --------------------------------------------------------------------------------------------
# a hyperspectral source: rsbench/datasets/sources/houston.py, build-hsi, benchmark houston
# --------------------------------------------------------------------------------------------

HOUSTON_FILE = README.parent / "rsbench" / "datasets" / "sources" / "houston.py"
# label blocks of the synthetic crop with a known image-grid label under the "mode" rule:
# image pixel -> (its 16 label pixels, the code it must get; 0 = unlabelled)
MIXED_BLOCKS = {
    (9, 1): ([3] * 9 + [0] * 7, 3),  # a class out-counting unlabelled wins
    (9, 2): ([3] * 8 + [0] * 8, 0),  # a tie with unlabelled goes to unlabelled
    (9, 3): ([2] * 6 + [1] * 5 + [0] * 5, 2),  # the most frequent class
    (9, 4): ([1] * 6 + [2] * 6 + [0] * 4, 1),  # a tie between classes: the lower code
}


def synth_houston(path: Path, size: int = 48, seed: int = 0) -> np.ndarray:
    """A houston_dataset.mat in the real crop's layout (hyprImg size x size x 48 uint16,
    clasLabs 4x finer, rgbImg): classes 1-3 (0 = unlabelled) in 8x8-pixel tiles, each class with
    its own spectrum plus noise, and the MIXED_BLOCKS. Returns the expected image-grid codes."""
    import scipy.io

    rng = np.random.default_rng(seed)
    tiles = np.mgrid[:size, :size] // 8
    codes = (tiles[0] + 2 * tiles[1]) % 4
    band = np.arange(48)
    spectra = np.stack([np.full(48, 1000.0)] + [1000 + 3000 * np.exp(-((band - 12 * c) / 5) ** 2)
                                                for c in (1, 2, 3)])
    image = spectra[codes] + rng.normal(0, 150, (size, size, 48))
    labels = np.kron(codes, np.ones((4, 4), dtype=np.int64)).astype(np.uint8)
    expected = codes.copy()
    for (r, c), (block, code) in MIXED_BLOCKS.items():
        labels[4 * r:4 * r + 4, 4 * c:4 * c + 4] = np.array(block).reshape(4, 4)
        expected[r, c] = code
    scipy.io.savemat(path, {"hyprImg": image.astype(np.uint16), "clasLabs": labels,
                            "rgbImg": np.zeros((4 * size, 4 * size, 3), np.uint8)})
    return expected


def mode_of_blocks(labels: np.ndarray, scale: int = 4) -> np.ndarray:
    """The "mode" rule written out block by block (unlabelled 0 counted; ties: 0, then the
    lowest code), independently of rsbench's vectorised one."""
    from collections import Counter

    h, w = labels.shape[0] // scale, labels.shape[1] // scale
    out = np.zeros((h, w), np.int64)
    for r in range(h):
        for c in range(w):
            n = Counter(labels[r * scale:(r + 1) * scale, c * scale:(c + 1) * scale].ravel()
                        .tolist())
            top = [k for k, v in n.items() if v == max(n.values())]
            out[r, c] = 0 if 0 in top else min(top)
    return out


def check_hsi_dataset(data, image: np.ndarray, codes: np.ndarray) -> None:
    """The built dataset holds the file's image and its labels on the image grid (``codes``,
    0 = unlabelled) over the crop, and its splits cannot leak: every window lies in blocks of
    its own split (or in no split's block), and no val/test pixel lies in a training window."""
    t = data.manifest["taiga"]
    crop = t["crop"]
    r0, c0, rows, cols = crop["row_off"], crop["col_off"], crop["rows"], crop["cols"]
    np.testing.assert_array_equal(np.asarray(data.array("image")),
                                  image[r0:r0 + rows, c0:c0 + cols].astype(np.int16))
    kept = data.task("land_cover")["codes"]
    lut = np.full(256, 255, np.int64)
    lut[kept] = np.arange(len(kept))
    np.testing.assert_array_equal(np.asarray(data.array("targets_cls"))[..., 0],
                                  lut[codes[r0:r0 + rows, c0:c0 + cols]])
    b, W = t["split"]["block_size"], image.shape[1]
    split_of = {r: sp for sp, regions in t["split"]["regions"].items() for r in regions}
    rr, cc = np.mgrid[r0:r0 + rows, c0:c0 + cols]
    block = (rr // b) * (W // b + 1) + cc // b
    train = np.zeros((rows, cols), bool)
    index = data.index
    for _, w in index[index["split"] == "train"].iterrows():
        train[w.win_row:w.win_row + w.win_h, w.win_col:w.win_col + w.win_w] = True
    for _, w in index.iterrows():
        sl = (slice(w.win_row, w.win_row + w.win_h), slice(w.win_col, w.win_col + w.win_w))
        assert {split_of.get(int(k), w.split) for k in np.unique(block[sl])} == {w.split}
        assert w.split == "train" or not train[sl].any()


def test_readme_hsi_source_is_the_shipped_file_and_registered() -> None:
    """The README shows houston.py as it is; its one registration line makes it a source of
    build-hsi, with the declared bands, wavelengths, target and label grid."""
    from rsbench.cli.build_hsi import build_hsi
    from rsbench.datasets.sources import HSI_SOURCE_MODULES, HSI_SOURCES

    assert readme_blocks()[HSI_SOURCE] == HOUSTON_FILE.read_text(encoding="utf-8")
    assert "houston" in HSI_SOURCE_MODULES
    source = HSI_SOURCES["houston"]
    assert source.bands == len(source.wavelengths) == 48
    assert 370 < source.wavelengths[0] < source.wavelengths[-1] < 1050
    assert "assumed" in source.wavelength_source
    assert (source.label_scale, source.label_rule) == (4, "mode")
    assert [t.name for t in source.targets] == ["land_cover"]
    assert sorted(source.targets[0].classes) == list(range(1, 13))
    choice = next(p for p in build_hsi.params if p.name == "source")
    assert list(choice.type.choices) == list(HSI_SOURCES)


def test_label_rules_give_the_stated_answers() -> None:
    from rsbench.datasets.sources.hsi import labels_on_image_grid

    blocks = [block for block, _ in MIXED_BLOCKS.values()] + [[5] * 16, [5] * 15 + [0]]
    labels = np.concatenate([np.array(b).reshape(4, 4) for b in blocks], axis=1)
    mode = labels_on_image_grid(labels, 4, "mode", 0)
    assert mode.tolist() == [[code for _, code in MIXED_BLOCKS.values()] + [5, 5]]
    assert labels_on_image_grid(labels, 4, "pure", 0).tolist() == [[0, 0, 0, 0, 5, 0]]
    # another unlabelled code: counted and returned as that code
    shifted = np.where(labels == 0, 9, labels)
    assert labels_on_image_grid(shifted, 4, "mode", 9).tolist() == [[3, 9, 2, 1, 5, 5]]


@pytest.fixture(scope="module")
def synthetic_houston(tmp_path_factory):
    """A synthetic houston_dataset.mat built with `rsbench build-hsi` (16-pixel blocks)."""
    from rsbench.cli.main import main

    root = tmp_path_factory.mktemp("houston-synth")
    expected = synth_houston(root / "houston_dataset.mat")
    assert main(["-q", "build-hsi", "--source", "houston", "--input",
                 str(root / "houston_dataset.mat"), "--out", str(root / "data"),
                 "--block-size", "16"]) == 0
    return root, expected


def test_hsi_source_builds_a_synthetic_crop_by_its_declaration(synthetic_houston) -> None:
    import scipy.io

    from rsbench.datasets.format.reader import open_dataset

    root, expected = synthetic_houston
    data = open_dataset(root / "data")
    assert data.name == "houston" and list(data.tasks) == ["land_cover"]
    assert data.task("land_cover")["classes"] == ["class 1", "class 2", "class 3"]
    assert set(data.index["task"]) == {"houston"} and set(data.index["split"]) == {
        "train", "val", "test"}
    t = data.manifest["taiga"]
    assert t["wavelengths"][0] == 374.4 and len(t["wavelengths"]) == 48
    assert t["source"]["label_grid"] == {"scale": 4, "rule": "mode",
                                         "rule_meaning": "see rsbench.datasets.sources.hsi"}
    image = scipy.io.loadmat(root / "houston_dataset.mat")["hyprImg"]
    check_hsi_dataset(data, image, expected)  # the MIXED_BLOCKS included


def test_separability_reads_a_declared_source(synthetic_houston, tmp_path) -> None:
    """The synthetic classes have distinct spectra (peaks 12 bands apart, noise 5 % of them):
    every pair separates almost fully (JM near its maximum 2)."""
    import pandas as pd

    from rsbench.cli.main import main

    root, _ = synthetic_houston
    out = tmp_path / "sep.csv"
    assert main(["-q", "separability", str(root / "data"), "--format", "csv",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 3 and (table["JM"] > 1.99).all(), table


def test_hsi_source_split_file_reproduces_the_blocks(synthetic_houston) -> None:
    """The build's splits.csv (one row per block) rebuilds the same windows whatever --seed."""
    from rsbench.cli.main import main
    from rsbench.datasets.format.reader import open_dataset

    root, _ = synthetic_houston
    assert main(["-q", "build-hsi", "--source", "houston", "--input",
                 str(root / "houston_dataset.mat"), "--out", str(root / "again"),
                 "--block-size", "16", "--seed", "7", "--splits",
                 str(root / "data" / "splits.csv")]) == 0
    first, again = open_dataset(root / "data").index, open_dataset(root / "again").index
    assert again[["split", "win_row", "win_col"]].equals(first[["split", "win_row", "win_col"]])


def test_hsi_source_trains_on_a_synthetic_crop(synthetic_houston, tmp_path) -> None:
    """`rsbench run houston` (extends taiga: per-pixel protocol) learns the synthetic classes,
    whose spectra differ: 4 short epochs of a width-4 hsi-mtl reached OA 1.00 at torch threads
    1 and 2 (seed 0); the most frequent class holds under 60 % of the pixels scored."""
    import json

    from rsbench.cli.main import main

    root, _ = synthetic_houston
    assert main(["-q", "run", "houston", "--model", "hsi-mtl", "--data", str(root / "data"),
                 "--epochs", "4", "--batch-size", "8", "--lr", "3e-3", "--workers", "0",
                 "--set", "model_options.width=4", "--set", "scheduler.warmup_epochs=1",
                 "--out", str(tmp_path)]) == 0
    run = next((tmp_path / "houston" / "hsi-mtl").glob("*/0"))
    config = json.loads((run / "config.json").read_text())
    assert config["protocol"] == "per-pixel" and config["weighting"]["name"] == "equal"
    res = json.loads((run / "metrics.json").read_text())["tasks"]["land_cover"]
    support = [c["support"] for c in res["per_class"].values()]
    assert max(support) / sum(support) < 0.6
    assert res["oa"] > 0.9, res["oa"]
    from rsbench.reports.taiga_map import write_maps  # the class map of a test region

    maps = write_maps(run, str(root / "data"), out=tmp_path / "maps", size=16)
    assert [p.name for p in maps] == ["map_land_cover.png"] and maps[0].stat().st_size > 5000


@pytest.mark.parametrize("case", ["keys", "shape", "bands", "codes", "v73", "not-mat",
                                  "unlabelled"])
def test_hsi_source_bad_input_is_one_line_naming_the_file(case, tmp_path, capsys) -> None:
    import scipy.io

    from rsbench.cli.main import main

    path = tmp_path / "houston_dataset.mat"
    image = np.full((8, 8, 48), 500, np.uint16)
    labels = np.ones((32, 32), np.uint8)
    arrays = {"keys": {"hsi": image, "gt": labels},
              "shape": {"hyprImg": image, "clasLabs": labels[:30]},
              "bands": {"hyprImg": image[..., :40], "clasLabs": labels},
              "codes": {"hyprImg": image, "clasLabs": labels * 13},
              "unlabelled": {"hyprImg": image, "clasLabs": labels * 0}}
    if case in arrays:
        scipy.io.savemat(path, arrays[case])
    elif case == "v73":
        path.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512, b" "))
    else:
        path.write_text("hyprImg,clasLabs\n")
    fix = {"keys": "has no variable hyprImg, clasLabs (it holds hsi, gt)",
           "shape": "clasLabs is 30x32 but hyprImg 8x8 with labels 4x finer needs 32x32",
           "bands": "hyprImg is 8x8x40 but the houston source declares H x W x 48 bands",
           "codes": "clasLabs holds class codes 13 that the houston source does not declare",
           "v73": "is a MATLAB v7.3 (HDF5) file",
           "not-mat": "is not a MATLAB .mat file",
           "unlabelled": "no image pixel is labelled by the mode rule over 4x4 label blocks"}
    code = main(["build-hsi", "--source", "houston", "--input", str(path),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and str(path) in err and fix[case] in err, err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def real_houston(tmp_path_factory):
    """The real crop built with the defaults (skipped when ../shared/data is absent)."""
    from conftest import shared_data

    from rsbench.cli.main import main

    mat = shared_data("houston-crop", "houston_dataset.mat")
    root = tmp_path_factory.mktemp("houston-real")
    assert main(["-q", "build-hsi", "--source", "houston", "--input", str(mat),
                 "--out", str(root / "data")]) == 0
    return mat, root / "data"


@pytest.mark.realdata
def test_hsi_source_on_the_real_houston_crop(real_houston, tmp_path) -> None:
    """The real crop: its image as stored, its 512x512 labels by the mode of each 4x4 block
    (written out here block by block), all 12 classes, leak-free splits; and a short
    `rsbench run houston` that scores each labelled pixel of the test windows once."""
    import json

    import scipy.io

    from rsbench.cli.main import main
    from rsbench.datasets.format.reader import open_dataset

    mat, folder = real_houston
    d = scipy.io.loadmat(mat)
    data = open_dataset(folder)
    assert data.task("land_cover")["classes"] == [f"class {c}" for c in range(1, 13)]
    codes = mode_of_blocks(d["clasLabs"])
    check_hsi_dataset(data, d["hyprImg"], codes)
    assert data.manifest["sources"][0]["sha256"] and set(data.index["split"]) == {
        "train", "val", "test"}
    assert main(["-q", "run", "houston", "--model", "hsi-mtl", "--data", str(folder),
                 "--epochs", "1", "--max-train-batches", "2", "--batch-size", "16",
                 "--workers", "0", "--set", "model_options.width=4",
                 "--out", str(tmp_path)]) == 0
    run = next((tmp_path / "houston" / "hsi-mtl").glob("*/0"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["complete"]
    labels = np.asarray(data.array("targets_cls"))[..., 0]
    covered = np.zeros(labels.shape, bool)
    for _, w in data.index[data.index["split"] == "test"].iterrows():
        covered[w.win_row:w.win_row + w.win_h, w.win_col:w.win_col + w.win_w] = True
    assert metrics["tasks"]["land_cover"]["pixels_scored"] == int((covered & (labels != 255))
                                                                  .sum())


@pytest.mark.realdata
def test_houston_wavelengths_fit_the_real_crop_spectra() -> None:
    """The assumed wavelengths put known features of vegetation spectra where they belong: in
    the mean spectrum of the crop's greenest pixels (top 10 % of (R800 - R670) / (R800 + R670),
    bands nearest those wavelengths), the red minimum lies in 660-700 nm, the steepest rise
    (red edge) in 690-750 nm, and local dips at the O2-A line (760.9 nm) and the 940 nm water
    vapour band."""
    from conftest import shared_data
    from scipy.io import loadmat

    from rsbench.datasets.sources import HSI_SOURCES

    wl = np.array(HSI_SOURCES["houston"].wavelengths)
    x = loadmat(shared_data("houston-crop", "houston_dataset.mat"))["hyprImg"].astype(float)
    red, nir = (int(np.abs(wl - w).argmin()) for w in (670, 800))
    ndvi = (x[..., nir] - x[..., red]) / (x[..., nir] + x[..., red])
    s = x[ndvi >= np.percentile(ndvi, 90)].mean(0)
    visible_red = (wl > 600) & (wl < 720)
    assert 660 <= wl[visible_red][s[visible_red].argmin()] <= 700
    assert 690 <= wl[np.diff(s).argmax()] <= 750
    for w in (760.9, 946.9):
        i = int(np.abs(wl - w).argmin())
        assert s[i] < s[i - 1] and s[i] < s[i + 1], w
