"""IMTL (Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021), as three weightings:
``imtl-l`` (loss balance), ``imtl-g`` (gradient balance) and ``imtl-h`` (both: the paper's
IMTL, and LibMTL's ``IMTL``).

IMTL-L (paper Sec. 3.2): each loss becomes ``e^{s_t} L_t − s_t`` with a learned scale s_t
(initial 0, trained by the run's optimiser with the model, as LibMTL's ``loss_scale``; its
optimum makes the scaled loss 1). IMTL-G (Sec. 3.1, eq. 8): weights α with Σ α = 1 such that the
combined shared gradient g = Σ α_t g_t has equal projections on every unit task gradient u_t:
``α_{2:T} = g_1 U^T (D U^T)^{-1}``, D_t = g_1 − g_t, U_t = u_1 − u_t, α_1 = 1 − Σ α_{2:T}.
IMTL-H applies IMTL-G to the gradients of the IMTL-L-scaled losses. Task-specific parameters get
their own (scaled) loss's gradient, as in the paper and LibMTL.

Three names rather than one with a mode option: IMTL-L is a loss weighting (one backward) and
IMTL-G/H are gradient methods (T backward passes), and the paper reports them as three rows, so
each is its own method in runs and tables. ``(D U^T)`` is solved with ``torch.linalg.solve``
(LibMTL inverts it); where it is singular (two identical gradients) a least-squares solution
is used. The paper uses the gradients of the shared representation for speed; rsbench's
default is the shared parameters (every model), ``rep_grad=True`` the paper's form.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import (
    GradientWeighting,
    LossWeighting,
    gram,
    register_weighting,
)


def imtl_g_weights(G: torch.Tensor) -> torch.Tensor:
    """IMTL-G's α (sums to 1) from the (T, T) Gram matrix of the task gradients g: with
    D = E g and U = E N g (E_i = e_1 − e_{i+1}, N = diag(1/||g_t||)), D Uᵀ = E G N Eᵀ and
    g_1 Uᵀ = (G N Eᵀ)_1."""
    G = G.double()
    n = G.shape[0]
    if n == 1:
        return G.new_ones(1)
    N = torch.diag(1 / G.diagonal().clamp_min(1e-40).sqrt())
    E = torch.cat([G.new_ones(n - 1, 1), -torch.eye(n - 1, dtype=G.dtype, device=G.device)], 1)
    GNE = G @ N @ E.T  # (T, T-1)
    A = E @ GNE  # D Uᵀ
    b = GNE[0]  # g_1 Uᵀ
    try:
        rest = torch.linalg.solve(A.T, b)  # rest @ A = b
    except RuntimeError:  # singular (e.g. identical gradients)
        rest = torch.linalg.lstsq(A.T, b.unsqueeze(1)).solution.squeeze(1)
    return torch.cat([1 - rest.sum().unsqueeze(0), rest])


class _LossScales:
    """IMTL-L's learned log-scales s_t: ``scaled(losses)`` -> e^{s_t} L_t − s_t."""

    def _init_scales(self) -> None:
        self.loss_scale = torch.nn.Parameter(torch.zeros(len(self.task_names)))

    def scaled(self, losses):
        idx = {n: i for i, n in enumerate(self.task_names)}
        return {n: torch.exp(self.loss_scale[idx[n]]) * v.float() - self.loss_scale[idx[n]]
                for n, v in losses.items()}


@register_weighting("imtl-l")
class IMTLL(_LossScales, LossWeighting):
    """IMTL-L: learned loss scales. DDP: the network's gradients and the scales' are averaged
    (DDP's reducer; the scales explicitly), nothing else."""

    def __init__(self, task_names, task_types):
        super().__init__(task_names, task_types)
        self._init_scales()

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.loss_scale[mask]
        self._record(torch.exp(s))
        return (torch.exp(s) * losses[mask] - s).sum()


@register_weighting("imtl-g")
class IMTLG(GradientWeighting):
    """IMTL-G: closed-form gradient balance. DDP: each task's shared gradient is averaged over
    processes before the (deterministic) solve; task-specific gradients by DDP's reducer."""

    def __init__(self, task_names, task_types, rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        alpha = imtl_g_weights(gram(grads))
        self._record(alpha)
        return alpha


@register_weighting("imtl-h")
class IMTLH(_LossScales, GradientWeighting):
    """IMTL-H: IMTL-G on the IMTL-L-scaled losses. DDP: as IMTL-G; the scales' gradients are
    averaged explicitly."""

    def __init__(self, task_names, task_types, rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self._init_scales()

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        alpha = imtl_g_weights(gram(grads))
        self._record(alpha)
        return alpha

    def backward(self, losses, shared_params, scaler, extra=None) -> None:
        super().backward(self.scaled(losses), shared_params, scaler, extra)
