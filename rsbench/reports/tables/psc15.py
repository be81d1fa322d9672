"""Table IV(b): segmentation mIoU and PA, scene OA (%) and parameters on PSC15 (VGG-16).

Both mIoU definitions, as in Table IV(a) (see ``psc5``).
"""

from rsbench.reports.plan import plan_rows
from rsbench.reports.table import TableSpec
from rsbench.reports.tables.psc5 import METHODS, NOTES, PAPER_NOTES, psc_columns
from rsbench.reports.tables.registry import register_table

TABLE = register_table(TableSpec("psc15", "Table IV(b): results on PSC15 (VGG-16)", METHODS,
                                 psc_columns("psc15"), paper_table="psc15", extra_methods=True, notes=NOTES,
                                 paper_notes=PAPER_NOTES, runs=plan_rows(["psc15"], [m for m, _ in METHODS])))
