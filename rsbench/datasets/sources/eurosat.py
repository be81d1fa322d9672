"""EuroSAT RGB (Helber et al. 2019): 10 classes, 2000-3000 JPEGs each, 64×64 (Table VI)."""

from rsbench.datasets.sources.base import SceneSpec, register_source


def file_name(c: str, n: int) -> str:
    """Published name of image n of class folder c: AnnualCrop_1.jpg ..."""
    return f"{c}_{n}.jpg"


EUROSAT = register_source(SceneSpec(
    "eurosat", "EuroSAT (RGB)", ("2750",),
    ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
     "PermanentCrop", "Residential", "River", "SeaLake"),
    (".jpg", ".jpeg"), (64, 64),
    (3000, 3000, 3000, 2500, 2500, 2000, 2500, 3000, 2500, 3000),
    naming=file_name,
    benchmark="transfer",
))
