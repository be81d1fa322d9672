"""Table V(b): ablation on mini-MSC."""

from rsbench.reports.plan import plan_rows
from rsbench.reports.table import MSC_TASKS, TableSpec, scene_columns
from rsbench.reports.tables.ablation_msc import METHODS
from rsbench.reports.tables.registry import register_table

TABLE = register_table(TableSpec("ablation-mini-msc",
                                 "Table V(b): ablation, OA (%) and parameters on mini-MSC", METHODS,
                                 scene_columns("mini-msc", MSC_TASKS), paper_table="ablation-mini-msc",
                                 runs=plan_rows(["mini-msc"], [m for m, _ in METHODS])))
