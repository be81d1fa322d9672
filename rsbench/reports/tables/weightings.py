"""Every registered task weighting on every benchmark: each benchmark's main metrics (mean ± std
over seeds) and Δm% against equal weighting, the multitask literature's summary figure
(Maninis et al. 2019; LibMTL): Δm = (1/T) Σ_t (−1)^{l_t} (M_t − M_t^equal) / M_t^equal × 100,
l_t = 1 where lower is better, over the T metric columns where both rows have a value.

Per benchmark one model (its multitask model of the papers): ``mtln`` on MSC, mini-MSC, PSC5
and PSC15, ``hsi-mtl`` on TAIGA. A weighting's runs are the method ``MODEL+WEIGHTING``, or
``MODEL`` for the weighting the benchmark trains that model with by default (``equal`` for
``mtln``, ``uncertainty`` for ``hsi-mtl`` on TAIGA), at the benchmark's own settings only.
"""

from __future__ import annotations

from rsbench.reports.plan import planned
from rsbench.reports.provenance import provenance_notes
from rsbench.reports.runs import RunResult, RunSet
from rsbench.reports.table import Cell, Column, Row, Table, TableSpec, note_unfinished, run_value
from rsbench.reports.tables.registry import register_table
from rsbench.reports.taiga_tables import seed_cell, summary

MODELS = {"msc": "mtln", "mini-msc": "mtln", "psc5": "mtln", "psc15": "mtln", "taiga": "hsi-mtl"}
REFERENCE = "equal"

# (label, benchmark, value, better): value "avg-oa" = mean OA over the run's scene tasks,
# "taiga.oa" / "taiga.rmse" = mean over TAIGA's categorical / continuous variables (its tables'),
# else "<task>.<metric>" as the benchmark's own table (mIoU: the paper's dataset-level formula)
COLUMNS = [Column("MSC OA", "msc", "avg-oa"), Column("mini-MSC OA", "mini-msc", "avg-oa"),
           Column("PSC5 mIoU", "psc5", "segmentation.miou"), Column("PSC5 OA", "psc5", "scene.oa"),
           Column("PSC15 mIoU", "psc15", "segmentation.miou"),
           Column("PSC15 OA", "psc15", "scene.oa"),
           Column("TAIGA OA", "taiga", "taiga.oa", scale=1.0),
           Column("TAIGA RMSE", "taiga", "taiga.rmse", better="min", scale=1.0)]
DELTA = Column("Δm% vs equal", "", "delta", better="max", scale=1.0)


def weightings() -> list[str]:
    from rsbench.training.weighting import available_weightings

    return [REFERENCE] + [w for w in available_weightings() if w != REFERENCE]


def default_of(benchmark: str, model: str) -> str:
    """The weighting ``model`` trains with on ``benchmark`` when none is given."""
    from rsbench.models import default_weighting
    from rsbench.training.config import load_benchmark

    own = default_weighting(model)
    return own or (load_benchmark(benchmark).get("weighting") or {}).get("name", "equal")


def method_of(benchmark: str, weighting: str) -> str:
    """The method name the runs of ``weighting`` on ``benchmark`` get (as `rsbench run`)."""
    model = MODELS[benchmark]
    return model if weighting == default_of(benchmark, model) else f"{model}+{weighting}"


def value(run: RunResult, col: Column) -> float | None:
    """One run's raw value of a column (percent for accuracies)."""
    if col.value == "avg-oa":
        oas = [run_value(run, f"{t}.oa") for t in run.metrics.get("tasks", {})]
        return 100 * sum(oas) / len(oas) if oas and None not in oas else None
    if col.value.startswith("taiga."):
        return summary(run)[col.value.split(".", 1)[1]]
    v = run_value(run, col.value)
    return None if v is None else col.scale * v


def delta_m(cells: list[Cell], ref: list[Cell], columns: list[Column]) -> float | None:
    """Δm% of a row against the reference row over the columns where both have a mean."""
    terms = [(-1 if col.better == "min" else 1) * (c.mean - r.mean) / r.mean * 100
             for c, r, col in zip(cells, ref, columns)
             if not c.missing and not r.missing and r.mean != 0]
    return sum(terms) / len(terms) if terms else None


def build(spec: TableSpec, runs: RunSet, paper: bool) -> Table:
    rows = []
    for w in weightings():
        found = {b: runs.of(b, method_of(b, w)) for b in MODELS}
        cells = [seed_cell([value(r, col) for r in found[col.benchmark]]) for col in COLUMNS]
        seeds = max((c.n for c in cells), default=0)
        rows.append(Row(w, "ours", w, cells, seeds, runs=[r for rs in found.values() for r in rs]))
    ref = rows[0].cells
    for row in rows:
        d = delta_m(row.cells, ref, COLUMNS)
        row.cells.append(Cell(d))
    columns = [*COLUMNS, DELTA]
    for j, col in enumerate(columns):
        ours = [r.cells[j] for r in rows if not r.cells[j].missing]
        if ours:
            best = (min if col.better == "min" else max)(round(c.mean, 2) for c in ours)
            for c in ours:
                c.best = round(c.mean, 2) == best
    table = Table(spec.name, spec.title, columns, rows, row_header="Weighting")
    table.notes += list(spec.notes) + provenance_notes(rows, list(MODELS))
    other = [f"{w} on {g.benchmark} ({g.label}; seed(s) {', '.join(g.seeds)})"
             for w in weightings() for b in MODELS for g in runs.variants(b, method_of(b, w))]
    if other:
        table.notes.append("Not counted (runs at settings other than the benchmark's own, "
                           "never compared with its own): " + "; ".join(other) + ".")
    note_unfinished(table, runs, set(MODELS))
    return table


NOTES = [
    "Δm% = (1/T) Σ_t (−1)^{l_t} (M_t − M_t^equal) / M_t^equal × 100 over the T metric columns "
    "where both the row and equal weighting have a value (l_t = 1 for TAIGA RMSE, lower is "
    "better; 0 otherwise), computed from the means over seeds; positive = better than equal.",
    "Models: mtln on MSC, mini-MSC (its WRN-28-4 backbone), PSC5 and PSC15; hsi-mtl on TAIGA "
    "(its default weighting there is uncertainty: that row is the plain hsi-mtl runs). Runs at "
    "each benchmark's own settings only. MSC / mini-MSC OA: mean over the three scene tasks; "
    "PSC mIoU: dataset-level (the MTLN paper's formula); TAIGA OA (%) / RMSE (normalised): "
    "mean over the categorical / continuous variables.",
]

TABLE = register_table(TableSpec(
    "weightings", "Task weightings: main metric per benchmark and Δm% against equal weighting",
    [], COLUMNS, build=build, notes=NOTES,
    runs=[planned(b, method_of(b, w)) for b in MODELS for w in weightings()]))
