"""PatternNet (Zhou et al. 2018): 38 classes of 800 JPEGs, 256×256 (MTLN paper, Table VI)."""

from rsbench.datasets.sources.base import SceneSpec, register_source


def file_name(c: str, n: int) -> str:
    """Published name of image n of class folder c: airplane001.jpg .. airplane800.jpg."""
    return f"{c}{n:03d}.jpg"


PATTERNNET = register_source(SceneSpec(
    "patternnet", "PatternNet", ("PatternNet", "images"),
    ("airplane", "baseball_field", "basketball_court", "beach", "bridge", "cemetery",
     "chaparral", "christmas_tree_farm", "closed_road", "coastal_mansion", "crosswalk",
     "dense_residential", "ferry_terminal", "football_field", "forest", "freeway", "golf_course",
     "harbor", "intersection", "mobile_home_park", "nursing_home", "oil_gas_field", "oil_well",
     "overpass", "parking_lot", "parking_space", "railway", "river", "runway", "runway_marking",
     "shipping_yard", "solar_panel", "sparse_residential", "storage_tank", "swimming_pool",
     "tennis_court", "transformer_station", "wastewater_treatment_plant"),
    (".jpg", ".jpeg"), (256, 256), (800,) * 38,
    naming=file_name,
    benchmark="transfer",
))
