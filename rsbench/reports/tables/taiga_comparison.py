"""HSI paper Table IV: comparison with the baselines on taiga (transformer and diffusion
baselines are out of scope)."""

from rsbench.reports.plan import planned
from rsbench.reports.table import TableSpec
from rsbench.reports.taiga_tables import summary_table

ROWS = [("taiga", "unet", "U-Net"), ("taiga", "segnet", "SegNet"),
        ("taiga", "res-unet", "Res-U-Net"), ("taiga", "deeplabv3plus", "Deeplab V3+"),
        ("taiga", "mottus-3dcnn", "Mõttus Model"), ("taiga", "pham-cnn", "Pham Model"),
        ("taiga", "hsi-mtl", "Proposed")]

TABLE = TableSpec("taiga-comparison", "Table IV: comparison with other methods on TAIGA", [],
                  [], build=summary_table(ROWS, "comparison"),
                  runs=[planned(b, m) for b, m, _ in ROWS])
