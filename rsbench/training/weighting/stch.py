"""``stch``: Smooth Tchebycheff scalarisation (Lin et al., "Smooth Tchebycheff Scalarization for
Multi-Objective Optimization", ICML 2024, eq. 8), as LibMTL's ``STCH`` and the authors' MTL code
(github.com/Xi-L/STCH, ``STCH_MTL``) compute it.

For the first ``warmup_epoch`` + 1 epochs (default 4, epochs 0..4 as LibMTL counts them) the
loss is Σ_t log L_t, and the losses of epoch ``warmup_epoch`` are averaged into the nadir
vector n; afterwards the loss is T · μ · log Σ_t exp(log(L_t / n_t + 1e-20) / μ) with μ = 1
(LibMTL's defaults). The loss is formed as Σ_t w_t L_t with the detached weights w_t =
∂loss/∂L_t, which has the same gradient. The epoch count and the nadir sums are buffers
(resume is bit-identical). AMP: the weights come from the float32 losses.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import (
    LossWeighting,
    all_reduce_mean_,
    register_weighting,
    world_size,
)


@register_weighting("stch")
class STCH(LossWeighting):
    """Log-loss warm-up, then the smooth Tchebycheff loss against the warm-up's mean losses.
    DDP: the detached losses are averaged over processes before the weights and the nadir sums,
    so the update is that of the global batch's losses on every process."""

    def __init__(self, task_names, task_types, mu: float = 1.0, warmup_epoch: int = 4):
        super().__init__(task_names, task_types)
        self.mu, self.warmup_epoch = float(mu), int(warmup_epoch)
        t = len(self.task_names)
        self.register_buffer("epoch", torch.zeros((), dtype=torch.int64))
        self.register_buffer("nadir_sum", torch.zeros(t, dtype=torch.float64))
        self.register_buffer("nadir_count", torch.zeros(t, dtype=torch.int64))

    def loss_weights(self, L: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(T,) detached weights ∂loss/∂L_t at the (T,) float64 losses (0 where absent)."""
        m = mask.to(L.device)
        if int(self.epoch) <= self.warmup_epoch:
            return torch.where(m, 1.0 / (L + 1e-20), torch.zeros_like(L))
        n = (self.nadir_sum / self.nadir_count.clamp_min(1)).to(L)
        r = L / n + 1e-20
        s = torch.softmax((r.log() / self.mu).masked_fill(~m, -torch.inf), 0)
        return torch.where(m, len(self.task_names) * s / (n * r), torch.zeros_like(L))

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        L = losses.detach().double().clone()
        if world_size() > 1:
            all_reduce_mean_(L)
        if int(self.epoch) == self.warmup_epoch:
            m = mask.to(self.nadir_sum.device)
            self.nadir_sum += torch.where(m, L.to(self.nadir_sum), torch.zeros_like(self.nadir_sum))
            self.nadir_count += m.long()
        w = self.loss_weights(L, mask)
        self._record(w[mask.to(w.device)])
        return (w.to(losses) * losses).sum()

    def epoch_end(self, mean_losses) -> None:
        super().epoch_end(mean_losses)
        self.epoch += 1
