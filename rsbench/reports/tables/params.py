"""Table II: parameters (M) of each MTLN component, from finished ``mtln`` runs."""

from __future__ import annotations

from rsbench.reports.plan import plan_rows
from rsbench.reports.table import Cell, Column, Row, Table, TableSpec, paper_results
from rsbench.reports.tables.registry import register_table

BENCHMARKS = [("msc", ("msc",), "MSC (ResNet-34)"), ("mini-msc", ("mini-msc",),
              "mini-MSC (WRN-28-4)"), ("psc5", ("psc5", "psc15"), "PSC (VGG-16)")]
COLUMNS = [Column("Shared branch", "", "shared"), Column("Scene classifier", "", "scene_classifier"),
           Column("Pixel classifier", "", "pixel_classifier"),
           Column("Attention modules / task", "", "attention_per_task"),
           Column("Extractors", "", "extractors"), Column("Total", "", "total")]
COLUMNS = [Column(c.label, c.benchmark, c.value, paper_key=c.value, better=None, scale=1.0)
           for c in COLUMNS]


def build(spec: TableSpec, runs, paper: bool) -> Table:
    published = paper_results()["params"] if paper else {}
    rows = []
    for key, benches, label in BENCHMARKS:
        found = [r for b in benches for r in runs.of(b, "mtln")]
        breakdown = found[0].metrics.get("parameters", {}).get("breakdown", {}) if found else {}
        cells = [Cell(breakdown[c.value] / 1e6) if c.value in breakdown else Cell()
                 for c in COLUMNS]
        rows.append(Row(label, "ours", "mtln", cells, len(found), runs=found))
        if key in published:
            rows.append(Row(f"{label} (paper)", "paper", "mtln",
                            [Cell(published[key].get(c.value)) for c in COLUMNS]))
    return Table(spec.name, spec.title, list(COLUMNS), rows)


TABLE = register_table(TableSpec("params", "Table II: parameters (M) of each MTLN component", [], COLUMNS,
                                 paper_table="params", build=build,
                                 runs=plan_rows(["msc", "mini-msc", "psc5"], ["mtln"])))
