"""The table registry: each table file registers its ``TableSpec`` where it defines it, with
``TABLE = register_table(TableSpec(...))``; the package imports every table file once."""

from __future__ import annotations

from typing import Any

TABLES: dict[str, Any] = {}  # name -> TableSpec, in registration order


def register_table(spec: Any) -> Any:
    """Register ``spec`` (a :class:`rsbench.reports.table.TableSpec`) under ``spec.name``."""
    if spec.name in TABLES and TABLES[spec.name] is not spec:
        raise ValueError(f"table {spec.name!r} is registered twice")
    TABLES[spec.name] = spec
    return spec
