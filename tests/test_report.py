"""`rsbench report` on a fixture of run folders: contents, mean ± std, best marked, 3 formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rsbench.cli.report import report
from rsbench.reports.render import to_csv, to_latex, to_markdown
from rsbench.reports.runs import collect_runs
from rsbench.reports.table import build_table, paper_results
from rsbench.reports.tables import TABLES, get_table

# OA per seed for (method, task) on msc; nwpu of fine-tune deliberately has one seed missing
MSC = {
    "mtln": {"merced": [0.97, 0.99], "aid": [0.92, 0.93], "nwpu": [0.89, 0.90]},
    "single-task": {"merced": [0.90, 0.94], "aid": [0.88, 0.86], "nwpu": [0.85, 0.87]},
}
PARAMS = {"mtln": 26_100_000, "single-task": 63_900_000}


def _write_run(root: Path, bench: str, method: str, seed: int, tasks: dict, params: int,
               breakdown: dict | None = None, complete: bool = True) -> None:
    d = root / bench / method / str(seed)
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    if complete:
        m = {"complete": True, "benchmark": bench, "method": method, "seed": seed,
             "tasks": tasks, "parameters": {"total": params,
                                            "breakdown": breakdown or {"total": params}}}
        (d / "metrics.json").write_text(json.dumps(m))


@pytest.fixture()
def runs(tmp_path) -> Path:
    for method, per_task in MSC.items():
        for seed in (0, 1):
            _write_run(tmp_path, "msc", method, seed,
                       {t: {"oa": v[seed]} for t, v in per_task.items()}, PARAMS[method])
    _write_run(tmp_path, "msc", "uncertainty", 0, {}, 1, complete=False)  # still training
    _write_run(tmp_path, "psc5", "mtln", 0,
               {"scene": {"oa": 0.95}, "segmentation": {"miou": 0.34, "miou_per_image": 0.30,
                                                  "pa": 0.76}},
               34_800_000, {"shared": 15_000_000, "scene_classifier": 1539,
                            "pixel_classifier": 9_000_000, "attention_per_task": 1_800_000,
                            "extractors": 6_000_000, "total": 34_800_000})
    _write_run(tmp_path, "transfer-eurosat", "mtln-transfer", 0, {"eurosat": {"oa": 0.8612}},
               27_000_000)
    return tmp_path


def _row(table, label):
    return next(r for r in table.rows if r.label == label)


def test_msc_table_mean_std_average_params_and_missing(runs):
    t = build_table(get_table("msc"), collect_runs(runs))
    labels = [c.label for c in t.columns]
    assert labels == ["Merced", "AID", "NWPU", "Average", "Params (M)"]
    mtln = _row(t, "MTLN")
    assert mtln.seeds == 2
    assert mtln.cells[0].mean == pytest.approx(98.0)
    assert mtln.cells[0].std == pytest.approx(np.std([97, 99], ddof=1))
    # average: per seed the mean over the three tasks, then mean ± std over seeds
    per_seed = [np.mean([0.97, 0.92, 0.89]) * 100, np.mean([0.99, 0.93, 0.90]) * 100]
    assert mtln.cells[3].mean == pytest.approx(np.mean(per_seed))
    assert mtln.cells[3].std == pytest.approx(np.std(per_seed, ddof=1))
    assert mtln.cells[4].mean == pytest.approx(26.1) and mtln.cells[4].std is None
    # methods without finished runs are shown missing, not invented; the running one too
    for label in ("Fine-tune", "Cross-Stitch", "DEN", "Uncer. Weig."):
        assert all(c.missing for c in _row(t, label).cells), label
    assert any("1 unfinished" in n for n in t.notes)
    # best per column: MTLN everywhere except parameters, which are never marked
    assert [c.best for c in mtln.cells] == [True, True, True, True, False]
    assert not any(c.best for c in _row(t, "Baseline").cells)


def test_paper_rows_come_from_the_data_file(runs):
    t = build_table(get_table("msc"), collect_runs(runs), paper=True)
    ref = _row(t, "MTLN (paper)")
    assert [c.mean for c in ref.cells] == [97.66, 92.54, 89.71, 93.30, 26.11]
    assert ref.source == "paper" and not any(c.best for c in ref.cells)
    assert _row(t, "DEN (paper)").cells[-1].mean == 31.29
    pub = paper_results()
    # transcription spot checks across Tables II-VI
    assert pub["mini-msc"]["uncertainty"]["nwpu"] == 80.29
    assert pub["psc15"]["mtln"] == {"segmentation.miou": 11.75, "segmentation.pa": 56.39,
                                    "scene.oa": 81.87, "params": 34.80}
    assert pub["ablation-msc"]["baseline-attention"]["params"] == 71.85
    assert pub["transfer"]["fine-tune"] == {"patternnet": 94.15, "eurosat": 87.86}
    assert pub["params"]["psc5"]["extractors"] == 6.27
    # every paper table's averages agree with its own per-task figures (catches typos)
    for name in ("msc", "mini-msc", "ablation-msc", "ablation-mini-msc"):
        for method, v in pub[name].items():
            assert np.mean([v["merced"], v["aid"], v["nwpu"]]) == pytest.approx(
                v["average"], abs=0.011), (name, method)


def test_three_formats(runs):
    t = build_table(get_table("msc"), collect_runs(runs), paper=True)
    md = to_markdown(t)
    assert "| MTLN | **98.00 ± 1.41** ▲ |" in md
    assert "| Fine-tune | – | – | – | – | – | 0 |" in md
    assert "*MTLN (paper)*" in md
    tex = to_latex(t)
    assert r"\textbf{98.00 $\pm$ 1.41}" in tex and r"\begin{tabular}{lcccccc}" in tex
    assert r"Fine-tune & -- & -- & -- & -- & -- & 0 \\" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    mt = next(r for r in rows if r["label"] == "MTLN")
    assert float(mt["Merced"]) == 98.0 and float(mt["Merced std"]) == pytest.approx(1.4142, 1e-3)
    assert next(r for r in rows if r["label"] == "Fine-tune")["Merced"] == ""


def test_psc_transfer_and_params_tables(runs):
    rs = collect_runs(runs)
    psc = build_table(get_table("psc5"), rs)
    assert [c.label for c in psc.columns][:3] == ["mIoU (dataset)", "mIoU (per image)", "PA"]
    assert [c.mean for c in _row(psc, "MTLN").cells] == pytest.approx([34.0, 30.0, 76.0, 95.0,
                                                                       34.8])
    assert "\\multicolumn{3}{c}{Segmentation}" in to_latex(psc)
    assert any("pooled pixel accuracies coincide" in n for n in psc.notes)
    assert not any("Paper rows" in n for n in psc.notes)
    tr = build_table(get_table("transfer"), rs, paper=True)
    ours = _row(tr, "Pre-train MTLN + fine-tuning (ours)")
    assert ours.cells[0].missing and ours.cells[1].mean == pytest.approx(86.12)
    assert _row(tr, "Pre-train MTLN + fine-tuning (ours) (paper)").cells[1].mean == 86.35
    pt = build_table(get_table("params"), rs, paper=True)
    psc_row = _row(pt, "PSC (VGG-16)")
    assert [c.mean for c in psc_row.cells] == pytest.approx([15.0, 0.001539, 9.0, 1.8, 6.0, 34.8])
    msc_row = _row(pt, "MSC (ResNet-34)")  # its runs only recorded a total
    assert all(c.missing for c in msc_row.cells[:-1]) and msc_row.cells[-1].mean == 26.1
    assert all(c.missing for c in _row(pt, "mini-MSC (WRN-28-4)").cells)
    assert _row(pt, "MSC (ResNet-34) (paper)").cells[0].mean == 21.29


def test_psc_paper_miou_sits_under_the_per_image_column_with_its_evidence(runs):
    t = build_table(get_table("psc15"), collect_runs(runs), paper=True)
    ref = _row(t, "MTLN (paper)")
    assert ref.cells[0].missing  # nothing under mIoU (dataset)
    assert [c.mean for c in ref.cells[1:]] == [11.75, 56.39, 81.87, 34.80]
    note = next(n for n in t.notes if n.startswith("Paper rows"))
    assert "MTAN" in note and "Nov 2020" in note and "not certain" in note
    assert "mIoU (per image)" in to_markdown(t)


def test_cli_writes_every_table_in_every_format(runs, tmp_path):
    cli = CliRunner()
    for name in TABLES:
        for fmt in ("csv", "markdown", "latex"):
            out = tmp_path / "out" / f"{name}.{fmt}"
            r = cli.invoke(report, [str(runs), "--table", name, "--format", fmt,
                                    "--out", str(out), "--paper"])
            assert r.exit_code == 0, r.output
            assert out.read_text().strip()
    r = cli.invoke(report, [str(runs), "--table", "msc"])
    assert r.exit_code == 0 and "**98.00 ± 1.41** ▲" in r.output
