"""UC Merced Land Use (Yang and Newsam 2010): 21 classes of 100 TIFFs, 256×256 (a few odd sizes)."""

from rsbench.datasets.sources.base import SceneSpec, register_source


def file_name(c: str, n: int) -> str:
    """Published name of image n of class folder c: agricultural00.tif .. agricultural99.tif."""
    return f"{c}{n:02d}.tif"


MERCED = register_source(SceneSpec(
    "merced", "UC Merced", ("UCMerced_LandUse", "Images"),
    ("agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral",
     "denseresidential", "forest", "freeway", "golfcourse", "harbor", "intersection",
     "mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway",
     "sparseresidential", "storagetanks", "tenniscourt"),
    (".tif", ".tiff"), (256, 256), (100,) * 21,
    naming=file_name,
    first=0, benchmark="msc",
    # Some real UC Merced images are not 256×256 (44 of 2,100); sizes seen include these.
    odd_sizes=((256, 249), (247, 247), (256, 253), (256, 252), (255, 256), (256, 254),
               (238, 256), (256, 244)),
))
