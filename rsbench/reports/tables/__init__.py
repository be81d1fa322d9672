"""Report tables, registered by name. Add a table: one file here plus one line in TABLES.

``TABLES`` maps ``rsbench report --table NAME`` to ``"module:TABLE"`` (a ``TableSpec``).
"""

from __future__ import annotations

import importlib

from rsbench.errors import UsageError

TABLES: dict[str, str] = {
    "msc": "rsbench.reports.tables.msc:TABLE",
    "mini-msc": "rsbench.reports.tables.mini_msc:TABLE",
    "psc5": "rsbench.reports.tables.psc5:TABLE",
    "psc15": "rsbench.reports.tables.psc15:TABLE",
    "ablation-msc": "rsbench.reports.tables.ablation_msc:TABLE",
    "ablation-mini-msc": "rsbench.reports.tables.ablation_mini_msc:TABLE",
    "transfer": "rsbench.reports.tables.transfer:TABLE",
    "params": "rsbench.reports.tables.params:TABLE",
    "taiga-classification": "rsbench.reports.tables.taiga_classification:TABLE",
    "taiga-regression": "rsbench.reports.tables.taiga_regression:TABLE",
    "taiga-comparison": "rsbench.reports.tables.taiga_comparison:TABLE",
    "taiga-ablation": "rsbench.reports.tables.taiga_ablation:TABLE",
    "taiga-loss": "rsbench.reports.tables.taiga_loss:TABLE",
    "taiga-complexity": "rsbench.reports.tables.taiga_complexity:TABLE",
}


def get_table(name: str):
    if name not in TABLES:
        raise UsageError(f"unknown table {name!r}; choose one of: {', '.join(TABLES)}")
    module, attr = TABLES[name].split(":")
    return getattr(importlib.import_module(module), attr)
