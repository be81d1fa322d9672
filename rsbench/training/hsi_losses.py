"""Losses of the HSI paper (Sections III-F, IV-A): cost-sensitive cross-entropy, focal loss,
MAE/MSE, with ignore labels excluded.

Class weights are the inverse median frequency (eq. 12): ``w_c = median(f) / f_c``. Focal loss
(eq. 13) is ``-α w_y (1 - p_y)^γ log p_y`` averaged like PyTorch's weighted cross-entropy
(divided by the sum of the weights of the counted samples), so γ = 0, α = 1 is exactly the
weighted cross-entropy. Factories follow the runner's contract
``factory(**options) -> loss(output, target)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rsbench.errors import UsageError

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def inverse_median_frequency(counts: Sequence[float] | Mapping[str, float]) -> np.ndarray:
    """Per-class weights ``median(f) / f_c`` over the classes present; absent classes get 0."""
    c = np.asarray(list(counts.values()) if isinstance(counts, Mapping) else counts, float)
    present = c > 0
    if not present.any():
        raise UsageError("cannot compute class weights: no class has any training sample")
    freq = c / c.sum()
    med = np.median(freq[present])
    out = np.zeros_like(freq)
    out[present] = med / freq[present]
    return out


def _check_shapes(pixels: int, target: torch.Tensor) -> None:
    if target.numel() != pixels:
        raise UsageError(f"model output has {pixels} predictions per batch but the targets have "
                         f"{target.numel()}; patch classifiers (mottus-3dcnn, pham-cnn, ...) train "
                         "on benchmark taiga-centre (centre-pixel targets), dense models with "
                         "per_pixel: true on taiga, taiga-cs and taiga-focal-nw")


def _flatten_logits(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    """(N, K) logits and (N,) labels from centre (B, K) or per-pixel (B, K, H, W) outputs."""
    _check_shapes(output.numel() // max(output.shape[1], 1) if output.ndim > 1
                  else output.numel(), target)
    if output.ndim > 2:
        output = output.movedim(1, -1).reshape(-1, output.shape[1])
    return output.float(), target.reshape(-1).long()


def focal_loss(output: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
               alpha: float | Sequence[float] | torch.Tensor | None = None,
               weight: torch.Tensor | Sequence[float] | None = None,
               ignore_index: int | None = None) -> torch.Tensor:
    """Focal loss ``-α_y w_y (1 - p_y)^γ log p_y``, mean over non-ignored samples (weighted).

    ``alpha`` is a scalar balance factor or one value per class; ``weight`` the class weights.
    Samples whose label is ``ignore_index`` or outside ``[0, K)`` are excluded.
    """
    logits, y = _flatten_logits(output, target)
    k = logits.shape[1]
    ok = (y >= 0) & (y < k)
    if ignore_index is not None:
        ok &= y != int(ignore_index)
    logits, y = logits[ok], y[ok]
    if y.numel() == 0:
        return output.sum() * 0.0
    logp = F.log_softmax(logits, dim=1).gather(1, y[:, None])[:, 0]
    loss = -logp
    if gamma:
        loss = (1 - logp.exp()).clamp_min(0).pow(gamma) * loss
    w = torch.ones_like(loss)
    if weight is not None:
        w = torch.as_tensor(weight, dtype=loss.dtype, device=loss.device)[y]
    if alpha is not None:
        a = torch.as_tensor(alpha, dtype=loss.dtype, device=loss.device)
        loss = loss * (a[y] if a.ndim else a)
    return (w * loss).sum() / w.sum().clamp_min(torch.finfo(loss.dtype).tiny)


def regression_loss(output: torch.Tensor, target: torch.Tensor, kind: str = "mae",
                    ignore_value: float | None = None) -> torch.Tensor:
    """MAE (the paper's eq. 22) or MSE over finite targets (NaN / ``ignore_value`` = no label)."""
    _check_shapes(output.numel(), target)
    target = target.reshape(output.shape).float()
    ok = torch.isfinite(target)
    if ignore_value is not None:
        ok &= target != float(ignore_value)
    if not ok.any():
        return output.sum() * 0.0
    diff = output.float()[ok] - target[ok]
    return diff.abs().mean() if kind == "mae" else diff.pow(2).mean()


# --------------------------------------------------------------------------------------------
# factories named in the benchmark config (the runner calls factory(**options))
# --------------------------------------------------------------------------------------------


def _weights(class_weights: Any, spec: Mapping[str, Any] | None) -> Any:
    """Explicit weights, or the manifest's ``class_weights`` of the task when ``True``."""
    if class_weights is True or class_weights == "manifest":
        if spec is None or "class_weights" not in spec:
            raise UsageError("class_weights=true needs the dataset's class weights; rebuild the "
                             "dataset with build-taiga, which stores them in the manifest")
        return list(spec["class_weights"])
    if class_weights in (None, False):
        return None
    return list(class_weights)


def hsi_classification(loss: str = "focal", gamma: float = 2.0, alpha: float | None = 0.25,
                       class_weights: Any = True, ignore_index: int | None = None,
                       spec: Mapping[str, Any] | None = None, **_: Any) -> Loss:
    """Classification loss by name: ``ce`` (plain or cost-sensitive) or ``focal``.

    The paper's variants (Table VI): cost-sensitive = ``ce`` + weights; focal without / with
    class weights = ``focal`` + ``class_weights`` false / true.
    """
    if loss not in ("ce", "focal"):
        raise UsageError(f"classification loss {loss!r} unknown; use ce or focal")
    weights = _weights(class_weights, spec)
    if ignore_index is None and spec is not None:
        ignore_index = spec.get("ignore_index")
    g = float(gamma) if loss == "focal" else 0.0
    a = alpha if loss == "focal" else None

    def fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(output, target, gamma=g, alpha=a, weight=weights,
                          ignore_index=ignore_index)
    return fn


def hsi_regression(loss: str = "mae", ignore_value: float | None = None, **_: Any) -> Loss:
    """Regression loss by name: ``mae`` (the paper's choice) or ``mse`` (the TAIGA baseline's)."""
    if loss not in ("mae", "mse"):
        raise UsageError(f"regression loss {loss!r} unknown; use mae or mse")

    def fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return regression_loss(output, target, loss, ignore_value)
    return fn
