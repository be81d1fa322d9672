"""``mgda``: MGDA-UB (Sener & Koltun, NeurIPS 2018): the min-norm point of the convex hull of the
task gradients, found with Frank-Wolfe (their Algorithm 2), gives the task weights α; the
update is Σ_t α_t g_t, a common descent direction.

Gradients are those of the shared parameters by default (the paper's exact MGDA), on every
benchmark. ``rep_grad=True`` gives the paper's upper bound (MGDA-UB) where the model has one
shared representation: the gradients w.r.t. it, summed over the batch as LibMTL does (so MSC's
per-task batches compare feature by feature). ``normalization`` ("none" by default, or "l2", "loss", "loss+") divides
each task's gradient before solving, as in the authors' code; α then weights the raw gradients.
The line search of each Frank-Wolfe step is exact on [0, 1] (the authors' code clips to
[0.001, 0.999]).
"""

from __future__ import annotations

import torch

from rsbench.errors import UsageError
from rsbench.training.weighting.base import GradientWeighting, gram, register_weighting

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


def min_norm_weights(gram: torch.Tensor, max_iter: int = 250, tol: float = 1e-5
                     ) -> torch.Tensor:
    """Simplex weights α minimising ||Σ α_t g_t||² given the Gram matrix G_ij = g_i · g_j."""
    n = gram.shape[0]
    G = gram.double()
    if n == 1:
        return G.new_ones(1)
    # start from the best pair (the two-task closed form), as Sener & Koltun do
    best, sol = None, None
    for i in range(n):
        for j in range(i + 1, n):
            gamma, cost = _line(G[i, i], G[i, j], G[j, j])
            if best is None or cost < best:
                best = cost
                sol = G.new_zeros(n)
                sol[i], sol[j] = gamma, 1 - gamma
    for _ in range(max_iter):
        t = int(torch.argmin(G @ sol))
        gamma, _ = _line(sol @ G @ sol, sol @ G[:, t], G[t, t])
        new = gamma * sol
        new[t] += 1 - gamma
        if (new - sol).abs().sum() < tol:
            return new
        sol = new
    return sol


def _line(v1v1, v1v2, v2v2) -> tuple[torch.Tensor, torch.Tensor]:
    """γ in [0, 1] minimising ||γ v1 + (1−γ) v2||², and that minimum."""
    denom = v1v1 + v2v2 - 2 * v1v2
    gamma = ((v2v2 - v1v2) / denom).clamp(0.0, 1.0) if denom > 0 else v1v1.new_tensor(1.0)
    cost = gamma ** 2 * v1v1 + 2 * gamma * (1 - gamma) * v1v2 + (1 - gamma) ** 2 * v2v2
    return gamma, cost


@register_weighting("mgda")
class MGDA(GradientWeighting):
    """Min-norm task weights. DDP: each task's shared-parameter gradient is averaged over
    processes before the (deterministic) solve; task-specific gradients by DDP's reducer."""

    def __init__(self, task_names, task_types, normalization: str = "none",
                 rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        if normalization not in NORMALIZATIONS:
            raise UsageError(f"weighting.normalization {normalization!r} is not one of "
                             f"{', '.join(NORMALIZATIONS)}")
        self.normalization = normalization

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        G = gram(grads)
        norms = G.diagonal().clamp_min(0).sqrt()
        scale = {"none": torch.ones_like(norms), "l2": norms,
                 "loss": losses.double().to(G.device),
                 "loss+": losses.double().to(G.device) * norms}[self.normalization]
        s = scale.clamp_min(1e-20)
        alpha = min_norm_weights(G / (s.unsqueeze(1) * s.unsqueeze(0)))
        self._record(alpha)
        return alpha
