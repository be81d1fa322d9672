"""taiga report tables (HSI paper Tables II-VII) on a fixture of run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rsbench.models import build_model
from rsbench.models.base import TaskInfo
from rsbench.reports.render import to_csv, to_latex, to_markdown
from rsbench.reports.runs import collect_runs
from rsbench.reports.table import build_table
from rsbench.reports.tables import get_table
from rsbench.reports.taiga_tables import count_flops

torch.set_num_threads(1)


def _run(root: Path, bench: str, method: str, seed: int, oa: float, rmse: float,
         seconds: float = 10.0) -> None:
    d = root / bench / method / str(seed)
    d.mkdir(parents=True)
    tasks = {
        "soil_class": {"oa": oa, "precision": oa - 0.1, "recall": oa - 0.05, "f1": oa - 0.07,
                       "roc_auc": 0.9, "mean_class_accuracy": oa - 0.05},
        "main_tree_species_class": {"oa": oa - 0.2, "precision": oa - 0.3,
                                    "recall": oa - 0.25, "f1": oa - 0.27, "roc_auc": 0.8,
                                    "mean_class_accuracy": oa - 0.25},
        "mean_height": {"rmse": rmse, "mae": rmse / 2, "r2": 0.5, "pearson": 0.7,
                        "physical": {"rmse": rmse * 30, "mae": rmse * 15, "r2": 0.5,
                                     "unit": "m"}},
        "leaf_area_index": {"rmse": 3 * rmse, "mae": rmse, "r2": 0.3, "pearson": 0.6,
                            "physical": {"rmse": rmse * 21, "mae": rmse * 7, "r2": 0.3,
                                         "unit": ""}},
    }
    (d / "metrics.json").write_text(json.dumps({
        "complete": True, "tasks": tasks, "parameters": {"total": 2_500_000},
        "train_seconds_per_epoch": seconds}))
    (d / "config.json").write_text(json.dumps({"model": method, "data": "/nonexistent"}))


@pytest.fixture()
def runs(tmp_path) -> Path:
    for seed, (oa, rmse) in enumerate([(0.9, 0.1), (0.8, 0.2), (0.85, 0.15)]):
        _run(tmp_path, "taiga", "hsi-mtl", seed, oa, rmse)
    _run(tmp_path, "taiga", "unet", 0, 0.7, 0.3)
    _run(tmp_path, "taiga-cs", "hsi-mtl", 0, 0.75, 0.25)
    (tmp_path / "taiga" / "segnet" / "0").mkdir(parents=True)  # unfinished
    (tmp_path / "taiga" / "segnet" / "0" / "checkpoint.pt").write_bytes(b"")
    return tmp_path


def _row(table, label):
    return next(r for r in table.rows if r.label.startswith(label))


def test_per_variable_tables_give_mean_min_max_over_seeds(runs: Path) -> None:
    t = build_table(get_table("taiga-classification"), collect_runs(runs))
    soil = _row(t, "soil class")
    labels = [f"{c.group} {c.label}" for c in t.columns]
    oa = {s: soil.cells[labels.index(f"OA (micro) {s}")].mean for s in ("mean", "min", "max")}
    assert oa == pytest.approx({"mean": 85.0, "min": 80.0, "max": 90.0})
    assert soil.seeds == 3
    t3 = build_table(get_table("taiga-regression"), collect_runs(runs))
    height = _row(t3, "mean height [m]")
    labels = [f"{c.group} {c.label}" for c in t3.columns]
    assert height.cells[labels.index("RMSE max")].mean == pytest.approx(0.2)
    assert height.cells[labels.index("RMSE (physical) min")].mean == pytest.approx(3.0)


def test_comparison_loss_and_complexity_tables(runs: Path) -> None:
    rs = collect_runs(runs)
    t = build_table(get_table("taiga-comparison"), rs)
    proposed, unet = _row(t, "Proposed"), _row(t, "U-Net")
    # OA: mean over the two categorical variables, then over seeds: (0.85 + 0.65) / 2 = 75 %
    assert proposed.cells[0].mean == pytest.approx(75.0)
    assert proposed.cells[0].std == pytest.approx(5.0)
    assert proposed.cells[3].mean == pytest.approx(0.3)  # RMSE (0.15 + 0.45) / 2
    assert proposed.cells[0].best and not unet.cells[0].best
    assert proposed.cells[3].best  # lower RMSE is better
    assert _row(t, "SegNet").cells[0].missing
    assert any("unfinished" in n for n in t.notes)
    loss = build_table(get_table("taiga-loss"), rs, paper=True)
    assert _row(loss, "Cost-Sensitive").cells[0].mean == pytest.approx(65.0)
    assert _row(loss, "Cost-Sensitive (paper)").cells[0].mean == pytest.approx(87.23)
    cx = build_table(get_table("taiga-complexity"), rs)
    mtl = _row(cx, "Proposed multitask")
    assert mtl.cells[0].mean == pytest.approx(2.5) and mtl.cells[1].missing  # no dataset
    for render in (to_markdown, to_csv, to_latex):
        assert "Proposed" in render(t)


def test_flops_of_single_task_counterpart_are_13_networks() -> None:
    tasks = [TaskInfo(f"c{i}", "classification", 3) for i in range(3)] + [
        TaskInfo(f"r{i}", "regression", 1) for i in range(10)]
    x = torch.zeros(1, 6, 11, 11)
    multi = count_flops(build_model("hsi-mtl", tasks, in_channels=6, width=4), x)
    single = count_flops(build_model("hsi-single-task", tasks, in_channels=6, width=4,
                                     split="variable"), x)
    one_cls = count_flops(build_model("hsi-mtl", tasks[:1], in_channels=6, width=4), x)
    one_reg = count_flops(build_model("hsi-mtl", tasks[3:4], in_channels=6, width=4), x)
    assert single == 3 * one_cls + 10 * one_reg
    assert multi < single / 5


def test_per_variable_tables_show_every_variable_missing_without_runs(tmp_path: Path) -> None:
    (tmp_path / "taiga").mkdir()
    t2 = build_table(get_table("taiga-classification"), collect_runs(tmp_path))
    assert [r.label for r in t2.rows] == ["fertility class", "soil class",
                                          "main tree species class"]
    assert all(c.missing for r in t2.rows for c in r.cells)
    t3 = build_table(get_table("taiga-regression"), collect_runs(tmp_path))
    assert len(t3.rows) == 10 and t3.rows[0].label == "basal area [m2/ha]"
    md = to_markdown(t3)
    assert md.splitlines()[2].startswith("| Continuous |")
    assert "Mean ± std" not in md and "minimum and maximum" in md


def test_per_variable_tables_keep_the_papers_row_order(runs: Path) -> None:
    t = build_table(get_table("taiga-regression"), collect_runs(runs))
    labels = [r.label for r in t.rows]
    assert labels.index("mean height [m]") < labels.index("leaf area index")
    assert not _row(t, "mean height [m]").cells[0].missing
    assert _row(t, "basal area").cells[0].missing  # no run reports it


@pytest.mark.parametrize("name", ["taiga-classification", "taiga-regression",
                                  "taiga-comparison", "taiga-ablation"])
def test_paper_flag_says_when_the_paper_kept_no_figures(runs: Path, name: str) -> None:
    t = build_table(get_table(name), collect_runs(runs), paper=True)
    assert not any(r.source == "paper" for r in t.rows)
    assert any("did not survive" in n for n in t.notes)
    plain = build_table(get_table(name), collect_runs(runs))
    assert not any("did not survive" in n for n in plain.notes)


def test_complexity_table_has_rows_for_the_transformer_and_diffusion_baselines(runs) -> None:
    t = build_table(get_table("taiga-complexity"), collect_runs(runs), paper=True)
    labels = [r.label for r in t.rows]
    for name in ("MSTNet", "GSC-ViT", "SpectralDiff"):
        ours = next(i for i, lab in enumerate(labels)
                    if lab.startswith(name) and "(paper)" not in lab)
        assert labels[ours + 1] == f"{name} (paper)"
        assert ours < labels.index("Proposed single-task")
        assert all(c.missing for c in t.rows[ours].cells)  # no run of it in the fixture
    mst = _row(t, "MSTNet (paper)")
    assert mst.source == "paper" and [c.mean for c in mst.cells] == [54.28, 102.46, 2134.92,
                                                                     93.83]
    plain = build_table(get_table("taiga-complexity"), collect_runs(runs))
    assert not any("(paper)" in r.label for r in plain.rows)
    assert any(r.label.startswith("MSTNet") for r in plain.rows)
