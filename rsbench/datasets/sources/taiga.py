"""TAIGA (Mõttus et al., IEEE TGRS 2022): file names, the 14 reference bands and their meaning.

The reference raster ``forestdata_stands`` (ENVI int32 BIP) holds 3 categorical variables, 10
continuous ones stored as integers (``*100`` in a name means stored ×100) and ``standID``
(0 = no stand). Category 0 means none/no data. Class codes and names are read from the header's
``band descriptions`` when present; the defaults below are those of the TAIGA code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rsbench.datasets.sources.envi import EnviRaster, band_descriptions, normalise_band_name
from rsbench.errors import InputError

CUBE_NAMES = ("20170615_reflectance_mosaic_128b", "20170615_reflectance_128b_mosaic")
STANDS_NAME = "forestdata_stands"
CATEGORICAL = ["fertility_class", "soil_class", "main_tree_species_class"]
# (variable, unit, storage factor), in the order of the reference raster
CONTINUOUS = [
    ("basal_area", "m2/ha", 100),
    ("mean_dbh", "cm", 100),
    ("stem_density", "1/ha", 1),
    ("mean_height", "m", 100),
    ("percentage_of_pine", "%", 1),
    ("percentage_of_spruce", "%", 1),
    ("percentage_of_birch", "%", 1),
    ("woody_biomass", "t/ha", 1),
    ("leaf_area_index", "", 100),
    ("effective_leaf_area_index", "", 100),
]
STAND_ID = "standID"
DEFAULT_VALUES = {
    "fertility_class": {"0": "None", "1": "Herb-rich forest", "2": "Herb-rich heath forest",
                        "3": "Mesic heath forest", "4": "Sub-xeric heath forest",
                        "5": "Xeric heath forest", "6": "Barren heath forest"},
    "soil_class": {"0": "None", "1": "Mineral", "2": "Organic"},
    "main_tree_species_class": {"0": "None", "1": "Scots pine", "2": "Norway spruce",
                                "3": "birch and other broadleaves"},
}


def band_name(var: str, unit: str, factor: int) -> str:
    """The reference raster's band name, e.g. ``basal_area*100_[m2/ha]``."""
    return var + (f"*{factor}" if factor != 1 else "") + (f"_[{unit}]" if unit else "")


BAND_NAMES = CATEGORICAL + [band_name(*c) for c in CONTINUOUS] + [STAND_ID]


def reference_band_descriptions() -> dict[str, dict]:
    """The ``band descriptions`` JSON the TAIGA code writes (type, values, unit, range)."""
    out: dict[str, dict] = {}
    for var in CATEGORICAL:
        out[var] = {"type": "categorical", "values": DEFAULT_VALUES[var], "name": var}
    for var, unit, factor in CONTINUOUS:
        name = band_name(var, unit, factor)
        out[name] = {"type": "continuous", "range": [0, 100 if "percentage" in var else None],
                     "unit": [1 / factor, unit], "name": name}
    out[STAND_ID] = {"type": "categorical", "values": {"0": "N/A"}, "name": STAND_ID}
    return out


@dataclass
class Variable:
    """One reference band: where it is, how to turn stored integers into physical values."""

    name: str  # rsbench task name (variable part of the band name)
    band: int  # band index in forestdata_stands
    band_name: str
    kind: str  # categorical | continuous
    scale: float = 1.0  # physical = stored * scale
    unit: str = ""
    values: dict[int, str] | None = None  # categorical: code -> class name


def find_taiga(root: str | os.PathLike) -> tuple[Path, Path]:
    """The headers of the reflectance cube and of ``forestdata_stands`` under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--taiga {root} is not a folder; give the folder holding the TAIGA "
                         "ENVI files")
    headers = [h for pat in ("*", "*/*", "*/*/*") for ext in (".hdr", ".HDR")
               for h in sorted(root.glob(pat + ext))]
    cube = [h for h in headers if any(h.stem.startswith(n) for n in CUBE_NAMES)]
    if not cube:
        cube = [h for h in headers if "reflectance" in h.stem.lower()]
    stands = [h for h in headers if h.stem.startswith(STANDS_NAME)]
    if not cube:
        raise InputError(f"{root} holds no TAIGA reflectance cube ({CUBE_NAMES[0]}.hdr); "
                         "give the folder of the TAIGA download")
    if not stands:
        raise InputError(f"{root} holds no {STANDS_NAME}.hdr; copy the TAIGA reference raster "
                         "into that folder")
    return cube[0], stands[0]


def read_variables(stands: EnviRaster) -> tuple[list[Variable], int]:
    """The 13 variables and the standID band of the reference raster, from its header."""
    names = stands.band_names
    if len(names) != stands.bands:
        raise InputError(f"{stands.header} has no 'band names' for its {stands.bands} bands; "
                         f"TAIGA's reference raster names them ({', '.join(BAND_NAMES[:3])}, ...)")
    desc = band_descriptions(stands)
    by_norm = {normalise_band_name(n): i for i, n in enumerate(names)}
    if STAND_ID.lower() not in by_norm:
        raise InputError(f"{stands.header} has no {STAND_ID} band; it is not TAIGA's "
                         f"{STANDS_NAME}")
    out = []
    for var in CATEGORICAL:
        if var not in by_norm:
            raise InputError(f"{stands.header} has no band {var}; bands are: {', '.join(names)}")
        i = by_norm[var]
        d = desc.get(names[i], {})
        values = d.get("values") or DEFAULT_VALUES[var]
        out.append(Variable(var, i, names[i], "categorical",
                            values={int(k): str(v) for k, v in values.items()}))
    for var, unit, factor in CONTINUOUS:
        if var not in by_norm:
            raise InputError(f"{stands.header} has no band {var}; bands are: {', '.join(names)}")
        i = by_norm[var]
        d = desc.get(names[i], {})
        scale, unit_h = 1.0 / factor, unit
        if isinstance(d.get("unit"), list) and len(d["unit"]) == 2:
            scale, unit_h = float(d["unit"][0]), str(d["unit"][1])
        elif "*" in names[i]:
            scale = 1.0 / float(names[i].split("*")[1].split("_")[0])
        out.append(Variable(var, i, names[i], "continuous", scale=scale, unit=unit_h))
    return out, by_norm[STAND_ID.lower()]
