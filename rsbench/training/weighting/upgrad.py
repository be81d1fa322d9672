"""``upgrad``: Unconflicting Projection of Gradients (Quinton & Rey, "Jacobian Descent for
Multi-Objective Optimization", 2024), as LibMTL's ``UPGrad`` and the authors' TorchJD compute it.

Each task gradient g_i is projected onto the dual cone of the task gradients (the vectors with
a non-negative inner product with every g_j) and the projections are averaged. On the Gram
matrix G (divided by its trace — the Frobenius normalisation, zero below ``norm_eps`` 1e-4 —
plus ``reg_eps`` 1e-4 · I, the defaults of LibMTL and TorchJD), projection i has weights v
solving min vᵀGv subject to v ≥ e_i / T (Proposition 1 of the paper); the update is Σ_t c_t g_t
with c = Σ_i v^(i). The authors solve each QP with quadprog; rsbench solves the same QP exactly
as the non-negative least squares min ‖Lᵀ(x + u)‖ (G = L Lᵀ, v = u + x, x ≥ 0) with
``scipy.optimize.nnls`` (no new dependency). The weights do not change when every gradient is
scaled, so AMP needs nothing; the update is that of the scaled gradients (unscaled by the
scaler). ``rep_grad=True`` is an rsbench extension (LibMTL refuses it): the same weights on the
representation's batch-summed gradients.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls

from rsbench.training.weighting.base import GradientWeighting, gram, register_weighting


def project_weights(G: np.ndarray, u: np.ndarray) -> np.ndarray:
    """argmin_v vᵀGv subject to v ≥ u, for a positive-definite G."""
    L = np.linalg.cholesky(G)
    x, _ = nnls(L.T, -L.T @ u)
    return u + x


def upgrad_weights(G: torch.Tensor, norm_eps: float = 1e-4, reg_eps: float = 1e-4
                   ) -> torch.Tensor:
    """(T,) UPGrad coefficients from the (T, T) Gram matrix of the task gradients."""
    A = G.double().cpu().numpy()
    t = A.shape[0]
    tr = np.trace(A)
    A = np.zeros_like(A) if tr < norm_eps else A / tr
    A = A + reg_eps * np.eye(t)
    W = np.stack([project_weights(A, np.eye(t)[i] / t) for i in range(t)])
    return torch.as_tensor(W.sum(0), dtype=torch.float64)


@register_weighting("upgrad")
class UPGrad(GradientWeighting):
    """Mean of the task gradients' projections onto the dual cone. DDP: each task's shared
    gradient is averaged over processes before the (deterministic) solve; task-specific
    gradients by DDP's reducer."""

    def __init__(self, task_names, task_types, norm_eps: float = 1e-4, reg_eps: float = 1e-4,
                 rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.norm_eps, self.reg_eps = float(norm_eps), float(reg_eps)

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        c = upgrad_weights(gram(grads), self.norm_eps, self.reg_eps)
        self._record(c)
        return c
