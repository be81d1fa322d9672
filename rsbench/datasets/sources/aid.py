"""AID (Xia et al. 2017): 30 classes, 220-420 JPEGs each, 600×600."""

from rsbench.datasets.sources.base import SceneSpec, register_source


def file_name(c: str, n: int) -> str:
    """Published name of image n of class folder c: airport_1.jpg ..."""
    return f"{c.lower()}_{n}.jpg"


AID = register_source(SceneSpec(
    "aid", "AID", ("AID",),
    ("Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
     "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow",
     "MediumResidential", "Mountain", "Park", "Parking", "Playground", "Pond", "Port",
     "RailwayStation", "Resort", "River", "School", "SparseResidential", "Square", "Stadium",
     "StorageTanks", "Viaduct"),
    (".jpg", ".jpeg"), (600, 600),
    (360, 310, 220, 400, 360, 260, 240, 350, 410, 300, 370, 250, 390, 280, 290, 340, 350, 390,
     370, 420, 380, 260, 290, 410, 300, 300, 330, 290, 360, 420),
    naming=file_name,
    benchmark="msc",
))
