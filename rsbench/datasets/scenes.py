"""Readers for the public scene-classification downloads: UC Merced, AID, NWPU-RESISC45,
PatternNet and EuroSAT (RGB), in exactly the layouts their archives unpack to.

Each reader finds the folder that holds the class folders, whether the user points at it, at
the unpacked top folder or at its parent; it ignores stray files (``.DS_Store``, ``Thumbs.db``,
readme files) and refuses, with one sentence naming what was found and what was expected, an
unknown or missing class folder, an empty class, a file of the wrong type, or a folder that
holds another dataset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rsbench.errors import InputError, UsageError


@dataclass(frozen=True)
class SceneSpec:
    """What one public scene dataset looks like on disk."""

    key: str  # rsbench name: task name and CLI value
    title: str  # name people use
    top: tuple[str, ...]  # folder path from the unpacked top folder to the class folders
    classes: tuple[str, ...]  # class folder names, sorted as published
    ext: tuple[str, ...]  # accepted image file suffixes (lower case)
    size: tuple[int, int]  # nominal (rows, cols)
    counts: tuple[int, ...]  # published images per class, in ``classes`` order

    def file_name(self, class_name: str, n: int) -> str:
        """The published file name of image ``n`` of ``class_name`` (see the dataset reference)."""
        if self.key == "merced":
            return f"{class_name}{n:02d}.tif"  # agricultural00.tif .. agricultural99.tif
        if self.key == "aid":
            return f"{class_name.lower()}_{n}.jpg"  # airport_1.jpg ..
        if self.key == "nwpu":
            return f"{class_name}_{n:03d}.jpg"  # airplane_001.jpg .. airplane_700.jpg
        if self.key == "patternnet":
            return f"{class_name}{n:03d}.jpg"  # airplane001.jpg .. airplane800.jpg
        if self.key == "eurosat":
            return f"{class_name}_{n}.jpg"  # AnnualCrop_1.jpg ..
        raise ValueError(self.key)

    def first_number(self) -> int:
        """Number of the first image of a class (Merced counts from 00, the others from 1)."""
        return 0 if self.key == "merced" else 1

    @property
    def layout(self) -> str:
        cls = self.classes[0]
        return "/".join((*self.top, "<class>", self.file_name(cls, self.first_number())
                         .replace(cls, "<class>", 1)))


MERCED = SceneSpec(
    "merced", "UC Merced", ("UCMerced_LandUse", "Images"),
    ("agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral",
     "denseresidential", "forest", "freeway", "golfcourse", "harbor", "intersection",
     "mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway",
     "sparseresidential", "storagetanks", "tenniscourt"),
    (".tif", ".tiff"), (256, 256), (100,) * 21,
)
AID = SceneSpec(
    "aid", "AID", ("AID",),
    ("Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
     "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow",
     "MediumResidential", "Mountain", "Park", "Parking", "Playground", "Pond", "Port",
     "RailwayStation", "Resort", "River", "School", "SparseResidential", "Square", "Stadium",
     "StorageTanks", "Viaduct"),
    (".jpg", ".jpeg"), (600, 600),
    (360, 310, 220, 400, 360, 260, 240, 350, 410, 300, 370, 250, 390, 280, 290, 340, 350, 390,
     370, 420, 380, 260, 290, 410, 300, 300, 330, 290, 360, 420),
)
NWPU = SceneSpec(
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
)
PATTERNNET = SceneSpec(
    "patternnet", "PatternNet", ("PatternNet", "images"),
    ("airplane", "baseball_field", "basketball_court", "beach", "bridge", "cemetery",
     "chaparral", "christmas_tree_farm", "closed_road", "coastal_mansion", "crosswalk",
     "dense_residential", "ferry_terminal", "football_field", "forest", "freeway", "golf_course",
     "harbor", "intersection", "mobile_home_park", "nursing_home", "oil_gas_field", "oil_well",
     "overpass", "parking_lot", "parking_space", "railway", "river", "runway", "runway_marking",
     "shipping_yard", "solar_panel", "sparse_residential", "storage_tank", "swimming_pool",
     "tennis_court", "transformer_station", "wastewater_treatment_plant"),
    (".jpg", ".jpeg"), (256, 256), (800,) * 38,
)
EUROSAT = SceneSpec(
    "eurosat", "EuroSAT (RGB)", ("2750",),
    ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
     "PermanentCrop", "Residential", "River", "SeaLake"),
    (".jpg", ".jpeg"), (64, 64),
    (3000, 3000, 3000, 2500, 2500, 2000, 2500, 3000, 2500, 3000),
)

SPECS: dict[str, SceneSpec] = {s.key: s for s in (MERCED, AID, NWPU, PATTERNNET, EUROSAT)}

IMAGE_SUFFIXES = {".tif", ".tiff", ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".jp2"}
STRAY_NAMES = {"thumbs.db", "desktop.ini", "icon\r"}
STRAY_SUFFIXES = {".txt", ".md", ".pdf", ".csv", ".json", ".xml", ".html", ".htm", ".ini", ".db",
                  ".py", ".m", ".mat", ".zip", ".rar", ".7z", ".log"}
STRAY_DIRS = {"__macosx", "@eadir"}


def spec(key: str) -> SceneSpec:
    """The spec of dataset ``key`` (merced, aid, nwpu, patternnet, eurosat)."""
    if key not in SPECS:
        raise UsageError(f"unknown scene dataset {key!r}; choose one of {', '.join(SPECS)}")
    return SPECS[key]


def norm(name: str) -> str:
    """Folder-name key that ignores case, spaces, dashes and underscores."""
    return re.sub(r"[\s_\-]+", "", name).lower()


def is_stray_file(path: Path) -> bool:
    """Files that unpacked archives carry besides images (hidden files, readmes, notes)."""
    name = path.name.lower()
    return (name.startswith(".") or name in STRAY_NAMES or name.startswith("readme")
            or name.startswith("license") or path.suffix.lower() in STRAY_SUFFIXES)


def is_stray_dir(path: Path) -> bool:
    return path.name.startswith(".") or path.name.lower() in STRAY_DIRS


def natural_key(name: str) -> list:
    """Sort key that puts ``x_2`` before ``x_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class SceneImage:
    """One image of a source dataset."""

    path: Path
    class_name: str  # the published class folder name
    label: int  # index into the spec's class list


@dataclass
class SceneSource:
    """A located source dataset: the folder holding its class folders, and every image."""

    spec: SceneSpec
    root: Path  # the folder whose subfolders are the classes
    images: list[SceneImage]

    def by_class(self) -> dict[str, list[SceneImage]]:
        out: dict[str, list[SceneImage]] = {c: [] for c in self.spec.classes}
        for im in self.images:
            out[im.class_name].append(im)
        return out


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not is_stray_dir(p))
    except PermissionError:
        raise InputError(f"{folder} cannot be read (permission denied); fix its permissions") \
            from None


def _class_share(subs: list[str], s: SceneSpec) -> tuple[float, int]:
    """(share, hits): how well subfolder names ``subs`` match the class folders of ``s``.

    share = matching subfolders / max(classes of ``s``, subfolders), so both missing classes
    and foreign folders lower it.
    """
    want = {norm(c) for c in s.classes}
    hits = sum(1 for n in subs if norm(n) in want)
    return hits / max(len(s.classes), len(subs), 1), hits


def _tree(root: Path, depth: int = 3) -> dict[Path, list[str]]:
    """Subfolder names of ``root`` and of its folders ``depth - 1`` levels down, breadth first."""
    out: dict[Path, list[str]] = {}
    level = [root]
    for _ in range(depth):
        nxt = []
        for f in level:
            subs = _subdirs(f)
            out[f] = [p.name for p in subs]
            nxt.extend(subs)
        level = nxt
        if len(out) > 5000:
            break
    return out


def _matches(root: Path) -> list[tuple[float, str, Path]]:
    """(share, dataset key, folder) for every folder under ``root`` holding 2+ class folders
    of a known scene dataset, best first."""
    out = []
    for folder, subs in _tree(root).items():
        for other in SPECS.values():
            share, hits = _class_share(subs, other)
            if hits >= 2:
                out.append((share, other.key, folder))
    return sorted(out, key=lambda m: -m[0])


def find_class_root(root: str | Path, s: SceneSpec, option: str | None = None) -> Path:
    """The folder under ``root`` whose subfolders are the class folders of dataset ``s``.

    The folder is the best match among ``root`` and its subfolders (two levels down, so a
    parent holding several datasets works too); it must hold at least half of the class
    folders and match ``s`` at least as well as any other scene dataset, so an AID folder
    given as ``--merced`` is named as AID.
    """
    option = option or f"--{s.key}"
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"{option} {root} does not exist; point it at the unpacked {s.title} "
                         f"folder ({s.layout})")
    if not root.is_dir():
        raise InputError(f"{option} {root} is a file; point it at the unpacked {s.title} folder "
                         f"({s.layout}), not at an archive or image")
    matches = _matches(root)
    for share, key, folder in matches:
        if key == s.key and share >= 0.5:
            rival = max((m[0] for m in matches if m[2] == folder and m[1] != key), default=0)
            if share >= rival:
                return folder.absolute()  # manifests and resumes must not depend on the cwd
    if matches and matches[0][0] >= 0.5:
        _, key, folder = matches[0]
        other = SPECS[key].title
        raise InputError(f"{option} {root} holds {other} ({folder}), not {s.title}; give the "
                         f"{s.title} folder ({s.layout}), or use the option for {other}")
    found = ", ".join(p.name for p in _subdirs(root)[:8]) or "no folders"
    raise InputError(f"{option} {root} does not look like {s.title}: expected the layout "
                     f"{s.layout} with {len(s.classes)} class folders such as "
                     f"{', '.join(s.classes[:3])}; found {found}")


def read_scene_dataset(root: str | Path, key: str, option: str | None = None) -> SceneSource:
    """Locate dataset ``key`` under ``root`` and list its images, class by class, naturally sorted.

    Raises :class:`InputError` for an unknown or missing class folder, an empty class, or an
    image file of a type the dataset does not use.
    """
    s = spec(key)
    option = option or f"--{s.key}"
    class_root = find_class_root(root, s, option)
    by_norm = {norm(c): c for c in s.classes}
    found: dict[str, Path] = {}
    for d in _subdirs(class_root):
        name = by_norm.get(norm(d.name))
        if name is None:
            raise InputError(
                f"{d} is not one of the {len(s.classes)} published {s.title} class folders "
                f"({', '.join(s.classes[:4])}, ...): rename or remove it")
        if name in found:
            raise InputError(f"{class_root} holds class {name!r} twice ({found[name].name} and "
                             f"{d.name}); keep one")
        found[name] = d
    missing = [c for c in s.classes if c not in found]
    if missing:
        raise InputError(
            f"{class_root} lacks {len(missing)} of the {len(s.classes)} {s.title} class folders "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); "
            "unpack the full dataset")
    images: list[SceneImage] = []
    for label, name in enumerate(s.classes):
        folder = found[name]
        files = []
        for p in folder.iterdir():
            if p.is_dir() or is_stray_file(p):
                continue
            suffix = p.suffix.lower()
            if suffix in s.ext:
                files.append(p)
            elif suffix in IMAGE_SUFFIXES:
                hint = (" (EuroSAT's multispectral .tif release is not supported; use the RGB "
                        "release, EuroSAT.zip)" if s.key == "eurosat" and suffix == ".tif" else "")
                raise InputError(
                    f"{p} is a {suffix} file, but {s.title} images are "
                    f"{' / '.join(s.ext)}{hint}; remove it or give the original download")
        if not files:
            raise InputError(f"class folder {folder} holds no {s.ext[0]} images; unpack the full "
                             f"{s.title} dataset")
        files.sort(key=lambda p: natural_key(p.name))
        images.extend(SceneImage(p, name, label) for p in files)
    return SceneSource(s, class_root, images)
