"""``fairgrad``: FairGrad (Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024),
as LibMTL's ``FairGrad`` and the authors' code (github.com/OptMN-Lab/fairgrad) compute it.

The weights w ≥ 0 solve G w = w^(−1/α) (G the Gram matrix of the task gradients, α-fairness
with ``alpha`` 1, the default of LibMTL and the authors), found as they do with
``scipy.optimize.least_squares`` from w = 1/T with bounds [0, ∞); the loss is Σ_t w_t L_t, so
task-specific parameters get w_t times their task's gradient, as in the authors' code. AMP: the
Gram matrix is that of the unscaled gradients (the scaled one divided by the loss scale²), so
w does not depend on the scale. No shared-representation mode (LibMTL refuses it too).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import least_squares

from rsbench.training.weighting.base import (
    GradientWeighting,
    gram,
    register_weighting,
)


def fairgrad_weights(G: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """(T,) w ≥ 0 with G w ≈ w^(−1/α), by the authors' bounded least squares from 1/T."""
    A = G.double().cpu().numpy()
    t = A.shape[0]
    res = least_squares(lambda x: A @ x - np.power(1 / x, 1 / alpha), np.ones(t) / t,
                        bounds=(0, np.inf))
    return torch.as_tensor(res.x, dtype=torch.float64)


@register_weighting("fairgrad")
class FairGrad(GradientWeighting):
    """α-fair task weights from the Gram matrix, applied to the losses. DDP: each task's shared
    gradient is averaged over processes before the (deterministic) solve; the weighted loss's
    backward goes through DDP's reducer."""

    rep_grad_supported = False

    def __init__(self, task_names, task_types, alpha: float = 1.0, rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.alpha = float(alpha)

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        w = fairgrad_weights(gram(grads) / self._loss_scale ** 2, self.alpha)
        self._record(w)
        return w

    def backward(self, losses, shared_params, scaler, extra=None) -> None:
        # after an AMP overflow any weights do: the gradients stay non-finite, the scaler skips
        self._weighted_loss_backward(
            losses, shared_params, scaler, extra,
            lambda grads, L: [1.0] * len(L) if grads is None
            else self.coefficients(grads, L).tolist())
