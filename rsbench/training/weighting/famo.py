"""``famo``: Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023, Algorithm 1), as
LibMTL's ``FAMO`` and the authors' code (github.com/Cranial-XIX/FAMO) compute it.

With z = softmax(ξ) and D_t = L_t − L_t* + 1e-8 (L* = 0, as LibMTL and the authors' default),
the loss is Σ_t z_t log D_t / c with c = Σ_t z_t / D_t (detached), i.e. task weights
z_t / (c D_t). ξ (logits, 0 at the start) moves by Adam (lr ``w_lr`` 0.025, weight decay
``gamma`` 1e-3, the defaults of LibMTL and the authors) along ∂z/∂ξ · δ with δ_t the drop of
log D_t between two steps. The authors (and LibMTL's trainer) take the second loss with one
more forward of the same batch after the update; rsbench's loop has no such forward, so δ uses
the next step's losses (on the next batch) — an rsbench choice, one update of ξ per step, one
step late. The Adam moments are buffers (plain tensors), so a resumed run is bit-identical.
AMP: the weights come from the (unscaled, float32) losses; the backward scales one sum.
"""

from __future__ import annotations

import math

import torch

from rsbench.training.weighting.base import (
    LossWeighting,
    all_reduce_mean_,
    register_weighting,
    world_size,
)


@register_weighting("famo")
class FAMO(LossWeighting):
    """Loss weights from softmax logits updated by the change in log losses. DDP: the detached
    task losses are averaged over processes before the weights and the ξ update, so every
    process holds the same ξ and DDP's averaging gives the global batch's weighted gradient."""

    def __init__(self, task_names, task_types, w_lr: float = 0.025, gamma: float = 1e-3):
        super().__init__(task_names, task_types)
        self.w_lr, self.gamma = float(w_lr), float(gamma)
        t = len(self.task_names)
        self.register_buffer("xi", torch.zeros(t, dtype=torch.float64))
        self.register_buffer("exp_avg", torch.zeros(t, dtype=torch.float64))
        self.register_buffer("exp_avg_sq", torch.zeros(t, dtype=torch.float64))
        self.register_buffer("adam_step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("prev_log", torch.full((t,), math.nan, dtype=torch.float64))

    def update_xi(self, delta: torch.Tensor) -> None:
        """One Adam step of ξ with gradient ∂softmax(ξ)/∂ξ · δ (torch.optim.Adam's update)."""
        z = torch.softmax(self.xi, 0)
        g = z * (delta - (z * delta).sum()) + self.gamma * self.xi
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.adam_step += 1
        k = int(self.adam_step)
        self.exp_avg.mul_(b1).add_(g, alpha=1 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (self.exp_avg_sq.sqrt() / math.sqrt(1 - b2 ** k)).add_(eps)
        self.xi.addcdiv_(self.exp_avg, denom, value=-self.w_lr / (1 - b1 ** k))

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        Lg = losses.detach().double().clone()
        if world_size() > 1:
            all_reduce_mean_(Lg)
        logD = torch.log(Lg.clamp_min(0) + 1e-8)
        prev = self.prev_log.to(logD)
        full = bool(mask.all())
        if full and not torch.isnan(prev).any():
            self.update_xi((prev - logD).to(self.xi))
        self.prev_log.copy_(logD if full else torch.full_like(logD, math.nan))
        z = torch.softmax(self.xi.masked_fill(~mask.to(self.xi.device), -math.inf), 0)
        D = logD.exp().to(z)
        w = z / D / (z / D).sum()
        self._record(w[mask.to(w.device)])
        return (w.to(losses) * losses).sum()
