"""Run folders received from someone else (issue 21, section 3 and the report case of 3b).

``taiga-map RUN``, ``run --from RUN`` and ``run --resume`` read a run folder's config.json; every
crafted folder here is made from one genuine tiny run by editing that one file. Each must be one
line on stderr naming the file and the field (exit 1), allocate nothing large (a guard refuses
any real tensor above 64 MiB, so a regression fails here instead of exhausting memory), and
leave nothing that looks complete (no metrics.json, no map, the received files untouched).
A malformed config.json in ``rsbench report`` is one warning naming it; the other runs count.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import training_fixtures as tf
from torch.overrides import TorchFunctionMode

from reliability.hardening_data import one_line
from rsbench.cli.main import main

COMMON = ["--epochs", "1", "--batch-size", "4", "--max-train-batches", "1", "--workers", "0",
          "--device", "cpu"]
GUARD_BYTES = 64 << 20
FACTORIES = (torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn,
             torch.empty_strided)


class AllocationGuard(TorchFunctionMode):
    """Refuses (MemoryError) any tensor factory call for more than ``GUARD_BYTES`` on a real
    device, before it allocates; records the largest request (meta-device tensors are free)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and str(kwargs.get("device", "cpu")) != "meta":
            shape = args[0] if args and isinstance(args[0], list | tuple | torch.Size) else [
                a for a in args if isinstance(a, int)]
            numel = 1
            for s in shape:
                numel *= max(int(s), 0)
            nbytes = numel * torch.empty(0, dtype=kwargs.get("dtype") or torch.float32
                                         ).element_size()
            self.largest = max(self.largest, nbytes)
            if nbytes > GUARD_BYTES:
                raise MemoryError(f"test guard: {nbytes:,} bytes requested")
        return func(*args, **kwargs)


@pytest.fixture(autouse=True)
def _small():
    torch.set_num_threads(1)
    tf.register()


def rsbench(args: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stderr and stdout of one rsbench command run in this process."""
    capsys.readouterr()
    code = main(["-q", *args])
    got = capsys.readouterr()
    return code, got.err, got.out


@pytest.fixture(scope="module")
def genuine(tmp_path_factory, taiga_reference) -> dict[str, Path]:
    """One genuine tiny run of each kind: an MSC run (source of --from, resumed), a taiga run
    (mapped), and the datasets they need."""
    tf.register()
    root = tmp_path_factory.mktemp("genuine")
    msc = tf.write_msc(root / "mini-msc", per_class=5, size=16)
    eurosat = tf.write_msc(root / "eurosat", name="transfer-eurosat", tasks=(("eurosat", 3),),
                           per_class=5, size=16)
    runs = root / "runs"
    assert main(["-q", "run", "mini-msc", "--model", "tiny", "--data", str(msc), "--out",
                 str(runs), "--input-size", "16", *COMMON]) == 0
    # one task: a run of all 13 would spend ~20 s drawing their figures
    assert main(["-q", "run", "taiga-centre", "--model", "tiny", "--data",
                 str(taiga_reference), "--out", str(runs), "--set", 'tasks=["fertility_class"]',
                 *COMMON]) == 0
    return {"msc": msc, "eurosat": eurosat, "taiga": taiga_reference, "runs": runs,
            "msc_run": tf.run_dir(runs, "mini-msc", "tiny"),
            "taiga_run": tf.run_dir(runs, "taiga-centre", "tiny")}


def crafted(src: Path, dest: Path, edit: Callable[[dict], object] | bytes | str) -> Path:
    """A copy of run folder ``src`` at ``dest`` whose config.json is ``edit``ed: a function
    changing the parsed config in place (or returning a replacement), or raw file content."""
    shutil.copytree(src, dest)
    path = dest / "config.json"
    if isinstance(edit, bytes | str):
        path.write_bytes(edit.encode() if isinstance(edit, str) else edit)
    else:
        conf = json.loads(path.read_text())
        new = edit(conf)
        path.write_text(json.dumps(conf if new is None else new))
    return dest


def _set(path: str, value) -> Callable[[dict], None]:
    """An edit setting the dotted ``path`` (list indices as numbers) to ``value``."""
    def edit(conf: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = conf
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


def _drop(key: str) -> Callable[[dict], None]:
    return lambda conf: conf.pop(key) and None


def _cannot_add(conf: dict) -> None:
    """An hsi-mtl run (a model with no add_task) that claims an added task."""
    tasks = conf["model_spec"]["tasks"]
    conf["model"] = "hsi-mtl"
    bands = conf["model_spec"]["kwargs"].get("in_channels", 3)
    conf["model_spec"] = {"name": "hsi-mtl", "kwargs": {"in_channels": bands, "width": 8},
                          "tasks": tasks, "added": [{"task": ["extra", "classification", 2],
                                                     "options": {}}]}


def _kwargs(conf: dict) -> None:
    conf["model_spec"]["kwargs"] = [1, 2]


# (case id, edit of config.json, field the line must name, words it must hold)
CASES = [
    ("kwargs-a-list", _kwargs, "model_spec.kwargs", "is a list, not an object"),
    ("task-entry-of-two", _set("model_spec.tasks.0", ["merced", "classification"]),
     "model_spec.tasks[0]", "not [name, type, outputs]"),
    ("task-type-unknown", _set("model_spec.tasks.0.1", "detection"), "model_spec.tasks[0][1]",
     "not one of classification"),
    ("tasks-a-string", _set("tasks", "merced"), "tasks", "not a list of task names"),
    ("spec-tasks-a-string", _set("model_spec.tasks", "merced"), "model_spec.tasks",
     "not a list of [name, type, outputs]"),
    ("negative-width", _set("model_spec.kwargs.width", -8), "model_spec.kwargs",
     "do not make a 'tiny' model"),
    ("width-as-text", _set("model_spec.kwargs.width", "8"), "model_spec.kwargs",
     "do not make a 'tiny' model"),
    ("unknown-model", _set("model_spec.name", "nope"), "model_spec.name",
     "is 'nope', but the run's model is 'tiny'"),
    ("model-spec-a-string", _set("model_spec", "tiny"), "model_spec",
     "is the text 'tiny', not an object"),
    ("added-task-the-model-cannot-take", _cannot_add, "model_spec.added[0]",
     "cannot be added to a 'hsi-mtl' model"),
    ("added-a-dict", _set("model_spec.added", {"task": 1}), "model_spec.added",
     "not a list"),
    ("invalid-json", '{"model": "tiny", ', "config.json", "is not valid JSON"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 64, "config.json", "is not text"),
    ("nested-without-end", "[" * 200_000, "config.json", "is not valid JSON"),
    ("not-an-object", "[1, 2]", "the file", "is a list, not an object"),
    ("no-tasks", _drop("tasks"), "tasks", "null, not a list of task names"),
    ("spec-without-tasks", _set("model_spec.tasks", []), "model_spec.tasks",
     "at least one task"),
    ("identity-a-string", _set("identity", "abc"), "identity",
     "is the text 'abc', not an object"),
    ("fingerprint-a-number", _set("identity.fingerprint", 12345), "identity.fingerprint",
     "not 16 hex digits"),
    ("unstated-a-list", _set("unstated", ["x"]), "unstated", "is a list, not an object"),
    ("seed-a-string", _set("seed", "zero"), "seed", "not a whole number"),
    ("head-of-1e9-outputs", _set("model_spec.tasks.0.2", 10**9), "model_spec.tasks[0][2]",
     "outside 1 to 4,096"),
    ("width-200000", _set("model_spec.kwargs.width", 200_000), "model_spec",
     "RSBENCH_MAX_PARAMETERS="),
    ("ten-thousand-tasks", _set("model_spec.tasks", [[f"t{i}", "classification", 2]
                                                     for i in range(10_000)]),
     "model_spec.tasks", "lists 10,000 tasks, more than rsbench accepts (1,024)"),
    ("a-task-twice", lambda conf: conf["model_spec"]["tasks"].append(
        conf["model_spec"]["tasks"][0]), "model_spec.tasks", "twice"),
    ("unstated-key-on-two-lines", _set("unstated", {"a\nb": 1}), "unstated.'a\\nb'",
     "is the number 1, not a sentence"),
]
IDS = [c[0] for c in CASES]


def assert_refused(code: int, err: str, config: Path, field: str, words: str,
                   guard: AllocationGuard) -> str:
    assert code == 1, err
    line = one_line(err)
    assert str(config) in line and f"{field} " in line and words in line, line
    assert guard.largest < GUARD_BYTES
    return line


@pytest.mark.parametrize("edit, field, words", [c[1:] for c in CASES], ids=IDS)
def test_from_a_crafted_run_is_one_line_and_trains_nothing(genuine, tmp_path, capsys, edit,
                                                           field, words):
    src = crafted(genuine["msc_run"], tmp_path / "src", edit)
    before = (src / "config.json").read_bytes()
    model = "hsi-mtl" if edit is _cannot_add else "tiny"
    out = tmp_path / "out"
    with AllocationGuard() as guard:
        code, err, _ = rsbench(["run", "transfer-eurosat", "--model", model, "--data",
                             str(genuine["eurosat"]), "--from", str(src), "--out", str(out),
                             "--input-size", "16", *COMMON], capsys)
    assert_refused(code, err, src / "config.json", field, words, guard)
    assert not out.exists() or not any(out.rglob("*"))  # no run folder, finished or not
    assert (src / "config.json").read_bytes() == before


@pytest.mark.parametrize("edit, field, words", [c[1:] for c in CASES], ids=IDS)
def test_taiga_map_of_a_crafted_run_is_one_line_and_draws_nothing(genuine, tmp_path, capsys,
                                                                  edit, field, words):
    run = crafted(genuine["taiga_run"], tmp_path / "run", edit)
    out = tmp_path / "maps"
    with AllocationGuard() as guard:
        code, err, _ = rsbench(["taiga-map", str(run), "--data", str(genuine["taiga"]), "--out",
                             str(out), "--size", "16", "--device", "cpu"], capsys)
    assert_refused(code, err, run / "config.json", field, words, guard)
    assert not out.exists() and not list(run.glob("map_*.png"))


def test_taiga_map_of_a_run_of_an_unknown_model_is_one_line(genuine, tmp_path, capsys):
    def unknown(conf):
        conf["model"] = conf["model_spec"]["name"] = "nope"
    run = crafted(genuine["taiga_run"], tmp_path / "run", unknown)
    code, err, _ = rsbench(["taiga-map", str(run), "--data", str(genuine["taiga"]), "--out",
                            str(tmp_path / "maps"), "--device", "cpu"], capsys)
    assert code == 1, err
    line = one_line(err)
    assert f"{run / 'config.json'}: model_spec.name 'nope' is not a model of this rsbench" in line


RESUME_CASES = [c for c in CASES if c[0] in {
    "invalid-json", "binary", "nested-without-end", "not-an-object", "identity-a-string",
    "fingerprint-a-number", "tasks-a-string", "model-spec-a-string", "kwargs-a-list"}]


@pytest.mark.parametrize("edit, field, words", [c[1:] for c in RESUME_CASES],
                         ids=[c[0] for c in RESUME_CASES])
def test_resume_of_a_crafted_run_is_one_line_and_finishes_nothing(genuine, tmp_path, capsys,
                                                                  edit, field, words):
    rel = genuine["msc_run"].relative_to(genuine["runs"])
    run = crafted(genuine["msc_run"], tmp_path / "runs" / rel, edit)
    (run / "metrics.json").unlink()  # an interrupted run someone shared
    before = (run / "config.json").read_bytes()
    with AllocationGuard() as guard:
        code, err, _ = rsbench(["run", "mini-msc", "--model", "tiny", "--data",
                             str(genuine["msc"]), "--out", str(tmp_path / "runs"), "--resume",
                             "--input-size", "16", *COMMON], capsys)
    line = assert_refused(code, err, run / "config.json", field, words, guard)
    assert "delete the folder to start the run over" in line
    assert not (run / "metrics.json").exists()
    assert (run / "config.json").read_bytes() == before


def test_resume_with_a_checkpoint_of_another_model_is_one_line(genuine, tmp_path, capsys):
    rel = genuine["msc_run"].relative_to(genuine["runs"])
    run = crafted(genuine["msc_run"], tmp_path / "runs" / rel, lambda conf: None)
    (run / "metrics.json").unlink()
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    saved["model"] = {k: torch.zeros(3) for k in saved["model"]}  # other shapes
    torch.save(saved, run / "checkpoint.pt")
    code, err, _ = rsbench(["run", "mini-msc", "--model", "tiny", "--data", str(genuine["msc"]),
                         "--out", str(tmp_path / "runs"), "--resume", "--input-size", "16",
                         *COMMON], capsys)
    assert code == 1, err
    line = one_line(err)
    assert str(run / "checkpoint.pt") in line and "does not fit this run" in line
    assert not (run / "metrics.json").exists()


@pytest.mark.parametrize("edit, field", [(_set("identity", "abc"), "identity"),
                                         (_set("unstated", ["x"]), "unstated"),
                                         (_set("identity.non_default", [1]),
                                          "identity.non_default"),
                                         (_set("model_options", [8]), "model_options"),
                                         ("\x00\x01binary", "config.json")],
                         ids=["identity-a-string", "unstated-a-list", "non-default-a-list",
                              "model-options-a-list", "binary"])
def test_report_skips_a_malformed_config_with_one_warning(genuine, tmp_path, capsys, edit,
                                                          field):
    runs = tmp_path / "runs"
    shutil.copytree(genuine["runs"], runs)
    rel = genuine["msc_run"].relative_to(genuine["runs"])
    bad = crafted(genuine["msc_run"], runs / "copy" / rel, edit)  # a second, damaged copy
    code, err, table = rsbench(["report", str(runs), "--table", "mini-msc"], capsys)
    assert code == 0, err
    warning = one_line(err)
    assert warning.startswith("rsbench: warning: skipped ") and str(bad / "config.json") in \
        warning and field in warning, warning
    code, err, alone = rsbench(["report", str(genuine["runs"]), "--table", "mini-msc"], capsys)
    assert code == 0 and not err, err
    row = [ln for ln in table.splitlines() if ln.startswith("| tiny (")]
    assert len(row) == 1 and row[0].endswith("| 1 |"), table  # one run: the genuine one
    assert table == alone  # the genuine run counts, the damaged copy adds nothing


def test_the_genuine_folders_are_accepted(genuine, tmp_path, capsys):
    """The control: unedited, the same folders map and transfer (so each refusal above is the
    edit's doing)."""
    out = tmp_path / "maps"
    code, err, _ = rsbench(["taiga-map", str(genuine["taiga_run"]), "--data",
                            str(genuine["taiga"]), "--out", str(out), "--size", "16",
                            "--device", "cpu"], capsys)
    assert code == 0, err
    assert (out / "map_fertility_class.png").exists()
    code, err, _ = rsbench(["run", "transfer-eurosat", "--model", "tiny", "--data",
                            str(genuine["eurosat"]), "--from", str(genuine["msc_run"]),
                            "--out", str(tmp_path / "t"), "--input-size", "16", *COMMON], capsys)
    assert code == 0, err
    done = json.loads(next((tmp_path / "t").rglob("metrics.json")).read_text())
    assert done["complete"] and done["method"] == "tiny-transfer"


def test_a_size_limit_below_the_model_refuses_it_and_says_how_to_raise_it(genuine, tmp_path,
                                                                          capsys, monkeypatch):
    monkeypatch.setenv("RSBENCH_MAX_PARAMETERS", "100")
    config = genuine["taiga_run"] / "config.json"
    code, err, _ = rsbench(["taiga-map", str(genuine["taiga_run"]), "--data",
                            str(genuine["taiga"]), "--out", str(tmp_path / "maps"), "--device",
                            "cpu"], capsys)
    assert code == 1, err
    line = one_line(err)
    assert f"{config}: model_spec describes a model of " in line
    assert "above rsbench's limit of 100; if that is intended, raise the limit: " \
        "RSBENCH_MAX_PARAMETERS=" in line
    assert not (tmp_path / "maps").exists()


def test_a_fresh_run_too_large_for_the_limit_is_refused_before_allocation(genuine, tmp_path,
                                                                         capsys):
    with AllocationGuard() as guard:
        code, err, _ = rsbench(["run", "mini-msc", "--model", "tiny", "--data",
                                str(genuine["msc"]), "--out", str(tmp_path / "runs"),
                                "--input-size", "16", "--set", "model_options.width=200000",
                                *COMMON], capsys)
    assert code == 2, err
    line = one_line(err)
    assert "the model options (model_options, --set) describes a model of more than" in line
    assert guard.largest < GUARD_BYTES
    assert not (tmp_path / "runs").exists()


def test_a_model_growing_without_end_is_stopped_while_it_is_built():
    """A depth of 10⁹ layers: the meta build stops once it passes twice the limit."""
    from torch import nn

    from rsbench.training.model_size import TooLarge, meta_model

    built = []

    def endless() -> nn.Module:
        layers = nn.ModuleList()
        for _ in range(10**9):
            layers.append(nn.Linear(100, 100))
            built.append(1)
        return layers

    with pytest.raises(TooLarge):
        meta_model(endless, limit=1_000_000)
    assert len(built) <= 2 * 1_000_000 // 10_100 + 1


@pytest.mark.parametrize("name", sorted(
    __import__("rsbench.models", fromlist=["available_models"]).available_models()))
def test_every_model_builds_on_the_meta_device_at_its_true_size(name):
    """Size checks build models on the meta device: each registered model must build there,
    to the parameter count of its real build."""
    import inspect

    from rsbench.models import build_model, model_factories
    from rsbench.models.base import TaskInfo
    from rsbench.training.model_size import meta_model, size_of

    name = "single-task" if name == "fine-tune" else name  # fine-tune's net, no ImageNet file
    if "backbone" in inspect.signature(model_factories()[name]).parameters:  # scene models
        tasks, options = [TaskInfo("a", "classification", 3), TaskInfo("b", "classification", 2)], {}
    else:  # hyperspectral models
        tasks, options = [TaskInfo("a", "classification", 3), TaskInfo("b", "regression", 1)], \
            {"in_channels": 8}
    meta = meta_model(lambda: build_model(name, tasks, **options))
    real = build_model(name, tasks, **options)
    assert all(p.is_meta for p in meta.parameters())
    assert size_of(meta) == size_of(real) > 0


def test_from_a_run_of_another_benchmark_is_one_line(genuine, tmp_path, capsys):
    """transfer.from_benchmark (msc): a mini-msc run is a source (mini-msc extends msc), a
    TAIGA run is not."""
    out = tmp_path / "out"
    code, err, _ = rsbench(["run", "transfer-eurosat", "--model", "tiny", "--data",
                         str(genuine["eurosat"]), "--from", str(genuine["taiga_run"]), "--out",
                         str(out), "--input-size", "16", *COMMON], capsys)
    assert code == 2 and one_line(err).startswith(
        f"rsbench: error: --from {genuine['taiga_run']} is a taiga-centre run, but this "
        "benchmark transfers the shared branch of a msc run"), err
    assert not out.exists() or not any(out.rglob("*"))


def test_source_benchmark_lineage():
    from rsbench.training.config import lineage

    assert lineage("mini-msc") == ["mini-msc", "msc"] and lineage("msc") == ["msc"]
    assert lineage("transfer-eurosat") == ["transfer-eurosat", "transfer-patternnet"]
    assert lineage("nope") == ["nope"]
