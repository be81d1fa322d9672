"""Table V(a): ablation on MSC (baseline, + attention, shared-specific, MTLN)."""

from rsbench.reports.plan import plan_rows
from rsbench.reports.table import MSC_TASKS, TableSpec, scene_columns
from rsbench.reports.tables.registry import register_table

METHODS = [("single-task", "Baseline"), ("baseline-attention", "Baseline+Attention"),
           ("shared-specific", "Shared-Specific Architecture"), ("mtln", "MTLN")]

TABLE = register_table(TableSpec("ablation-msc", "Table V(a): ablation, OA (%) and parameters on MSC",
                                 METHODS, scene_columns("msc", MSC_TASKS), paper_table="ablation-msc",
                                 runs=plan_rows(["msc"], [m for m, _ in METHODS])))
