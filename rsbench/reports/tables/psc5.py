"""Table IV(a): segmentation mIoU and PA, scene OA (%) and parameters on PSC5 (VGG-16)."""

from rsbench.reports.table import Column, TableSpec

METHODS = [("single-task", "Baseline"), ("cross-stitch", "Cross-Stitch"),
           ("uncertainty", "Uncer. Weig."), ("mtln", "MTLN")]


def psc_columns(benchmark: str) -> list[Column]:
    return [Column("mIoU", benchmark, "segmentation.miou", "Segmentation", "segmentation.miou"),
            Column("PA", benchmark, "segmentation.pa", "Segmentation", "segmentation.pa"),
            Column("OA", benchmark, "scene.oa", "Classification", "scene.oa"),
            Column("Params (M)", benchmark, "params", "", "params", better=None, scale=1.0)]


TABLE = TableSpec("psc5", "Table IV(a): results on PSC5 (VGG-16)", METHODS,
                  psc_columns("psc5"), paper_table="psc5", extra_methods=True)
