"""``cagrad``: conflict-averse gradient descent (Liu et al., NeurIPS 2021, Algorithm 1).

With g_0 the mean of the task gradients and G their Gram matrix, find the simplex weights
``w* = argmin_w  g_w·g_0 + c ||g_0|| ||g_w||`` (g_w = Σ w_t g_t), then update with
``(g_0 + c ||g_0|| / ||g_w*|| · g_w*) / (1 + c²)`` (the authors' code, ``rescale=1``);
c = 0.5 by default. The small problem over w is solved with SciPy's SLSQP on the Gram matrix
divided by ||g_0||², which leaves w* unchanged and makes it independent of the AMP loss scale.
Note the update is a mean, not a sum, of task gradients (as in the paper). The update is
Σ_t c_t g_t with c_t = (1/n + λ w*_t) / (1 + c²), which gives the shared-representation mode
(``rep_grad``; LibMTL has none for CAGrad); the recorded weights are w*.
"""

from __future__ import annotations

import numpy as np
import torch

from rsbench.training.weighting.base import GradientWeighting, gram, register_weighting


@register_weighting("cagrad")
class CAGrad(GradientWeighting):
    """Conflict-averse direction. DDP: each task's shared-parameter gradient is averaged over
    processes before the (deterministic) solve; task-specific gradients by DDP's reducer."""

    def __init__(self, task_names, task_types, c: float = 0.5, rescale: int = 1,
                 rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.c = float(c)
        self.rescale = int(rescale)

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        G = gram(grads)
        n = G.shape[0]
        g0_norm = G.sum().clamp_min(0).sqrt() / n  # ||g_0||, g_0 = mean of the g_t
        mean = torch.full((n,), 1.0 / n, dtype=G.dtype, device=G.device)
        if self.c == 0 or not torch.isfinite(g0_norm) or g0_norm == 0:
            self._record(mean)
            return mean
        from scipy.optimize import minimize  # imported here: only this method needs it

        A = (G / g0_norm ** 2).cpu().numpy()
        b = A.mean(1)  # g_t · g_0 / ||g_0||², i.e. (A @ 1/n)

        def objective(w: np.ndarray) -> float:
            return float(w @ b + self.c * np.sqrt(max(w @ A @ w, 0.0) + 1e-12))

        res = minimize(objective, np.full(n, 1.0 / n), bounds=[(0.0, 1.0)] * n,
                       constraints={"type": "eq", "fun": lambda w: w.sum() - 1.0},
                       method="SLSQP")
        w = torch.as_tensor(np.clip(res.x, 0.0, None), dtype=G.dtype, device=G.device)
        self._record(w)
        gw_norm = (w @ G @ w).clamp_min(0).sqrt()
        lam = self.c * g0_norm / gw_norm.clamp_min(1e-20)
        out = mean + lam * w
        if self.rescale == 1:
            out = out / (1 + self.c ** 2)
        elif self.rescale == 2:
            out = out / (1 + self.c)
        return out
