"""NWPU-RESISC45 (Cheng et al. 2017): 45 classes of 700 JPEGs, 256×256."""

from rsbench.datasets.sources.base import SceneSpec, register_source


def file_name(c: str, n: int) -> str:
    """Published name of image n of class folder c: airplane_001.jpg .. airplane_700.jpg."""
    return f"{c}_{n:03d}.jpg"


NWPU = register_source(SceneSpec(
    "nwpu", "NWPU-RESISC45", ("NWPU-RESISC45",),
    ("airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge",
     "chaparral", "church", "circular_farmland", "cloud", "commercial_area", "dense_residential",
     "desert", "forest", "freeway", "golf_course", "ground_track_field", "harbor",
     "industrial_area", "intersection", "island", "lake", "meadow", "medium_residential",
     "mobile_home_park", "mountain", "overpass", "palace", "parking_lot", "railway",
     "railway_station", "rectangular_farmland", "river", "roundabout", "runway", "sea_ice",
     "ship", "snowberg", "sparse_residential", "stadium", "storage_tank", "tennis_court",
     "terrace", "thermal_power_station", "wetland"),
    (".jpg", ".jpeg"), (256, 256), (700,) * 45,
    naming=file_name,
    benchmark="msc",
))
