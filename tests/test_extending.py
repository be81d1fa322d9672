"""The README's "Extending rsbench" examples run as written, and the registries feed the CLI."""

from __future__ import annotations

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


def test_readme_has_one_example_per_kind() -> None:
    assert len(readme_blocks()) == 4  # scene source, model, weighting, table


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


def test_readme_model_builds_through_the_registry() -> None:
    from rsbench.errors import UsageError
    from rsbench.models import available_models, build_model
    from rsbench.models.base import TaskInfo
    from rsbench.models.registry import _FACTORIES

    assert "tiny-shared" not in available_models()
    load("readme_tiny_shared", readme_blocks()[1])  # its decorator registers it
    assert "tiny-shared" in available_models()
    tasks = [TaskInfo("a", "classification", 3), TaskInfo("b", "classification", 5)]
    model = build_model("tiny-shared", tasks, width=4)
    out = model(torch.zeros(2, 3, 8, 8), ["a", "b"])
    assert out["a"].shape == (2, 3) and out["b"].shape == (2, 5)
    with pytest.raises(UsageError, match="takes no option 'depth'"):
        build_model("tiny-shared", tasks, depth=2)
    _FACTORIES.pop("tiny-shared")
    sys.modules.pop("readme_tiny_shared", None)


def test_readme_table_is_found_by_name(monkeypatch) -> None:
    from rsbench.reports.tables import TABLES, get_table

    load("readme_transfer_oa", readme_blocks()[3])
    monkeypatch.setitem(TABLES, "transfer-oa", "readme_transfer_oa:TABLE")
    table = get_table("transfer-oa")
    assert table.name == "transfer-oa" and [c.benchmark for c in table.columns] == [
        "transfer-patternnet", "transfer-eurosat"]
    sys.modules.pop("readme_transfer_oa", None)


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


def test_readme_weighting_weighs_the_gradients() -> None:
    from rsbench.training.weighting import WEIGHTINGS, build_weighting

    load("readme_fixed", readme_blocks()[2])  # its decorator registers it
    try:
        w = build_weighting("fixed", ["a", "b"], {"a": "classification", "b": "classification"},
                            weights=[2.0, 0.5])
        x = torch.nn.Parameter(torch.tensor(3.0))
        w.backward({"a": x * 1.0, "b": x * x}, [x], torch.amp.GradScaler("cpu", enabled=False))
        assert x.grad.item() == pytest.approx(2.0 * 1 + 0.5 * 2 * 3)
        assert w.weights() == pytest.approx({"a": 2.0, "b": 0.5})
    finally:
        WEIGHTINGS.pop("fixed", None)
        sys.modules.pop("readme_fixed", None)
