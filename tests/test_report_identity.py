"""`rsbench report` groups runs by method and settings (run identity), counts seeds per row,
says what each row holds, shows 95% CIs and draws the table (issues 10 and 13)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rsbench.cli.report import report
from rsbench.reports.render import to_csv, to_latex, to_markdown
from rsbench.reports.runs import collect_runs
from rsbench.reports.table import build_table
from rsbench.reports.tables import get_table

OWN = {"epochs": 50, "lr": 1e-4, "model_options": {}, "dataset_checksum": "abc"}
UNSTATED = {"augmentation": "random flips, not stated by the paper",
            "batching": "32 images from each task per step"}
# (fingerprint, non_default, {seed: merced OA})
SETTINGS = [
    ("a" * 16, {}, {0: 0.90, 1: 0.92, 2: 0.94}),
    ("b" * 16, {"epochs": 2}, {1: 0.50}),
    ("c" * 16, {"optimizer.lr": 0.001}, {0: 0.80, 1: 0.84}),
    ("d" * 16, {"model_options.width": 16}, {0: 0.70}),
]


def write_run(root: Path, bench: str, method: str, fp: str | None, non_default: dict,
              seed: int, tasks: dict | None, params: int = 26_100_000) -> Path:
    """A run folder as `rsbench run` writes it: <bench>/<method>/<fp[:8]>/<seed>/."""
    d = root / bench / method / (fp[:8] if fp else "legacy") / str(seed)
    d.mkdir(parents=True)
    settings = {**OWN, **{k: v for k, v in non_default.items() if "." not in k}}
    conf = {"benchmark": bench, "method": method, "seed": seed, "unstated": UNSTATED}
    if fp:
        conf["identity"] = {"fingerprint": fp, "settings": settings, "non_default": non_default}
    (d / "config.json").write_text(json.dumps(conf))
    if tasks is not None:
        (d / "metrics.json").write_text(json.dumps(
            {"complete": True, "benchmark": bench, "method": method, "seed": seed,
             "fingerprint": fp, "tasks": tasks, "parameters": {"total": params}}))
    return d


@pytest.fixture()
def runs(tmp_path) -> Path:
    for fp, nd, per_seed in SETTINGS:
        for seed, oa in per_seed.items():
            write_run(tmp_path, "msc", "mtln", fp, nd, seed,
                      {"merced": {"oa": oa}, "aid": {"oa": oa}, "nwpu": {"oa": oa}})
    write_run(tmp_path, "msc", "single-task", "e" * 16, {}, 0,
              {"merced": {"oa": 0.85}, "aid": {"oa": 0.85}, "nwpu": {"oa": 0.85}})
    write_run(tmp_path, "msc", "cross-stitch", "f" * 16, {}, 0, None)  # still training
    bad = write_run(tmp_path, "msc", "den", "0" * 16, {}, 0, {})
    (bad / "metrics.json").write_text('{"complete": true, "tasks": ')  # truncated file
    return tmp_path


def _row(t, label):
    return next(r for r in t.rows if r.label == label)


def test_runs_at_other_settings_get_their_own_rows_with_seeds_per_row(runs):
    rs = collect_runs(runs)
    assert len(rs.warnings) == 1 and "den" in rs.warnings[0] and "metrics.json" in rs.warnings[0]
    t = build_table(get_table("msc"), rs)
    own = _row(t, "MTLN")
    assert own.seeds == 3 and own.cells[0].mean == pytest.approx(92.0)
    assert own.cells[0].std == pytest.approx(2.0)
    epochs = _row(t, "MTLN (epochs=2)")
    assert epochs.seeds == 1 and epochs.cells[0].mean == pytest.approx(50.0)
    lr = _row(t, "MTLN (lr=0.001)")
    assert lr.seeds == 2 and lr.cells[0].mean == pytest.approx(82.0)
    width = _row(t, "MTLN (model_options.width=16)")
    assert width.seeds == 1 and width.cells[0].mean == pytest.approx(70.0)
    assert _row(t, "Baseline").seeds == 1
    # the footnote says which seeds and settings each row holds, and the unstated settings
    note = next(n for n in t.notes if n.startswith("Rows hold one setting each"))
    assert "MTLN: seed(s) 0, 1, 2 at the benchmark's own settings" in note
    assert "MTLN (epochs=2): seed(s) 1 at epochs=2" in note
    assert "MTLN (lr=0.001): seed(s) 0, 1 at lr=0.001" in note
    unstated = next(n for n in t.notes if n.startswith("Settings the paper does not state"))
    assert "augmentation: random flips" in unstated and "batching: 32 images" in unstated
    assert any("1 unfinished run(s)" in n and "cross-stitch" in n for n in t.notes)
    md = to_markdown(t)
    assert "| MTLN (epochs=2) | 50.00 |" in md


def test_two_dataset_builds_at_the_benchmark_settings_are_not_averaged(tmp_path):
    write_run(tmp_path, "msc", "mtln", "1" * 16, {}, 0, {"merced": {"oa": 0.9}})
    write_run(tmp_path, "msc", "mtln", "1" * 16, {}, 1, {"merced": {"oa": 0.9}})
    d = write_run(tmp_path, "msc", "mtln", "2" * 16, {}, 0, {"merced": {"oa": 0.5}})
    conf = json.loads((d / "config.json").read_text())
    conf["identity"]["settings"]["dataset_checksum"] = "other"
    (d / "config.json").write_text(json.dumps(conf))
    write_run(tmp_path, "msc", "mtln", None, {}, 5, {"merced": {"oa": 0.1}})  # before identity
    t = build_table(get_table("msc"), collect_runs(tmp_path))
    assert _row(t, "MTLN").cells[0].mean == pytest.approx(90.0) and _row(t, "MTLN").seeds == 2
    assert _row(t, "MTLN (dataset_checksum=other)").cells[0].mean == pytest.approx(50.0)
    assert _row(t, "MTLN (no identity recorded)").cells[0].mean == pytest.approx(10.0)


def test_ci_is_the_textbook_student_t_interval(runs):
    t = build_table(get_table("msc"), collect_runs(runs))
    t.ci = True
    cell = _row(t, "MTLN").cells[0]  # 90, 92, 94: mean 92, s = 2, n = 3
    half = 4.302653 * 2 / math.sqrt(3)  # t(0.975, 2) from the t table
    assert cell.ci == pytest.approx((92 - half, 92 + half), abs=1e-4)
    lr = _row(t, "MTLN (lr=0.001)").cells[0]  # 80, 84: mean 82, s = 2.828, n = 2
    half2 = 12.706205 * np.std([80, 84], ddof=1) / math.sqrt(2)
    assert lr.ci == pytest.approx((82 - half2, 82 + half2), abs=1e-4)
    assert _row(t, "MTLN (epochs=2)").cells[0].ci is None
    md = to_markdown(t)
    assert f"92.00 ± 2.00, 95% CI [{92 - half:.2f}, {92 + half:.2f}]" in md
    assert "| MTLN (epochs=2) | 50.00, 95% CI n/a (1 seed) |" in md
    assert "Student t" in md
    assert f"[{92 - half:.2f}, {92 + half:.2f}]" in to_latex(t)
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    mt = next(r for r in rows if r["label"] == "MTLN")
    assert float(mt["Merced ci95 low"]) == pytest.approx(92 - half, abs=1e-3)
    assert mt["seed_ids"] == "0 1 2" and mt["settings"] == "benchmark defaults"
    assert next(r for r in rows if r["label"] == "MTLN (epochs=2)")["Merced ci95 low"] == \
        "n/a (1 seed)"


def test_cli_csv_writes_provenance_warns_on_bad_metrics_and_plots(runs, tmp_path):
    out = tmp_path / "tables" / "msc.csv"
    png = tmp_path / "tables" / "msc.png"
    r = CliRunner().invoke(report, [str(runs), "--table", "msc", "--format", "csv", "--out",
                                    str(out), "--ci", "--plot", str(png), "--paper"])
    assert r.exit_code == 0, r.output
    assert "warning: skipped" in r.output and "den" in r.output
    prov = list(csv.DictReader((tmp_path / "tables" / "msc.provenance.csv").open()))
    epochs = [p for p in prov if p["row"] == "MTLN (epochs=2)"]
    assert len(epochs) == 1 and epochs[0]["seed"] == "1" and epochs[0]["settings"] == "epochs=2"
    assert epochs[0]["fingerprint"] == "b" * 16 and "augmentation" in epochs[0]["unstated"]
    assert len([p for p in prov if p["row"] == "MTLN"]) == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        assert im.width >= 600 and im.height >= 300
    bad = CliRunner().invoke(report, [str(runs), "--table", "msc", "--plot", "x.jpg"])
    assert bad.exit_code != 0 and "--plot x.jpg" in str(bad.exception)
