"""``aligned-mtl``: Aligned-MTL (Senushkin et al., "Independent Component Alignment for
Multi-Task Learning", CVPR 2023, Algorithm 1), as the authors' ``ProcrustesSolver`` computes it.

With M = G Gᵀ the (T, T) Gram matrix of the task gradients and M = V Λ Vᵀ, keeping the
eigenvalues above ``max(λ) · T · eps(float32)`` (the authors' rank tolerance), the aligned
gradients are ``G_aligned = B G`` with ``B = √λ_min V Λ^{-1/2} Vᵀ`` (``scale_mode='min'``, the
authors' default: the smallest kept singular value sets the scale), and the update is their
sum, i.e. Σ_t c_t g_t with c = Bᵀ 1 (the authors' ``weights.sum(-1)``, LibMTL's
``B.sum(0)``; B is symmetric). Pre-set task weights w (the paper's Eq. 10) are all 1, as in the
authors' code and LibMTL; ``scale_mode`` "median" and "rmse" are the authors' other options.
Task-specific gradients are not rescaled (``scale_decoder_grad=False``, their default). The
eigendecomposition is ``torch.linalg.eigh`` in float64 (the authors: ``torch.symeig``).
``rep_grad=True`` is the authors' Aligned-MTL-UB (gradients of the shared representation).
"""

from __future__ import annotations

import torch

from rsbench.errors import UsageError
from rsbench.training.weighting.base import GradientWeighting, gram, register_weighting

SCALE_MODES = ("min", "median", "rmse")


def aligned_weights(gram: torch.Tensor, scale_mode: str = "min") -> torch.Tensor:
    """The Procrustes solver's (T,) task coefficients from the Gram matrix."""
    M = gram.double()
    lam, V = torch.linalg.eigh(M)
    tol = lam.max() * max(M.shape) * torch.finfo(torch.float32).eps
    keep = lam > tol
    if not keep.any():
        return M.new_zeros(M.shape[0])
    order = torch.argsort(lam, descending=True)
    order = order[keep[order]]
    lam, V = lam[order], V[:, order]
    scale = {"min": lam[-1], "median": torch.median(lam), "rmse": lam.mean()}[scale_mode]
    B = scale.sqrt() * (V / lam.sqrt()) @ V.T
    return B.sum(0)


@register_weighting("aligned-mtl")
class AlignedMTL(GradientWeighting):
    """Gradients aligned to an orthogonal, equally scaled system. DDP: each task's shared
    gradient is averaged over processes before the (deterministic) solve; task-specific
    gradients by DDP's reducer."""

    def __init__(self, task_names, task_types, scale_mode: str = "min", rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        if scale_mode not in SCALE_MODES:
            raise UsageError(f"weighting.scale_mode {scale_mode!r} is not one of "
                             f"{', '.join(SCALE_MODES)}")
        self.scale_mode = scale_mode

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        c = aligned_weights(gram(grads), self.scale_mode)
        self._record(c)
        return c
