"""HSI paper Table VI: cost-sensitive cross-entropy vs focal loss without / with the
inverse-median-frequency class weights (benchmarks taiga-cs, taiga-focal-nw, taiga)."""

from rsbench.reports.plan import planned
from rsbench.reports.table import TableSpec
from rsbench.reports.tables.registry import register_table
from rsbench.reports.taiga_tables import summary_table

ROWS = [("taiga-cs", "hsi-mtl", "Cost-Sensitive"),
        ("taiga-focal-nw", "hsi-mtl", "Focal Loss without class weights"),
        ("taiga", "hsi-mtl", "Focal Loss with class weights")]

TABLE = register_table(TableSpec("taiga-loss", "Table VI: effect of cost-sensitive and focal loss on TAIGA",
                                 [], [], build=summary_table(ROWS, "loss"),
                                 runs=[planned(b, m) for b, m, _ in ROWS]))
