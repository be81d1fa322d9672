"""HSI paper Table III: per continuous variable, RMSE, MAE and R² of hsi-mtl on taiga
(min-max scaled units), plus RMSE and MAE in physical units; mean / min / max over seeds."""

from rsbench.reports.plan import planned
from rsbench.reports.table import TableSpec
from rsbench.reports.tables.registry import register_table
from rsbench.reports.taiga_tables import per_variable_table

METRICS = [("rmse", "RMSE", 1.0, "min"), ("mae", "MAE", 1.0, "min"), ("r2", "R²", 1.0, "max"),
           ("physical.rmse", "RMSE (physical)", 1.0, "min"),
           ("physical.mae", "MAE (physical)", 1.0, "min")]

TABLE = register_table(TableSpec("taiga-regression",
                                 "Table III: continuous variables, hsi-mtl on TAIGA (mean/min/max over seeds)",
                                 [], [], build=per_variable_table("continuous", METRICS),
                                 runs=[planned("taiga", "hsi-mtl")]))
