"""Readers for the public scene-classification downloads registered in
``rsbench/datasets/sources/`` (UC Merced, AID, NWPU-RESISC45, PatternNet, EuroSAT RGB), in
exactly the layouts their archives unpack to.

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

from rsbench.datasets.sources import SCENE_SOURCES, SceneSpec, spec
from rsbench.datasets.sources.base import is_utf8, shown_path
from rsbench.errors import InputError

SPECS = SCENE_SOURCES  # the registry: rsbench/datasets/sources/, one file per source

IMAGE_SUFFIXES = {".tif", ".tiff", ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".jp2"}
STRAY_NAMES = {"thumbs.db", "desktop.ini", "icon\r"}
STRAY_SUFFIXES = {".txt", ".md", ".pdf", ".csv", ".json", ".xml", ".html", ".htm", ".ini", ".db",
                  ".py", ".m", ".mat", ".zip", ".rar", ".7z", ".log"}
STRAY_DIRS = {"__macosx", "@eadir"}


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
    not_utf8: list[Path] = []
    for label, name in enumerate(s.classes):
        folder = found[name]
        files = []
        for p in folder.iterdir():
            if p.is_dir() or is_stray_file(p):
                continue
            if not is_utf8(p.name):
                not_utf8.append(p)
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
    if not_utf8:
        raise InputError(
            f"{shown_path(not_utf8[0])} has a file name that is not UTF-8 ({len(not_utf8)} such "
            f"file(s) in the {s.title} class folders; skipping them would change the published "
            "dataset); rename them to UTF-8, e.g. "
            f"`convmv -f gbk -t utf-8 -r --notest {class_root}`, or unzip the download again "
            "with the right `unzip -O <encoding>`")
    return SceneSource(s, class_root, images)
