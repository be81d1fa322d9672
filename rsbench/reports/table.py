"""Paper-style tables from runs: rows = methods, columns = task metrics, average, parameters.

A table is declared by a :class:`TableSpec` (one file in ``reports/tables/``); :func:`build_table`
fills it with mean ± std over seeds from finished runs (one row per method and setting, see
:mod:`rsbench.reports.provenance`), marks the best value per column, and (with ``paper=True``)
adds the paper's published figures as reference rows. Every cell also knows the 95% confidence
interval of its mean (Student t), shown with ``report --ci``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsbench.reports.provenance import method_variants, provenance_notes, row_label
from rsbench.reports.runs import RunResult, RunSet

PAPER_RESULTS = Path(__file__).resolve().parents[1] / "data" / "mtln_paper_results.json"


@dataclass(frozen=True)
class Column:
    """One column: ``value`` is ``"<task>.<metric>"`` (``*`` = the run's only task),
    ``"average"`` (mean over the table's ``<task>.oa`` columns of the same benchmark, per seed)
    or ``"params"`` (total parameters, millions)."""

    label: str
    benchmark: str
    value: str
    group: str = ""
    paper_key: str = ""
    better: str | None = "max"  # "max", "min" or None (never marked)
    scale: float = 100.0


@dataclass
class TableSpec:
    name: str
    title: str
    rows: Sequence[tuple[str, str]]  # (method, label shown)
    columns: Sequence[Column]
    paper_table: str = ""
    extra_methods: bool = False  # also list methods found in the runs but not in ``rows``
    build: Callable | None = None  # a custom builder replacing :func:`build_table`
    notes: Sequence[str] = ()  # footnotes always shown under the table
    paper_notes: Sequence[str] = ()  # footnotes shown with ``--paper``
    runs: Sequence = ()  # the PlannedRun s that `rsbench reproduce` runs for this table


@dataclass
class Cell:
    mean: float | None = None
    std: float | None = None
    n: int = 0
    best: bool = False
    ci_std: float | None = None  # the seeds' std for the CI when ``std`` is not displayed

    @property
    def missing(self) -> bool:
        return self.mean is None

    @property
    def ci(self) -> tuple[float, float] | None:
        """95% confidence interval of the mean over ``n`` seeds: mean ± t(0.975, n-1)·s/√n
        (Student t); None with fewer than two seeds."""
        s = self.std if self.std is not None else self.ci_std
        if self.missing or self.n < 2 or s is None:
            return None
        from scipy.stats import t

        half = float(t.ppf(0.975, self.n - 1)) * s / math.sqrt(self.n)
        return self.mean - half, self.mean + half


@dataclass
class Row:
    label: str
    source: str  # "ours" | "paper"
    method: str
    cells: list[Cell]
    seeds: int = 0
    setting: str = ""  # how the row's settings differ from the benchmark's ("" = its own)
    runs: list[RunResult] = field(default_factory=list)  # the runs behind the row


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    decimals: int = 2
    legend: str | None = None  # replaces the renderers' "Mean ± std over seeds; ..." line
    row_header: str = "Method"  # heading of the label column
    ci: bool = False  # show the 95% confidence interval of the mean in every cell


def paper_results() -> dict:
    return json.loads(PAPER_RESULTS.read_text())["tables"]


def run_value(run: RunResult, value: str) -> float | None:
    """A raw (unscaled) value of one run: ``task.metric`` or ``params``."""
    m = run.metrics
    if value == "params":
        return m.get("parameters", {}).get("total")
    task, _, metric = value.partition(".")
    tasks = m.get("tasks", {})
    if task == "*":
        if len(tasks) != 1:
            return None
        task = next(iter(tasks))
    return metric_number(tasks.get(task, {}).get(metric))


MAX_METRIC = 1e18  # beyond any accuracy, loss, parameter count, FLOPs or seconds reported


def metric_number(v: object) -> float | None:
    """A metrics.json value as a float, or None (shown as missing) for anything that is not a
    finite number of a sane size: NaN, infinities, text such as "nan", booleans, 1e308."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) and abs(v) <= MAX_METRIC else None


def _cell(values: Sequence[float]) -> Cell:
    if not values:
        return Cell()
    a = np.asarray(values, dtype=float)
    return Cell(float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else None, len(a))


def _method_cells(spec: TableSpec, found: dict[str, list[RunResult]]) -> tuple[list[Cell], int]:
    """Cells of one row from its runs per benchmark (one setting)."""
    cells, seeds = [], 0
    for col in spec.columns:
        rs = found.get(col.benchmark, [])
        if col.value == "params":
            vals = [v / 1e6 for r in rs if (v := run_value(r, "params")) is not None]
            c = _cell(vals[:1])  # identical for every seed
        elif col.value == "average":
            parts = [c.value for c in spec.columns
                     if c.benchmark == col.benchmark and c.value.endswith(".oa")]
            vals = []
            for r in rs:
                got = [run_value(r, p) for p in parts]
                if parts and all(g is not None for g in got):
                    vals.append(col.scale * float(np.mean(got)))
            c = _cell(vals)
        else:
            vals = [col.scale * v for r in rs if (v := run_value(r, col.value)) is not None]
            c = _cell(vals)
        seeds = max(seeds, c.n if col.value != "params" else 0)
        cells.append(c)
    return cells, seeds


def _mark_best(rows: list[Row], columns: Sequence[Column], decimals: int) -> None:
    for j, col in enumerate(columns):
        if col.better is None:
            continue
        ours = [r.cells[j] for r in rows if r.source == "ours" and not r.cells[j].missing]
        if not ours:
            continue
        pick = max if col.better == "max" else min
        best = pick(round(c.mean, decimals) for c in ours)
        for c in ours:
            c.best = round(c.mean, decimals) == best


def method_label(method: str) -> str:
    """A method's row label: its model's report name (``mmoe+pcgrad`` -> ``MMoE+pcgrad``; the
    model's registered ``label``), the method itself for a model without one."""
    from rsbench.models import model_label

    model, plus, rest = method.partition("+")
    return model_label(model) + plus + rest


def build_table(spec: TableSpec, runs: RunSet, paper: bool = False) -> Table:
    """Fill ``spec`` from ``runs`` (missing runs stay missing) and add paper rows if asked."""
    if spec.build is not None:
        return spec.build(spec, runs, paper)
    rows_spec = list(spec.rows)
    if spec.extra_methods:
        known = {m for m, _ in rows_spec}
        benches = {c.benchmark for c in spec.columns}
        for b in sorted(benches):
            rows_spec += [(m, method_label(m)) for m in runs.methods(b) if m not in known
                          and not m.endswith(("-frozen", "-transfer"))]
            known |= {m for m, _ in rows_spec}
    published = paper_results().get(spec.paper_table, {}) if paper else {}
    benches = list(dict.fromkeys(c.benchmark for c in spec.columns))
    rows: list[Row] = []
    for method, label in rows_spec:
        for setting, found in method_variants(runs, benches, method):
            cells, seeds = _method_cells(spec, found)
            rows.append(Row(row_label(label, setting), "ours", method, cells, seeds, setting,
                            [r for b in benches for r in found.get(b, [])]))
            if paper and not setting and method in published:
                ref = published[method]
                rows.append(Row(f"{label} (paper)", "paper", method,
                                [Cell(ref.get(c.paper_key)) for c in spec.columns]))
    table = Table(spec.name, spec.title, list(spec.columns), rows)
    table.notes += list(spec.notes) + (list(spec.paper_notes) if paper else [])
    _mark_best(rows, spec.columns, table.decimals)
    table.notes += provenance_notes(rows, benches)
    note_unfinished(table, runs, set(benches))
    return table


def note_unfinished(table: Table, runs: RunSet, benches: set[str]) -> None:
    """A footnote listing the unfinished run folders of the table's benchmarks."""
    unfinished = runs.unfinished_in(benches)
    if unfinished:
        table.notes.append(f"{len(unfinished)} unfinished run(s) not counted: "
                           + ", ".join(str(p) for p in unfinished[:5])
                           + (" ..." if len(unfinished) > 5 else ""))


def scene_columns(benchmark: str, tasks: Sequence[tuple[str, str]]) -> list[Column]:
    """OA per scene task, their average and the parameter count (Tables III and V)."""
    cols = [Column(label, benchmark, f"{task}.oa", paper_key=task) for task, label in tasks]
    cols.append(Column("Average", benchmark, "average", paper_key="average"))
    cols.append(Column("Params (M)", benchmark, "params", paper_key="params", better=None,
                       scale=1.0))
    return cols


MSC_TASKS = (("merced", "Merced"), ("aid", "AID"), ("nwpu", "NWPU"))
