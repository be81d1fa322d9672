"""`rsbench reproduce`: the run commands of every table (--dry-run) and one table end to end
on a tiny synthetic mini-MSC (issue 10, "One command per table")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import training_fixtures as tf
from click.testing import CliRunner

from rsbench.cli.reproduce import reproduce
from rsbench.models import available_models
from rsbench.reports.reproduce import parse_data, with_sources
from rsbench.reports.tables import TABLES, get_table


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    out = {b: tf.write_msc(root / b, name=b, per_class=5, size=16) for b in ("msc", "mini-msc")}
    for b in ("transfer-patternnet", "transfer-eurosat"):
        out[b] = tf.write_msc(root / b, name=b, tasks=((b.split("-")[1], 3),), per_class=5,
                              size=16)
    for b in ("psc5", "psc15"):
        out[b] = tf.write_psc(root / b, name=b, per_class=4, size=16)
    return out


def test_dry_run_lists_every_method_of_every_table(datasets, tmp_path):
    data = [f"{b}={p}" for b, p in datasets.items()]
    for name in TABLES:
        r = CliRunner().invoke(reproduce, [name, *sum((["--data", d] for d in data), []),
                                           "--seeds", "0", "1", "--dry-run",
                                           "--out", str(tmp_path / "runs")])
        assert r.exit_code == 0, (name, r.output)
        lines = r.output.splitlines()
        for plan in get_table(name).runs:
            ran = [ln for ln in lines if ln.startswith(f"rsbench run {plan.benchmark} --model "
                                                       f"{plan.model} ")
                   and all(o in ln for o in plan.options)]
            skipped = [ln for ln in lines
                       if ln.startswith(f"# skipped {plan.benchmark} {plan.method}:")]
            assert ran or skipped, (name, plan)
            if plan.model not in available_models():
                assert skipped and "not implemented" in skipped[0]
        assert not (tmp_path / "runs").exists()  # a dry run runs nothing
    # taiga tables without a taiga dataset: every run skipped with the reason
    r = CliRunner().invoke(reproduce, ["taiga-loss", "--data", str(datasets["msc"]),
                                       "--dry-run"])
    assert r.exit_code == 0 and r.output.count("# skipped") == 3
    assert "holds a 'msc' dataset, taiga-cs needs 'taiga'" in r.output


def test_transfer_runs_its_sources_first_and_passes_weights(datasets, tmp_path):
    runs = get_table("transfer").runs
    assert with_sources(runs)[0].benchmark == "msc" and with_sources(runs)[0].model == "mtln"
    weights = tmp_path / "resnet34.pth"
    weights.write_bytes(b"")
    data = sum((["--data", f"{b}={p}"] for b, p in datasets.items()), [])
    r = CliRunner().invoke(reproduce, ["transfer", *data, "--dry-run", "--weights",
                                       str(weights), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("rsbench run msc --model mtln ")
    frozen = next(ln for ln in lines if "transfer-eurosat --model fine-tune" in ln
                  and "--frozen" in ln)
    assert f"--weights {weights}" in frozen and "--epochs 1" in frozen
    assert any("transfer-patternnet --model mtln" in ln and "--from '<msc/mtln run of seed 0"
               in ln for ln in lines)


def test_data_options_plain_and_per_benchmark():
    assert parse_data(["d", "msc=m"]) == ("d", {"msc": "m"})
    with pytest.raises(Exception, match="second plain folder"):
        parse_data(["a", "b"])


def test_reproduce_mini_msc_end_to_end(datasets, tmp_path):
    runs = tmp_path / "runs"
    table = tmp_path / "table3b.md"
    r = CliRunner().invoke(reproduce, [
        "mini-msc", "--data", str(datasets["mini-msc"]), "--seeds", "0", "--out", str(runs),
        "--epochs", "1", "--batch-size", "2", "--max-train-batches", "1", "--input-size", "0",
        "--workers", "0", "--device", "cpu", "--table-out", str(table)])
    assert r.exit_code == 0, r.output
    plans = get_table("mini-msc").runs
    runnable = [p for p in plans if p.model in available_models() and not p.weights]
    finished = [json.loads(m.read_text()) for m in runs.rglob("metrics.json")]
    assert sorted(m["method"] for m in finished) == sorted(p.method for p in runnable)
    assert "skipped mini-msc fine-tune seed 0: torchvision has no ImageNet weights for wrn28_4" \
        in r.output
    text = table.read_text()
    assert "*MTLN (paper)* | 92.17" in text  # printed with the paper's figures
    for label in ("Baseline", "Cross-Stitch", "Uncer. Weig.", "MTLN"):
        assert any(ln.startswith(f"| {label}") and ln.rstrip().endswith("| 1 |")
                   for ln in text.splitlines()), label


def test_the_source_run_of_a_transfer_is_the_one_at_the_same_settings(tmp_path):
    from rsbench.reports.reproduce import find_source_run
    from rsbench.training.config import load_benchmark

    def write(name: str, epochs: int, finished: str, **extra) -> Path:
        d = tmp_path / "msc" / "mtln" / name / "0"
        d.mkdir(parents=True)
        conf = {**load_benchmark("msc"), "model": "mtln", "seed": 0, "epochs": epochs, **extra}
        (d / "config.json").write_text(json.dumps(conf))
        (d / "metrics.json").write_text(json.dumps({"complete": True, "finished": finished}))
        return d

    write("own", 50, "2026-01-02")
    short = write("short", 1, "2026-01-01")
    write("short-later-but-frozen", 1, "2026-01-03", frozen=True)
    write("short-later-other-set", 1, "2026-01-04", identity={
        "fingerprint": "f" * 16, "non_default": {"epochs": 1, "model_options.width": 8}})
    write("short-later-one-step", 1, "2026-01-05", max_train_batches=1)
    assert find_source_run(str(tmp_path), "msc", "mtln", 0, {"epochs": 1,
                                                              "max_train_batches": None}) == short
    assert find_source_run(str(tmp_path), "msc", "mtln", 0, {"epochs": 1, "max_train_batches": 1}
                           ).parent.name == "short-later-one-step"
    assert find_source_run(str(tmp_path), "msc", "mtln", 0, {}).parent.name == "own"
    assert find_source_run(str(tmp_path), "msc", "mtln", 1, {}) is None
    assert find_source_run(str(tmp_path), "msc", "mtln", 0, {"epochs": 2}) is None
