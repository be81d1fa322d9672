"""Shared pieces of the HSI paper's tables (II–VII) built from ``taiga`` runs.

Per run, the categorical tasks are those reporting ``oa`` and the continuous ones those
reporting ``rmse``; comparison tables average each metric over them (OA, precision, recall in
%, RMSE and MAE in normalised units), then over seeds (mean ± std). Tables II–III give mean,
minimum and maximum over seeds, per variable. FLOPs are counted once per run with
``torch.utils.flop_counter`` on one patch and cached in the run folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rsbench.models.hsi_params import count_flops
from rsbench.reports.provenance import (
    method_variants,
    provenance_notes,
    row_label,
    seed_list,
    unstated_settings,
)
from rsbench.reports.runs import RunResult, RunSet
from rsbench.reports.table import (
    Cell,
    Column,
    Row,
    Table,
    TableSpec,
    metric_number,
    note_unfinished,
)

PAPER = Path(__file__).resolve().parents[1] / "data" / "hsi_paper_results.json"
COMPLEXITY = "complexity.json"
NO_PAPER_FIGURES = ("--paper: this table's published figures did not survive the paper's text "
                    "(only Tables VI and VII kept theirs), so no paper rows are shown.")


def paper_rows(table: str) -> dict:
    """Published figures of one of the HSI paper's tables (only those its text preserves)."""
    return json.loads(PAPER.read_text())["tables"].get(table, {})


def _finite(v) -> float | None:
    return metric_number(v)


def categorical(run: RunResult) -> dict[str, dict]:
    return {t: m for t, m in run.metrics.get("tasks", {}).items() if "oa" in m}


def continuous(run: RunResult) -> dict[str, dict]:
    return {t: m for t, m in run.metrics.get("tasks", {}).items() if "rmse" in m and "oa" not in m}


def summary(run: RunResult) -> dict[str, float | None]:
    """One run's table values: OA/precision/recall (%, mean over categorical variables) and
    RMSE/MAE (normalised, mean over continuous variables)."""
    cat, con = categorical(run), continuous(run)

    def mean(group: dict, key: str, scale: float) -> float | None:
        vals = [_finite(m.get(key)) for m in group.values()]
        return scale * float(np.mean(vals)) if vals and None not in vals else None
    return {"oa": mean(cat, "oa", 100), "precision": mean(cat, "precision", 100),
            "recall": mean(cat, "recall", 100), "rmse": mean(con, "rmse", 1),
            "mae": mean(con, "mae", 1)}


def seed_cell(values: Sequence[float | None]) -> Cell:
    vals = [v for v in map(metric_number, values) if v is not None]
    if not vals:
        return Cell()
    a = np.asarray(vals, float)
    return Cell(float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else None, len(a))


def mark_best(rows: list[Row], columns: Sequence[Column]) -> None:
    for j, col in enumerate(columns):
        ours = [r.cells[j] for r in rows if r.source == "ours" and not r.cells[j].missing]
        if col.better is None or not ours:
            continue
        pick = max if col.better == "max" else min
        best = pick(round(c.mean, 4) for c in ours)
        for c in ours:
            c.best = round(c.mean, 4) == best


SUMMARY_COLUMNS = [
    Column("OA (%)", "", "oa", "Classification", "oa"),
    Column("Precision", "", "precision", "Classification", "precision"),
    Column("Recall", "", "recall", "Classification", "recall"),
    Column("RMSE", "", "rmse", "Regression", "rmse", better="min", scale=1.0),
    Column("MAE", "", "mae", "Regression", "mae", better="min", scale=1.0),
]


CENTRE_MARK = " (centre pixel)"


def run_protocol(run: RunResult) -> str:
    """``per-pixel`` or ``centre-pixel``: the ``protocol`` in the run's config.json; runs made
    before the key existed are per-pixel exactly when their model had ``per_pixel: true``."""
    conf = run.config
    if conf.get("protocol"):
        return str(conf["protocol"])
    return "per-pixel" if (conf.get("model_options") or {}).get("per_pixel") else "centre-pixel"


def row_protocol(bench: str, found: Sequence[RunResult]) -> str:
    """The protocol of a table row: its runs' (see :func:`run_protocol`), else its
    benchmark's config (a row without runs)."""
    seen = {run_protocol(r) for r in found}
    if seen:
        return "centre-pixel" if "centre-pixel" in seen else seen.pop()
    from rsbench.training.config import load_benchmark

    return str(load_benchmark(bench).get("protocol", "per-pixel"))


def pixels_scored(run: RunResult) -> int | None:
    """Labelled pixels the run scored for its best-covered variable (``pixels_scored``)."""
    counts = [m.get("pixels_scored") for m in run.metrics.get("tasks", {}).values()]
    counts = [int(c) for c in counts if isinstance(c, int | float)]
    return max(counts) if counts else None


def protocol_label(label: str, bench: str, found: Sequence[RunResult],
                   scored: dict[str, set[int]]) -> str:
    """``label`` marked `` (centre pixel)`` for a centre-pixel row; records the row's pixels
    scored under its protocol in ``scored`` for :func:`protocol_note`."""
    proto = row_protocol(bench, found)
    scored.setdefault(proto, set()).update(
        n for r in found if (n := pixels_scored(r)) is not None)
    return label + CENTRE_MARK if proto == "centre-pixel" else label


def protocol_note(table: Table, scored: dict[str, set[int]]) -> None:
    """The footnote saying how each protocol scores (and how many pixels the runs scored)."""
    def counts(proto: str) -> str:
        vals = sorted(scored.get(proto) or ())
        return f" (up to {' / '.join(f'{v:,}' for v in vals)} labelled pixels scored per " \
            "variable)" if vals else ""
    if "per-pixel" in scored:
        table.notes.append("Rows without a mark: the HSI paper's per-pixel protocol (benchmarks "
                           "taiga, taiga-cs, taiga-focal-nw): every labelled pixel the test "
                           "windows cover is scored exactly once" + counts("per-pixel") + ".")
    if "centre-pixel" in scored:
        table.notes.append(f"{CENTRE_MARK.strip()}: the TAIGA baseline's centre-pixel protocol "
                           "(benchmark taiga-centre): patch classifiers predict one value per "
                           "window and are trained and scored on the window's centre pixel "
                           "only" + counts("centre-pixel") + "; not the same pixels as the "
                           "per-pixel rows.")


def summary_table(rows_spec: Sequence[tuple[str, str, str]], paper_key: str,
                  extra: Callable[[], Sequence[tuple[str, str, str]]] | None = None) -> Callable:
    """A builder for Tables IV–VI: rows (benchmark, method, label) → summary columns; ``extra``
    gives more (benchmark, method, label) rows, shown only where they have runs."""

    def build(spec: TableSpec, runs: RunSet, paper: bool) -> Table:
        published = paper_rows(paper_key) if paper else {}
        rows: list[Row] = []
        scored: dict[str, set[int]] = {}
        more = [(b, m, label) for b, m, label in (extra() if extra else [])
                if m in runs.methods(b)]
        for bench, method, label in [*rows_spec, *more]:
            for setting, by_bench in method_variants(runs, [bench], method):
                found = by_bench[bench]
                sums = [summary(r) for r in found]
                cells = [seed_cell([s[c.value] for s in sums]) for c in SUMMARY_COLUMNS]
                shown = protocol_label(row_label(label, setting), bench, found, scored)
                rows.append(Row(shown, "ours", f"{bench}/{method}", cells, len(found), setting,
                                found))
            if label in published:
                rows.append(Row(f"{label} (paper)", "paper", method,
                                [Cell(published[label].get(c.value)) for c in SUMMARY_COLUMNS]))
        table = Table(spec.name, spec.title, list(SUMMARY_COLUMNS), rows, decimals=3)
        mark_best(rows, SUMMARY_COLUMNS)
        table.notes.append("OA, precision and recall: mean over the categorical variables; "
                           "RMSE and MAE: mean over the continuous variables (min-max scaled).")
        protocol_note(table, scored)
        if paper and not published:
            table.notes.append(NO_PAPER_FIGURES)
        table.notes += provenance_notes(rows, [b for b, _, _ in rows_spec])
        note_unfinished(table, runs, {b for b, _, _ in rows_spec})
        return table
    return build


def per_variable_table(kind: str, metrics: Sequence[tuple[str, str, float, str]],
                       bench: str = "taiga", method: str = "hsi-mtl") -> Callable:
    """A builder for Tables II–III: one row per variable, mean/min/max over seeds per metric.

    ``metrics`` holds (key, label, scale, better); ``key`` may be ``physical.rmse``.
    """
    columns = [Column(stat, "", f"{key}:{stat}", label, better=better if stat == "mean" else None,
                      scale=scale) for key, label, scale, better in metrics
               for stat in ("mean", "min", "max")]

    def value(m: dict, key: str) -> float | None:
        for part in key.split("."):
            m = m.get(part) if isinstance(m, dict) else None
        return _finite(m)

    def build(spec: TableSpec, runs: RunSet, paper: bool) -> Table:
        from rsbench.datasets.sources.taiga import CATEGORICAL, CONTINUOUS

        found = runs.of(bench, method)
        pick = categorical if kind == "categorical" else continuous
        # the paper's variables always get a row (missing until a run reports them)
        names = list(CATEGORICAL) if kind == "categorical" else [v for v, _, _ in CONTINUOUS]
        units = {v: u for v, u, _ in CONTINUOUS}
        for r in found:
            names += [t for t in pick(r) if t not in names]
        rows = []
        for task in names:
            cells = []
            for col in columns:
                key, stat = col.value.split(":")
                vals = [v * col.scale for r in found
                        if (v := value(pick(r).get(task, {}), key)) is not None]
                if not vals:
                    cells.append(Cell())
                    continue
                agg = {"mean": np.mean, "min": np.min, "max": np.max}[stat]
                spread = float(np.std(vals, ddof=1)) if stat == "mean" and len(vals) > 1 \
                    else None
                cells.append(Cell(float(agg(vals)), None, len(vals), ci_std=spread))
            unit = next((pick(r)[task].get("physical", {}).get("unit") for r in found
                         if task in pick(r)), units.get(task, ""))
            label = task.replace("_", " ") + (f" [{unit}]" if unit else "")
            rows.append(Row(label, "ours", method, cells,
                            max((c.n for c in cells), default=0), runs=found))
        table = Table(spec.name, spec.title, columns, rows, decimals=3 if kind == "continuous"
                      else 2, legend="Mean, minimum and maximum over seeds; – missing (no "
                      "finished run reports the variable as a finite number).",
                      row_header="Categorical" if kind == "categorical" else "Continuous")
        scored: dict[str, set[int]] = {}
        shown = protocol_label(method, bench, found, scored)
        table.notes.append(f"{shown} on {bench} at the benchmark's own settings: mean, "
                           f"minimum and maximum over seed(s) {seed_list(found)}.")
        others = runs.variants(bench, method)
        if others:
            table.notes.append(f"Not shown: {method} runs at other settings ("
                               + "; ".join(f"{g.label}: seed(s) {', '.join(g.seeds)}"
                                           for g in others) + ").")
        unstated = unstated_settings(found)
        if unstated:
            table.notes.append("Settings the paper does not state (from the runs' configs): "
                               + "; ".join(f"{k}: {v}" for k, v in unstated.items()) + ".")
        protocol_note(table, scored)
        if paper:
            table.notes.append(NO_PAPER_FIGURES)
        note_unfinished(table, runs, {bench})
        return table
    return build


# --------------------------------------------------------------------------------------------
# complexity (Table VII)
# --------------------------------------------------------------------------------------------


def run_complexity(run: RunResult) -> dict:
    """Parameters and per-patch FLOPs of a run's model, rebuilt from its config and dataset
    (cached in ``complexity.json``); FLOPs are None when the dataset is gone."""
    cache = run.path / COMPLEXITY
    if cache.exists():
        return json.loads(cache.read_text())
    out: dict = {"params": run.metrics.get("parameters", {}).get("total"), "flops": None}
    try:
        import torch

        from rsbench.datasets.format.reader import open_dataset
        from rsbench.models import build_model
        from rsbench.models.base import TaskInfo
        from rsbench.training.run_folder import check_spec

        conf = json.loads((run.path / "config.json").read_text())
        data = open_dataset(conf["data"])
        shape = data.manifest["arrays"][conf.get("image_array", "image")]["shape"]
        patch = int(data.manifest.get("taiga", {}).get("patch") or data.index["win_h"].iloc[0])
        infos = [TaskInfo(*t) for t in conf["task_infos"]]
        options = {"in_channels": int(shape[-1]), **(conf.get("model_options") or {})}
        check_spec({"name": conf["model"], "kwargs": options, "tasks": conf["task_infos"]},
                   source=run.path / "config.json")  # size bounded before it is allocated
        model = build_model(conf["model"], infos, **options)
        out["flops"] = count_flops(model, torch.zeros(1, int(shape[-1]), patch, patch))
        out["patch"] = [int(shape[-1]), patch, patch]
    except Exception as exc:  # noqa: BLE001 - a missing dataset leaves FLOPs missing
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    cache.write_text(json.dumps(out))
    return out
