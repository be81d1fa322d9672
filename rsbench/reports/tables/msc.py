"""Table III(a): OA (%) and parameters on MSC, ResNet-34 backbone."""

from rsbench.reports.plan import plan_rows
from rsbench.reports.table import MSC_TASKS, TableSpec, scene_columns
from rsbench.reports.tables.registry import register_table

METHODS = [("single-task", "Baseline"), ("fine-tune", "Fine-tune"),
           ("cross-stitch", "Cross-Stitch"), ("den", "DEN"), ("uncertainty", "Uncer. Weig."),
           ("mtln", "MTLN")]

TABLE = register_table(TableSpec("msc", "Table III(a): OA (%) and number of parameters on MSC (ResNet-34)",
                                 METHODS, scene_columns("msc", MSC_TASKS), paper_table="msc",
                                 extra_methods=True, runs=plan_rows(["msc"], [m for m, _ in METHODS])))
