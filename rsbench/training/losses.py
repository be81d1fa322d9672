"""Per-task losses by name (the benchmark config picks one per task type or task).

Cross-entropy is the MTLN paper's eq. 6 (scenes) and eq. 7 (pixel-wise, every pixel including
class 0 = unknown, unless the task sets ``ignore_index``). A custom loss is a dotted path in the
config to a factory ``factory(**options) -> loss(output, target)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from rsbench.training.config import resolve

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(ignore_index: int | None = None, label_smoothing: float = 0.0,
                  **_: Any) -> Loss:
    ii = -100 if ignore_index is None else int(ignore_index)

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target.long(), ignore_index=ii,
                               label_smoothing=label_smoothing)
    return loss


def _finite_targets_only(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Loss:
    """A regression loss over the samples whose target is finite (NaN = no label)."""
    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.reshape(output.shape).float()
        ok = torch.isfinite(target)
        return fn(output.float()[ok], target[ok])
    return loss


def mse(**_: Any) -> Loss:
    return _finite_targets_only(F.mse_loss)


def l1(**_: Any) -> Loss:
    return _finite_targets_only(F.l1_loss)


LOSSES: dict[str, Callable[..., Loss]] = {"cross_entropy": cross_entropy, "mse": mse, "l1": l1}


def make_loss(settings: Mapping[str, Any], spec: Mapping[str, Any]) -> Loss:
    """The loss of one task from its settings (``loss``, ``loss_options``) and manifest spec."""
    kind = settings.get("loss", "cross_entropy")
    factory = LOSSES[kind] if kind in LOSSES else resolve(kind)
    options = dict(settings.get("loss_options", {}))
    if "ignore_index" not in options and settings.get("use_ignore_index", False):
        options["ignore_index"] = spec.get("ignore_index")
    if "spec" in inspect.signature(factory).parameters:  # e.g. manifest class weights
        options.setdefault("spec", spec)
    return factory(**options)
