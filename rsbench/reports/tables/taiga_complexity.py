"""HSI paper Table VII: parameters (M), FLOPs per patch (G), training seconds per epoch and OA
(%) of each method on taiga; FLOPs counted with torch.utils.flop_counter on one patch."""

from __future__ import annotations

from rsbench.reports.plan import planned
from rsbench.reports.provenance import method_variants, provenance_notes, row_label
from rsbench.reports.table import Cell, Column, Row, Table, TableSpec
from rsbench.reports.tables.registry import register_table
from rsbench.reports.tables.taiga_comparison import ROWS as COMPARISON
from rsbench.reports.taiga_tables import (
    mark_best,
    paper_rows,
    protocol_label,
    protocol_note,
    run_complexity,
    seed_cell,
    summary,
)

ROWS = COMPARISON[:-1] + [("taiga", "hsi-single-task", "Proposed single-task"),
                          ("taiga", "hsi-mtl", "Proposed multitask")]
COLUMNS = [Column("Params (M)", "", "params", better="min", scale=1.0),
           Column("FLOPs (G)", "", "flops", better="min", scale=1.0),
           Column("Time/epoch (s)", "", "seconds", better="min", scale=1.0),
           Column("OA (%)", "", "oa", better="max", scale=1.0)]


def build(spec: TableSpec, runs, paper: bool) -> Table:
    published = paper_rows("complexity") if paper else {}
    rows = []
    scored: dict[str, set[int]] = {}
    for bench, method, label in ROWS:
        # the benchmark's own settings first, then one row per other setting (never mixed)
        for setting, by_bench in method_variants(runs, [bench], method):
            found = by_bench[bench]
            cx = run_complexity(found[0]) if found else {}
            params = cx.get("params")
            flops = cx.get("flops")
            cells = [Cell(params / 1e6) if params else Cell(),
                     Cell(flops / 1e9) if flops else Cell(),
                     seed_cell([r.metrics.get("train_seconds_per_epoch") for r in found]),
                     seed_cell([summary(r)["oa"] for r in found])]
            shown = protocol_label(row_label(label, setting), bench, found, scored)
            rows.append(Row(shown, "ours", f"{bench}/{method}", cells, len(found), setting,
                            found))
        if label in published:
            rows.append(Row(f"{label} (paper)", "paper", method,
                            [Cell(published[label].get(c.value)) for c in COLUMNS]))
    mark_best(rows, COLUMNS)
    table = Table(spec.name, spec.title, list(COLUMNS), rows)
    table.notes += provenance_notes(rows, sorted({b for b, _, _ in ROWS if b}))
    table.notes.append("FLOPs: one forward pass of one patch (multiply-add = 2 FLOPs); "
                       "time per epoch depends on the device of each run.")
    protocol_note(table, scored)
    return table


TABLE = register_table(TableSpec("taiga-complexity", "Table VII: complexity of the methods on TAIGA", [],
                                 COLUMNS, build=build,
                                 runs=[planned(b, m) for b, m, _ in ROWS if b is not None]))
