"""``nash-mtl``: Nash-MTL (Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022).

The task weights α > 0 solve ``G α = 1/α`` (element-wise; the Nash bargaining solution, the
paper's eq. 4), G the Gram matrix of the task gradients. The loss ``Σ_t α_t L_t`` is
back-propagated, so task-specific parameters get α_t times their task's gradient (the authors'
code), and the shared parameters' gradient is clipped to norm ``max_norm`` (the authors'
``clip_grad_norm_`` on the shared parameters).

Solver: the authors' code (and LibMTL's copy) divides G by its Frobenius norm n_G for the
numerics, but its constraint ``α_t n_G (G/n_G · α)_t ≥ 1`` keeps the equation in the raw G, and
its 20 (``optim_niter``) rounds of a convex-concave procedure in cvxpy/ECOS end at the raw-G
solution (their stop test on the normalised equation rarely fires); rsbench solves the same
equation: ``α = α' / √n_G`` with α' the unique minimiser of the strictly convex
``½ α'ᵀ(G/n_G)α' − Σ log α'`` over α' > 0, found with damped Newton steps in float64 (T
variables; the Hessian G/n_G + diag(1/α'²) is positive definite) to
``max_t |α'_t (G/n_G α')_t − 1| < 1e-8`` within 100 steps, without cvxpy. Warm start: the
previous step's α (ones at the first step, as the authors), rescaled by √n_G. Where no solution
exists (a zero or exactly opposed task gradient: the objective is unbounded) or the iteration
does not converge, the previous α is kept, as the authors' solver-failure path does. G is that
of the unscaled gradients (the AMP loss scale divided out), since α scales as 1/||g||.
Defaults from the authors and LibMTL: ``update_weights_every`` 1, ``max_norm`` 1.0. The α and
the step count are buffers, so a resumed run continues exactly.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import (
    GradientWeighting,
    all_reduce_mean_,
    autograd_grads,
    gram,
    register_weighting,
    world_size,
)


def nash_weights(gram: torch.Tensor, start: torch.Tensor, tol: float = 1e-8,
                 max_iter: int = 100) -> torch.Tensor | None:
    """α > 0 with ``gram @ α = 1/α`` by damped Newton from ``start`` (converged when every
    ``|α_t (Gα)_t − 1| < tol``); None if it does not converge."""
    G = gram.double()
    a = start.double().clamp_min(1e-6).clone()

    def f(x):
        return 0.5 * x @ G @ x - torch.log(x).sum()

    def converged(x):  # scale-free residual: α_t (Gα)_t = 1 for every t
        return bool(((x * (G @ x) - 1).abs().max() < tol).item())

    for _ in range(max_iter):
        if converged(a):
            return a
        r = G @ a - 1 / a
        H = G + torch.diag(1 / a ** 2)
        d = -torch.linalg.solve(H, r)
        t, fa, slope = 1.0, f(a), float(r @ d)
        while t > 1e-12:
            new = a + t * d
            if (new > 0).all() and f(new) <= fa + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            return None
        a = new
    return a if bool(torch.isfinite(a).all()) and converged(a) else None


@register_weighting("nash-mtl")
class NashMTL(GradientWeighting):
    """Bargaining weights. DDP: each task's shared-parameter gradient is averaged over processes
    before the (deterministic) solve, so α is that of the global batch on every process; the
    weighted loss's backward goes through DDP's reducer; the clip sees identical gradients."""

    def __init__(self, task_names, task_types, update_weights_every: int = 1,
                 max_norm: float = 1.0, rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.update_weights_every = max(1, int(update_weights_every))
        self.max_norm = float(max_norm)
        self.register_buffer("alpha", torch.ones(len(self.task_names), dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def backward(self, losses, shared_params, scaler, extra=None) -> None:
        self._loss_scale = float(scaler.get_scale()) if scaler.is_enabled() else 1.0
        L, mask = self._stack(losses)
        idx = mask.nonzero().flatten().to(self.alpha.device)
        shared = [p for p in shared_params if p.requires_grad]
        scaled = [scaler.scale(losses[n].float()) for n in self.task_names if n in losses]
        update = int(self.step) % self.update_weights_every == 0
        if shared and update:
            if self._capture is not None:
                from rsbench.training.weighting.representation import batch_summed

                _, per, _ = self._capture.gradients(self, losses, scaler)
                grads = batch_summed(per)
            else:
                grads, _ = autograd_grads(scaled, shared)
                if world_size() > 1:
                    all_reduce_mean_(grads)
            G = gram(grads) / self._loss_scale ** 2
            norm = G.norm()
            if torch.isfinite(norm) and norm > 0:  # else (AMP overflow) keep α, scaler skips
                a = nash_weights(G / norm, self.alpha[idx] * norm.sqrt())
                if a is not None:
                    self.alpha[idx] = (a / norm.sqrt()).to(self.alpha)
        elif self._capture is not None:
            self._capture.records = []
        self.step += 1
        alpha = self.alpha[idx]
        self._record(alpha)
        total = sum(a.float() * s for a, s in zip(alpha.to(L.device), scaled))
        if extra is not None:
            total = total + scaler.scale(extra.float())
        total.backward()
        if world_size() > 1:
            for p in self.parameters():
                if p.grad is not None:
                    all_reduce_mean_(p.grad)
        if self.max_norm > 0 and shared:
            _clip(shared, self.max_norm,
                  float(scaler.get_scale()) if scaler.is_enabled() else 1.0)


def _clip(params, max_norm: float, scale: float) -> None:
    """``clip_grad_norm_`` of the unscaled gradients (``.grad`` / ``scale``), applied to the
    scaled ones; skips non-finite ones (an AMP overflow step, which the scaler skips)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    total = torch.norm(torch.stack([g.detach().float().norm() for g in grads])) / scale
    if not torch.isfinite(total):
        return
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.to(g.dtype))
