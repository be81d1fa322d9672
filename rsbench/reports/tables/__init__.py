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
}


def get_table(name: str):
    if name not in TABLES:
        raise UsageError(f"unknown table {name!r}; choose one of: {', '.join(TABLES)}")
    module, attr = TABLES[name].split(":")
    return getattr(importlib.import_module(module), attr)
