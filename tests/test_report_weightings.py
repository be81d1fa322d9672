"""The `weightings` table (issue 19 part 5): Δm% against equal weighting by hand, mean ± std over
seeds, the default-weighting run found under the plain model name, and its reproduce plan."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import training_fixtures as tf
from click.testing import CliRunner

from rsbench.cli.reproduce import reproduce
from rsbench.reports.render import to_csv, to_markdown
from rsbench.reports.runs import collect_runs
from rsbench.reports.table import build_table
from rsbench.reports.tables import get_table
from rsbench.training.weighting import available_weightings

MSC_TASKS = ("merced", "aid", "nwpu")


OWN = "a" * 16  # the fingerprint of each benchmark's own settings


def _write_run(root: Path, bench: str, method: str, seed: int, tasks: dict, fp: str = OWN,
               non_default: dict | None = None) -> None:
    """A finished run folder as `rsbench run` writes it: BENCH/METHOD/FP[:8]/SEED/ with its
    identity in config.json."""
    d = root / bench / method / fp[:8] / str(seed)
    d.mkdir(parents=True)
    identity = {"fingerprint": fp, "settings": dict(non_default or {}),
                "non_default": dict(non_default or {})}
    (d / "config.json").write_text(json.dumps(
        {"benchmark": bench, "method": method, "seed": seed, "identity": identity}))
    (d / "metrics.json").write_text(json.dumps(
        {"complete": True, "benchmark": bench, "method": method, "seed": seed, "fingerprint": fp,
         "tasks": tasks, "parameters": {"total": 1000}}))


def _msc(root: Path, method: str, oas: list[float]) -> None:
    for seed, oa in enumerate(oas):
        _write_run(root, "msc", method, seed, {t: {"oa": oa} for t in MSC_TASKS})


def _taiga(root: Path, method: str, oa: float, rmse: float) -> None:
    _write_run(root, "taiga", method, 0, {"species": {"oa": oa, "precision": 0.5},
                                          "height": {"rmse": rmse, "mae": 0.1}})


@pytest.fixture()
def table(tmp_path):
    _msc(tmp_path, "mtln", [0.78, 0.82])            # equal (mtln's default): OA 80 ± 2.83
    _msc(tmp_path, "mtln+pcgrad", [0.83, 0.85])     # 84 ± 1.41 → +5%
    _msc(tmp_path, "mtln+mgda", [0.76, 0.76])       # 76 → −5%
    _taiga(tmp_path, "hsi-mtl+equal", 0.80, 0.5)
    _taiga(tmp_path, "hsi-mtl+pcgrad", 0.80, 0.4)   # OA ±0%, RMSE 0.5 → 0.4: +20%
    _taiga(tmp_path, "hsi-mtl", 0.88, 0.6)          # uncertainty, hsi-mtl's default: +10%, −20%
    _write_run(tmp_path, "msc", "mtln+pcgrad", 0, {t: {"oa": 0.10} for t in MSC_TASKS},
               "b" * 16, {"epochs": 2})           # other settings: never averaged in
    return build_table(get_table("weightings"), collect_runs(tmp_path))


def _row(table, name):
    return next(r for r in table.rows if r.label == name)


def test_every_weighting_is_a_row_equal_first(table):
    labels = [r.label for r in table.rows]
    assert labels[0] == "equal" and sorted(labels) == available_weightings()


def test_delta_m_by_hand(table):
    col = [c.label for c in table.columns].index("Δm% vs equal")
    delta = {w: _row(table, w).cells[col].mean for w in ("equal", "pcgrad", "mgda",
                                                         "uncertainty")}
    assert delta["equal"] == pytest.approx(0.0)
    assert delta["pcgrad"] == pytest.approx((5.0 + 0.0 + 20.0) / 3)   # MSC, TAIGA OA, TAIGA RMSE
    assert delta["mgda"] == pytest.approx(-5.0)                       # MSC only: TAIGA missing
    assert delta["uncertainty"] == pytest.approx((10.0 - 20.0) / 2)   # lower RMSE is better
    assert _row(table, "nash-mtl").cells[col].missing                 # no runs: missing
    assert _row(table, "pcgrad").cells[col].best


def test_mean_and_std_over_seeds(table):
    msc = [c.label for c in table.columns].index("MSC OA")
    eq, pc = _row(table, "equal").cells[msc], _row(table, "pcgrad").cells[msc]
    assert (eq.mean, eq.n) == (pytest.approx(80.0), 2) and eq.std == pytest.approx(math.sqrt(8))
    assert pc.mean == pytest.approx(84.0) and pc.std == pytest.approx(math.sqrt(2))
    rmse = [c.label for c in table.columns].index("TAIGA RMSE")
    assert _row(table, "pcgrad").cells[rmse].best and not _row(table, "equal").cells[rmse].best
    text = to_markdown(table)
    assert "| pcgrad | **84.00 ± 1.41** ▲ |" in text and "Δm% = (1/T)" in text
    assert "hsi-mtl on TAIGA" in text
    assert "pcgrad," in to_csv(table)
    assert "Not counted (runs at settings other than the benchmark's own, never compared with " \
           "its own): pcgrad on msc (epochs=2; seed(s) 0)." in text


def test_reproduce_plans_one_run_per_weighting_where_the_data_is(tmp_path):
    msc = tf.write_msc(tmp_path / "msc", name="msc", per_class=2, size=16)
    r = CliRunner().invoke(reproduce, ["weightings", "--data", f"msc={msc}", "--dry-run",
                                       "--out", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    ran = [ln for ln in lines if ln.startswith("rsbench run msc --model mtln ")]
    assert len(ran) == len(available_weightings())
    named = {ln.split("--weighting ")[1].split()[0] for ln in ran if "--weighting" in ln}
    assert named == set(available_weightings()) - {"equal"}  # equal: mtln's own default
    for bench in ("mini-msc", "psc5", "psc15", "taiga"):
        skipped = [ln for ln in lines if ln.startswith(f"# skipped {bench} ")]
        assert len(skipped) == len(available_weightings()), bench
        assert all("no dataset for" in ln for ln in skipped)
    assert not (tmp_path / "runs").exists()
