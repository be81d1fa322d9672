"""HSI paper Table IV: comparison with the baselines on taiga, the transformer (MSTNet, GSC-ViT)
and diffusion (SpectralDiff) baselines included. The dense models' rows (MSTNet among them) are
per-pixel ``taiga`` runs; the patch classifiers (Mõttus, Pham, GSC-ViT, SpectralDiff: one
prediction per window) are ``taiga-centre`` runs, the TAIGA baseline's centre-pixel protocol,
marked "(centre pixel)" in the table. Runs of LibMTL's architectures over the HSI encoder
(mtan, mmoe, cgc, ple, dselect-k, ltb: not in the paper, planned by no table) on either protocol
are added below the paper's methods, under their report names."""

from rsbench.reports.plan import planned
from rsbench.reports.table import TableSpec
from rsbench.reports.tables.registry import register_table
from rsbench.reports.taiga_tables import summary_table

ROWS = [("taiga", "unet", "U-Net"), ("taiga", "segnet", "SegNet"),
        ("taiga", "res-unet", "Res-U-Net"), ("taiga", "deeplabv3plus", "Deeplab V3+"),
        ("taiga-centre", "mottus-3dcnn", "Mõttus Model"),
        ("taiga-centre", "pham-cnn", "Pham Model"),
        ("taiga", "mstnet", "MSTNet"), ("taiga-centre", "gsc-vit", "GSC-ViT"),
        ("taiga-centre", "spectraldiff", "SpectralDiff"),
        ("taiga", "hsi-mtl", "Proposed")]



def libmtl_rows() -> list[tuple[str, str, str]]:
    """(benchmark, model, label) of LibMTL's architectures on both TAIGA protocols."""
    from rsbench.models.hsi_params import hsi_architectures

    return [(b, m, label) for m, label, _ in hsi_architectures() for b in ("taiga", "taiga-centre")]


TABLE = register_table(TableSpec("taiga-comparison", "Table IV: comparison with other methods on TAIGA", [],
                                 [], build=summary_table(ROWS, "comparison", extra=libmtl_rows),
                                 runs=[planned(b, m) for b, m, _ in ROWS]))
