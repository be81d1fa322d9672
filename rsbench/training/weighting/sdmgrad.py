"""``sdmgrad``: SDMGrad, stochastic direction-oriented multi-objective gradient descent (Xiao,
Ban & Ji, "Direction-oriented Multi-objective Learning: Simple and Provable Stochastic
Algorithms", NeurIPS 2023, Algorithm 1), as LibMTL's ``SDMGrad`` and the authors' code
(github.com/OptMN-Lab/sdmgrad) compute it.

The simplex weights w solve min_w ½‖g_w + λ g_0‖² (g_w = Σ_t w_t g_t, g_0 the mean task
gradient) approximately, by ``niter`` 20 steps of SGD (learning rate ``w_lr`` 5, momentum 0.5,
restarted each step) along A w + λ A 1/T, each followed by the Euclidean projection onto the
simplex, where A is the Gram matrix divided by the squared mean gradient norm (+1e-8; negative
diagonal entries, impossible here, clamped as in LibMTL). w is warm-started from the previous
step (1/T at the start), as LibMTL and the authors keep it. The update is (g_w + λ g_0)/(1 + λ)
= Σ_t (w_t + λ/T)/(1 + λ) g_t. Defaults are LibMTL's: ``lamda`` (the paper's λ) 0.3 (also the
authors' NYUv2/Cityscapes scripts), ``niter`` 20 and momentum 0.5 (both), ``w_lr`` 5 (the
authors: 10). The authors multiply the shared update by T ("to match the sum loss"); LibMTL and
rsbench do not (the same as a T-times learning rate of the shared parameters). With these step
sizes the inner iteration converges only where A's curvature along the simplex is below
2(1 + 0.5)/``w_lr`` = 0.6; conflicting gradients give more (up to 2), and there the 20 steps
do not settle: they end at a point, often a vertex, that changes with ``niter`` (LibMTL's
iteration does the same; rsbench keeps its step sizes).

Sampling, an rsbench choice: the paper and LibMTL draw three independent batches per step
(ξ₁, ξ₂ for the Gram matrix ξ₁ ξ₂ᵀ, ζ for the update; LibMTL's trainer runs three forward passes
for SDMGrad); rsbench's loop has one batch per step, so all three are this step's task gradients,
as the authors' own Meta-World (MT10) code computes it (``mtrl_files/sdmgrad.py``: G Gᵀ of one
batch). Task-specific parameters get their own task's gradient (LibMTL and the authors: its sum
over the three batches).

A step that draws one task group solves for the present tasks' w, normalised to their mass,
which they keep (an rsbench choice, as MoCo's). AMP: A is of the unscaled gradients; the update
is of the scaled ones, for the scaler to unscale. w is in the checkpoint (resume is
bit-identical). ``rep_grad=True`` is an rsbench extension (LibMTL refuses it): the same update
on the representation's batch-summed gradients.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import GradientWeighting, gram, register_weighting
from rsbench.training.weighting.modo import present_weights, project_simplex

MOMENTUM = 0.5  # of the inner SGD (LibMTL, the authors)


def direction_weights(A: torch.Tensor, w: torch.Tensor, lamda: float, niter: int,
                      lr: float) -> torch.Tensor:
    """``niter`` projected heavy-ball steps (torch.optim.SGD's update, momentum 0.5) on
    ½ wᵀAw + λ wᵀ(A 1/T) from ``w``."""
    b = A.mean(1)
    buf = None
    for _ in range(niter):
        grad = A @ w + lamda * b
        buf = grad.clone() if buf is None else buf.mul(MOMENTUM).add(grad)
        w = project_simplex(w - lr * buf)
    return w


@register_weighting("sdmgrad")
class SDMGrad(GradientWeighting):
    """Direction-oriented weights from a few projected SGD steps. DDP: each task's shared
    gradient is averaged over processes before the (deterministic) solve, so w is identical on
    every process; task-specific gradients by DDP's reducer."""

    def __init__(self, task_names, task_types, lamda: float = 0.3, niter: int = 20,
                 w_lr: float = 5.0, rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.lamda, self.niter, self.w_lr = float(lamda), int(niter), float(w_lr)
        t = len(self.task_names)
        self.register_buffer("w", torch.full((t,), 1.0 / t, dtype=torch.float64))

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        G = gram(grads).cpu() / self._loss_scale ** 2  # ξ₁ ξ₂ᵀ: this step's gradients twice
        scale = G.diagonal().clamp_min(0).sqrt().mean()
        A = G / (scale ** 2 + 1e-8)
        idx = self._present if grads.shape[0] != len(self.task_names) else \
            torch.arange(len(self.task_names))
        w, mass = present_weights(self.w.cpu(), idx)
        w = direction_weights(A, w, self.lamda, self.niter, self.w_lr)
        if mass > 0:
            self.w[idx.to(self.w.device)] = (mass * w).to(self.w)
        self._record(w)
        return (w + self.lamda / len(w)) / (1 + self.lamda)
