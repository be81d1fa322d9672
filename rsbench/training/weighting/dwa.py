"""``dwa``: Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, eq. 7).

w_k(t) = K exp(r_k(t−1)/T) / Σ_i exp(r_i(t−1)/T) with r_k(t−1) = L_k(t−1) / L_k(t−2), the
ratio of task k's mean training loss over the last two epochs, temperature T = 2; w_k = 1 for
the first two epochs. The loss is Σ_k w_k L_k.
"""

from __future__ import annotations

import math

import torch

from rsbench.training.weighting.base import LossWeighting, register_weighting


@register_weighting("dwa")
class DWA(LossWeighting):
    """Weights from the last two epochs' mean losses. DDP: the runner's epoch means are already
    averaged over processes, so every process computes the same weights; nothing else."""

    def __init__(self, task_names, task_types, temperature: float = 2.0):
        super().__init__(task_names, task_types)
        self.temperature = float(temperature)
        t = len(self.task_names)
        self.register_buffer("history", torch.full((2, t), math.nan, dtype=torch.float64))
        self.register_buffer("w", torch.ones(t))

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self._record(self.w[mask])
        return (self.w * losses).sum()

    def epoch_end(self, mean_losses) -> None:
        super().epoch_end(mean_losses)
        now = torch.tensor([float(mean_losses.get(n, math.nan)) for n in self.task_names],
                           dtype=torch.float64)
        self.history[0] = self.history[1].clone()
        self.history[1] = now.to(self.history)
        if torch.isnan(self.history).any():
            return  # fewer than two epochs seen: weights stay 1
        r = self.history[1] / self.history[0]
        w = len(self.task_names) * torch.softmax(r / self.temperature, dim=0)
        self.w.copy_(w.to(self.w))
