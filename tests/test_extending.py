"""The README's "Extending rsbench" examples run as written, and the registries feed the CLI."""

from __future__ import annotations

import csv
import re
import sys
import types
from pathlib import Path

import pytest
import torch

from rsbench.datasets.sources import SCENE_SOURCES, sources_for

README = Path(__file__).resolve().parents[1] / "README.md"


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
        yield load("readme_myscenes", readme_blocks()[0]).MYSCENES
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
    assert len(claims) == len(blocks) == 5
    assert [int(n) for n in claims] == [len(b.rstrip("\n").splitlines()) for b in blocks]


def test_readme_has_one_example_per_kind() -> None:
    assert len(readme_blocks()) == 4  # scene source, model, weighting, table
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
        for name, code in zip(names, blocks[1:]):
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
