"""MATLAB ``.mat`` files as hyperspectral sources: :func:`mat_reader` names the variables.

MATLAB v4-v7 files are read with ``scipy.io.loadmat`` (scipy comes with scikit-learn). A v7.3
file is HDF5 underneath, which scipy does not read and rsbench does not depend on (h5py); it is
refused with the fix (save it again with ``save(..., '-v7')``). Every problem is one line
naming the file: not a MAT file, a missing variable (with the variables the file holds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from rsbench.datasets.sources.hsi import HsiScene
from rsbench.errors import InputError, unreadable

V73 = b"MATLAB 7.3 MAT-file"


def read_mat(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The variables ``names`` of MAT file ``path`` as arrays (one line naming any problem)."""
    import scipy.io

    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError as exc:
        raise unreadable(path, exc, "download it again", "as a MAT file") from None
    if head.startswith(V73):
        raise InputError(f"{path} is a MATLAB v7.3 (HDF5) file, which rsbench does not read; "
                         "save it again in MATLAB with save(FILE, VARIABLES..., '-v7')")
    if not head.startswith(b"MATLAB"):
        raise InputError(f"{path} is not a MATLAB .mat file (it does not start with its "
                         "'MATLAB ... MAT-file' header); give the .mat file")
    try:
        held = [w[0] for w in scipy.io.whosmat(path)]
        missing = [n for n in names if n not in held]
        if missing:
            raise InputError(f"{path} has no variable {', '.join(missing)} (it holds "
                             f"{', '.join(held) or 'none'}); give the file this source "
                             "describes, or name its variables in the source's mat_reader")
        data = scipy.io.loadmat(path, variable_names=names)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - scipy raises many kinds for a damaged file
        raise unreadable(path, exc, "the file is damaged or truncated: download it again",
                         "as a MAT file") from None
    return {n: np.asarray(data[n]) for n in names}


def mat_reader(image: str, labels: Mapping[str, str]) -> Callable[[Path], HsiScene]:
    """A reader of MAT files holding the image in variable ``image`` (H×W×B) and each target's
    labels in ``labels[target]`` (a 2-D array of class codes)."""

    def read(path: Path) -> HsiScene:
        arrays = read_mat(path, [image, *labels.values()])
        return HsiScene(arrays[image], {t: arrays[k] for t, k in labels.items()},
                        keys={"image": image, **labels})

    return read
