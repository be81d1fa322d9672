"""HSI paper Table II: per categorical variable, precision, recall, F1, ROC-AUC, OA and mean
class accuracy of hsi-mtl on taiga, mean / min / max over seeds."""

from rsbench.reports.plan import planned
from rsbench.reports.table import TableSpec
from rsbench.reports.tables.registry import register_table
from rsbench.reports.taiga_tables import per_variable_table

METRICS = [("precision", "Precision", 100.0, "max"), ("recall", "Recall", 100.0, "max"),
           ("f1", "F1-score", 100.0, "max"), ("roc_auc", "ROC-AUC", 100.0, "max"),
           ("oa", "OA (micro)", 100.0, "max"), ("mean_class_accuracy", "MCA (macro)", 100.0,
                                                "max")]

TABLE = register_table(TableSpec("taiga-classification",
                                 "Table II: categorical variables, hsi-mtl on TAIGA (%, mean/min/max over seeds)",
                                 [], [], build=per_variable_table("categorical", METRICS),
                                 runs=[planned("taiga", "hsi-mtl")]))
