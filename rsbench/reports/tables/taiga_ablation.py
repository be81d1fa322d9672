"""HSI paper Table V: ablation of the modules (R residual blocks, D Dense ASPP, A attention,
C channel pooling, M multitask loss weighting) on taiga. Rows without M are the ``+equal``
runs (``rsbench run taiga --model hsi-mtl-r --weighting equal``)."""

from rsbench.reports.plan import planned
from rsbench.reports.table import TableSpec
from rsbench.reports.tables.registry import register_table
from rsbench.reports.taiga_tables import summary_table

ROWS = [("taiga", "hsi-mtl-baseline+equal", "Baseline"), ("taiga", "hsi-mtl-r+equal",
                                                          "Baseline + R"),
        ("taiga", "hsi-mtl-rd+equal", "Baseline + RD"), ("taiga", "hsi-mtl-rda+equal",
                                                         "Baseline + RDA"),
        ("taiga", "hsi-mtl-rda", "Baseline + RDAM"), ("taiga", "hsi-mtl-dac", "Baseline + DAC"),
        ("taiga", "hsi-mtl", "Proposed")]

TABLE = register_table(TableSpec("taiga-ablation", "Table V: effect of the network's modules on TAIGA", [], [],
                                 build=summary_table(ROWS, "ablation"),
                                 runs=[planned(b, m) for b, m, _ in ROWS]))
