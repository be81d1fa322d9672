"""Test metrics, accumulated on the device as confusion matrices (summed across DDP ranks).

Scene classification: overall accuracy (OA), per-class accuracy, confusion matrix.
Segmentation: pixel accuracy (PA) and mean IoU over C+1 classes, the unknown class 0 included,
as the MTLN paper defines them (Section IV-A-4), on every pixel of the test images; beside it,
``miou_per_image``, the per-image average that MTAN's code computed before Nov 2020 (issue 15).
Every meter keeps its whole state in one tensor ``state`` so DDP can sum it with one all-reduce.
A metric of a new kind is one class here plus one line in ``METRICS`` (or a dotted path in the
benchmark config).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rsbench.plots.confusion import plot_confusion


def overall_accuracy(cm: np.ndarray) -> float:
    """Correct / all, from a confusion matrix (rows = truth, columns = prediction)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else math.nan


pixel_accuracy = overall_accuracy  # PA = sum_i p_ii / sum_ij p_ij, the same formula on pixels


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of every class (NaN for a class without samples)."""
    rows = cm.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.diag(cm) / rows, np.nan)


def per_class_iou(cm: np.ndarray) -> np.ndarray:
    """p_ii / (sum_j p_ij + sum_j p_ji - p_ii) per class (NaN if absent from truth and output)."""
    diag = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=1) + cm.sum(axis=0) - diag
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, diag / denom, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """Mean IoU over the classes of ``cm`` (all C+1, class 0 = unknown included).

    A class that appears neither in the truth nor in the prediction has no defined IoU and is
    left out of the mean (it cannot occur on a real test set, where every class is present).
    """
    iou = per_class_iou(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else math.nan


def _confusion(pred: torch.Tensor, target: torch.Tensor, n: int) -> torch.Tensor:
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    ok = (target >= 0) & (target < n)
    return torch.bincount(target[ok] * n + pred[ok], minlength=n * n).view(n, n)


class ClassificationMeter:
    """Confusion matrix of a classification task; OA, mean class accuracy, per class."""

    primary = "oa"

    def __init__(self, classes: Sequence[str], device: torch.device | str = "cpu", **_):
        self.classes = list(classes)
        self.state = torch.zeros(len(self.classes), len(self.classes), dtype=torch.int64,
                                 device=device)

    @torch.no_grad()
    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self.state += _confusion(output.argmax(1), target, len(self.classes))

    def compute(self) -> dict:
        cm = self.state.cpu().numpy()
        acc = per_class_accuracy(cm)
        return {"oa": overall_accuracy(cm),
                "mean_class_accuracy": float(np.nanmean(acc)) if np.isfinite(acc).any()
                else math.nan,
                "per_class_accuracy": dict(zip(self.classes, _floats(acc))),
                "samples": int(cm.sum()),
                "confusion": cm.tolist()}

    def plot(self, path: Path, title: str) -> None:
        plot_confusion(self.state.cpu().numpy(), self.classes, path, title)


def per_image_miou(pred: torch.Tensor, target: torch.Tensor, n: int) -> torch.Tensor:
    """Mean IoU of each image (shape ``(B,)``) over the classes present in its label or prediction.

    MTAN's segmentation metric before its Nov 2020 change (the design MTLN follows): per image,
    IoU of every class that occurs in the image's label or prediction, averaged over those classes;
    pixels whose label is outside ``[0, n)`` are not counted. An image without any counted pixel
    is NaN (left out of the mean over images).
    """
    b = pred.shape[0]
    pred, target = pred.reshape(b, -1).long(), target.reshape(b, -1).long()
    ok = (target >= 0) & (target < n)
    img = torch.arange(b, device=pred.device).unsqueeze(1).expand_as(pred)
    idx = (img * n * n + target * n + pred)[ok]
    cm = torch.bincount(idx, minlength=b * n * n).view(b, n, n).double()
    diag = cm.diagonal(dim1=1, dim2=2)
    union = cm.sum(2) + cm.sum(1) - diag
    present = union > 0
    iou = torch.where(present, diag / union.clamp(min=1), 0.0)
    return iou.sum(1) / present.sum(1)  # 0/0 = NaN for an image without counted pixels


class SegmentationMeter(ClassificationMeter):
    """Pixel confusion matrix over C+1 classes (0 = unlabelled/unknown); PA, mIoU (dataset-level,
    the paper's formula) and mIoU per image (MTAN's old code), from one pass.

    ``state`` holds the flattened confusion matrix followed by (sum of per-image mIoU, images
    scored), in float64 so that DDP sums it with one all-reduce (counts stay exact below 2^53).
    """

    primary = "miou"

    def __init__(self, classes: Sequence[str], device: torch.device | str = "cpu", **_):
        self.classes = list(classes)
        n = len(self.classes)
        self.state = torch.zeros(n * n + 2, dtype=torch.float64, device=device)

    def _cm(self) -> np.ndarray:
        n = len(self.classes)
        return self.state[: n * n].view(n, n).cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        n = len(self.classes)
        pred = output.argmax(1)
        per = per_image_miou(pred, target, n)
        scored = torch.isfinite(per)
        self.state[: n * n] += _confusion(pred, target, n).view(-1).double()
        self.state[n * n] += per[scored].sum()
        self.state[n * n + 1] += scored.sum()

    def compute(self) -> dict:
        cm = self._cm()
        iou = per_class_iou(cm)
        total, images = self.state[-2:].tolist()
        return {"pa": pixel_accuracy(cm), "miou": mean_iou(cm),
                "miou_per_image": total / images if images else math.nan,
                "images": int(images),
                "per_class_iou": dict(zip(self.classes, _floats(iou))),
                "per_class_accuracy": dict(zip(self.classes, _floats(per_class_accuracy(cm)))),
                "pixels": int(cm.sum()),
                "confusion": cm.tolist()}

    def plot(self, path: Path, title: str) -> None:
        plot_confusion(self._cm(), self.classes, path, title)


class RegressionMeter:
    """RMSE, MAE and R² per output, from running sums (n, Σe², Σ|e|, Σy, Σy²)."""

    primary = "rmse"

    def __init__(self, classes: Sequence[str] = (), device: torch.device | str = "cpu",
                 num_outputs: int = 1, **_):
        self.names = list(classes) or [f"y{i}" for i in range(num_outputs)]
        self.state = torch.zeros(5, len(self.names), dtype=torch.float64, device=device)

    @torch.no_grad()
    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        k = len(self.names)
        out = output.reshape(-1, k).double()
        y = target.reshape(-1, k).double()
        ok = torch.isfinite(y)
        e = torch.where(ok, out - y, 0)
        y0 = torch.where(ok, y, 0)
        self.state += torch.stack([ok.sum(0).double(), (e * e).sum(0), e.abs().sum(0),
                                   y0.sum(0), (y0 * y0).sum(0)])

    def compute(self) -> dict:
        n, se, ae, sy, syy = self.state.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            var = syy - sy * sy / n
            r2 = 1 - se / var
            per = {name: {"rmse": float(np.sqrt(se[i] / n[i])), "mae": float(ae[i] / n[i]),
                          "r2": float(r2[i])} for i, name in enumerate(self.names)}
        return {"rmse": float(np.mean([v["rmse"] for v in per.values()])),
                "mae": float(np.mean([v["mae"] for v in per.values()])),
                "r2": float(np.mean([v["r2"] for v in per.values()])),
                "per_output": per}

    def plot(self, path: Path, title: str) -> None:  # no confusion matrix for regression
        return None


METRICS = {
    "classification": ClassificationMeter,
    "segmentation": SegmentationMeter,
    "regression": RegressionMeter,
}


def _floats(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in a]
