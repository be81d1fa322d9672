"""Report tables, registered by name where they are defined: one file here whose ``TableSpec``
is wrapped in ``register_table`` (``registry.py``); nothing else to edit.

``TABLES`` maps ``rsbench report --table NAME`` to its ``TableSpec``; every module of this
package is imported with it.
"""

from __future__ import annotations

import importlib
import pkgutil

from rsbench.errors import UsageError
from rsbench.reports.tables.registry import TABLES, register_table

for _info in pkgutil.iter_modules(__path__):  # alphabetical: the order of --table choices
    if _info.name != "registry":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["TABLES", "get_table", "register_table"]


def get_table(name: str):
    """The registered ``TableSpec`` called ``name``."""
    if name not in TABLES:
        raise UsageError(f"unknown table {name!r}; choose one of: {', '.join(TABLES)}")
    return TABLES[name]
