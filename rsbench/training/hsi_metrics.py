"""Metrics of the HSI paper (Section IV-B), as streaming meters for the runner.

Categorical: OA (micro), mean class accuracy (macro), macro precision / recall / F1, one-vs-rest
ROC-AUC and the row-normalised confusion matrix. Continuous: RMSE, MAE, R² and Pearson r, in
normalised units and in physical units (``physical = scaled · (max − min) + min`` with the
manifest's statistics; RMSE and MAE scale by ``max − min``, R² and r do not change).

Each meter keeps all it needs in one summable tensor ``state`` (the runner all-reduces it under
DDP): a confusion matrix plus per-class histograms of the predicted probability (ROC-AUC from
histograms, exact up to ties within a bin of width 1/``bins``), or running sums for regression.
A bounded sample of (true, predicted) pairs is kept for the figures. Both report
``pixels_scored``: the labelled pixels counted (one per window under the centre-pixel protocol,
every owned labelled pixel under the per-pixel one; see ``rsbench.training.taiga``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

AUC_BINS = 2000
PLOT_SAMPLES = 20000


# --------------------------------------------------------------------------------------------
# pure functions on a confusion matrix / histograms (tested against scikit-learn)
# --------------------------------------------------------------------------------------------


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


def classification_scores(cm: np.ndarray) -> dict[str, Any]:
    """OA, mean class accuracy and macro precision/recall/F1 from a confusion matrix (rows =
    truth). Macro averages run over the classes seen in truth or prediction, a zero division
    counting as 0 (scikit-learn's ``zero_division=0``)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(1), cm.sum(0)
    seen = (support > 0) | (predicted > 0)
    precision, recall = _div(tp, predicted), _div(tp, support)
    f1 = _div(2 * precision * recall, precision + recall)
    total = cm.sum()
    return {
        "oa": float(tp.sum() / total) if total else float("nan"),
        "mean_class_accuracy": float(recall[support > 0].mean()) if (support > 0).any()
        else float("nan"),
        "precision": float(precision[seen].mean()) if seen.any() else float("nan"),
        "recall": float(recall[seen].mean()) if seen.any() else float("nan"),
        "f1": float(f1[seen].mean()) if seen.any() else float("nan"),
        "per_class": {"precision": precision, "recall": recall, "f1": f1, "support": support},
    }


def auc_from_histograms(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC-AUC from histograms of the scores of positives and negatives over the same bins:
    P(score⁺ > score⁻) + ½ P(tie), ties counted within a bin."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    neg_below = np.cumsum(neg) - neg
    return float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))


def normalised_confusion(cm: np.ndarray) -> np.ndarray:
    """Rows divided by the true-class totals (rows without samples stay 0)."""
    cm = np.asarray(cm, float)
    return _div(cm, cm.sum(1, keepdims=True))


def regression_scores(sums: np.ndarray, scale: float = 1.0) -> dict[str, float]:
    """RMSE, MAE, R², Pearson r from sums (n, Σe², Σ|e|, Σy, Σy², Σp, Σp², Σyp); RMSE and MAE
    multiplied by ``scale`` (the physical range), R² and r unit-free."""
    n, se, ae, sy, syy, sp, spp, syp = (float(v) for v in sums)
    if n == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "r2": float("nan"),
                "pearson": float("nan"), "n": 0}
    var_y = syy - sy * sy / n
    var_p = spp - sp * sp / n
    cov = syp - sy * sp / n
    r2 = 1 - se / var_y if var_y > 0 else float("nan")
    r = cov / np.sqrt(var_y * var_p) if var_y > 0 and var_p > 0 else float("nan")
    return {"rmse": float(np.sqrt(se / n)) * scale, "mae": ae / n * scale, "r2": float(r2),
            "pearson": float(r), "n": int(n)}


def to_physical(scaled: np.ndarray | float, spec: Mapping[str, Any]) -> np.ndarray:
    """Map min–max scaled values back to physical units with the task's manifest statistics."""
    lo, hi = physical_range(spec)
    return np.asarray(scaled, dtype=np.float64) * (hi - lo) + lo


def to_scaled(physical: np.ndarray | float, spec: Mapping[str, Any]) -> np.ndarray:
    """Inverse of :func:`to_physical`."""
    lo, hi = physical_range(spec)
    return (np.asarray(physical, dtype=np.float64) - lo) / (hi - lo)


def physical_range(spec: Mapping[str, Any] | None) -> tuple[float, float]:
    """(min, max) of a regression task's scaling from its manifest entry; (0, 1) if absent."""
    if not spec or spec.get("min") is None or spec.get("max") is None:
        return 0.0, 1.0
    return float(spec["min"]), float(spec["max"])


# --------------------------------------------------------------------------------------------
# meters (the runner's contract: cls(classes, device=, num_outputs=, spec=), update, compute)
# --------------------------------------------------------------------------------------------


class HsiClassificationMeter:
    """Confusion matrix + probability histograms; all six categorical metrics of Table II."""

    primary = "oa"

    def __init__(self, classes: Sequence[str], device: torch.device | str = "cpu",
                 spec: Mapping[str, Any] | None = None, bins: int = AUC_BINS, **_: Any):
        self.classes = list(classes)
        k = len(self.classes)
        self.k, self.bins = k, int(bins)
        ignore = (spec or {}).get("ignore_index")
        self.ignore = None if ignore is None else int(ignore)
        # [confusion k·k | positives k·bins | negatives k·bins]
        self.state = torch.zeros(k * k + 2 * k * self.bins, dtype=torch.float64, device=device)

    @torch.no_grad()
    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        k, bins = self.k, self.bins
        logits = output.movedim(1, -1).reshape(-1, k) if output.ndim > 2 else output
        y = target.reshape(-1).long().to(logits.device)
        ok = (y >= 0) & (y < k)
        if self.ignore is not None:
            ok &= y != self.ignore
        logits, y = logits[ok].float(), y[ok]
        if not y.numel():
            return
        prob = torch.softmax(logits, dim=1)
        pred = prob.argmax(1)
        cm = torch.bincount(y * k + pred, minlength=k * k).double()
        b = (prob * bins).long().clamp_(0, bins - 1)  # (n, k) bin of every class score
        positive = torch.nn.functional.one_hot(y, k).bool()
        cls_idx = torch.arange(k, device=y.device).expand_as(b)
        flat = cls_idx * bins + b
        pos = torch.bincount(flat[positive], minlength=k * bins).double()
        neg = torch.bincount(flat[~positive], minlength=k * bins).double()
        self.state += torch.cat([cm, pos, neg])

    def confusion(self) -> np.ndarray:
        return self.state[: self.k * self.k].view(self.k, self.k).cpu().numpy().astype(np.int64)

    def compute(self) -> dict[str, Any]:
        k, bins = self.k, self.bins
        cm = self.confusion()
        s = classification_scores(cm)
        hist = self.state[k * k:].view(2, k, bins).cpu().numpy()
        aucs = np.array([auc_from_histograms(hist[0, c], hist[1, c]) for c in range(k)])
        valid = np.isfinite(aucs)
        pc = s.pop("per_class")
        return {**s,
                "roc_auc": float(aucs[valid].mean()) if valid.any() else float("nan"),
                "per_class": {c: {"precision": float(pc["precision"][i]),
                                  "recall": float(pc["recall"][i]), "f1": float(pc["f1"][i]),
                                  "roc_auc": None if not valid[i] else float(aucs[i]),
                                  "support": int(pc["support"][i])}
                              for i, c in enumerate(self.classes)},
                "samples": int(cm.sum()),
                "pixels_scored": int(cm.sum()),
                "confusion": cm.tolist(),
                "confusion_normalised": normalised_confusion(cm).round(6).tolist()}

    def plot(self, path: Path, title: str) -> None:
        from rsbench.plots.confusion import plot_confusion

        plot_confusion(self.confusion(), self.classes, Path(path), title, cells="fractions")


class HsiRegressionMeter:
    """RMSE, MAE, R², Pearson r (normalised and physical units) plus figure samples."""

    primary = "rmse"

    def __init__(self, classes: Sequence[str] = (), device: torch.device | str = "cpu",
                 spec: Mapping[str, Any] | None = None, plot_samples: int = PLOT_SAMPLES,
                 **_: Any):
        self.spec = dict(spec or {})
        self.lo, self.hi = physical_range(self.spec)
        self.state = torch.zeros(8, dtype=torch.float64, device=device)
        self.limit = int(plot_samples)
        self.samples: list[np.ndarray] = []
        self._kept = 0

    @torch.no_grad()
    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        p = output.reshape(-1).double()
        y = target.reshape(-1).to(p.device).double()
        ok = torch.isfinite(y)
        p, y = p[ok], y[ok]
        if not y.numel():
            return
        e = p - y
        self.state += torch.stack([torch.tensor(float(y.numel()), dtype=torch.float64,
                                                device=p.device),
                                   (e * e).sum(), e.abs().sum(), y.sum(), (y * y).sum(),
                                   p.sum(), (p * p).sum(), (y * p).sum()])
        if self._kept < self.limit:
            take = min(self.limit - self._kept, y.numel())
            self.samples.append(torch.stack([y[:take], p[:take]], 1).cpu().numpy())
            self._kept += take

    def pairs(self) -> np.ndarray:
        """(n, 2) kept (true, predicted) pairs in normalised units."""
        return np.concatenate(self.samples) if self.samples else np.zeros((0, 2))

    def compute(self) -> dict[str, Any]:
        sums = self.state.cpu().numpy()
        norm = regression_scores(sums)
        phys = regression_scores(sums, scale=self.hi - self.lo)
        return {**norm, "pixels_scored": int(norm["n"]),
                "physical": {**phys, "unit": self.spec.get("unit", ""),
                                     "min": self.lo, "max": self.hi}}

    def plot(self, path: Path, title: str) -> None:
        from rsbench.plots.hsi_figures import plot_error_histogram, plot_scatter_marginals

        path = Path(path)
        task = path.stem.split("_", 1)[-1]
        pairs = self.pairs()
        if not len(pairs):
            return
        phys = to_physical(pairs, {"min": self.lo, "max": self.hi})
        unit = self.spec.get("unit", "")
        label = f"{task} [{unit}]" if unit else task
        plot_scatter_marginals(phys[:, 0], phys[:, 1], path.with_name(f"scatter_{task}.png"),
                               title, label)
        plot_error_histogram(np.abs(phys[:, 1] - phys[:, 0]),
                             path.with_name(f"error_hist_{task}.png"), title, label)
