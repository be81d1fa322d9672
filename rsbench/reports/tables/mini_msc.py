"""Table III(b): OA (%) and parameters on mini-MSC, WRN-28-4 backbone."""

from rsbench.reports.plan import plan_rows
from rsbench.reports.table import MSC_TASKS, TableSpec, scene_columns
from rsbench.reports.tables.msc import METHODS
from rsbench.reports.tables.registry import register_table

TABLE = register_table(TableSpec("mini-msc",
                                 "Table III(b): OA (%) and number of parameters on mini-MSC (WRN-28-4)",
                                 METHODS, scene_columns("mini-msc", MSC_TASKS), paper_table="mini-msc",
                                 extra_methods=True,
                                 runs=plan_rows(["mini-msc"], [m for m, _ in METHODS])))
