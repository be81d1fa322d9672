"""``uncertainty``: homoscedastic task uncertainty (Kendall, Gal & Cipolla, CVPR 2018).

One learned s_t = log σ_t² per task, started at 0 (all weights 1), in the HSI paper's eq. 18-19
form: ``½ e^(−s) L + ½ s`` for regression (Gaussian likelihood, 1/(2σ²)·L + log σ) and
``e^(−s) L + ½ s`` for classification and segmentation (scaled softmax, 1/σ²·L + log σ). The
MTLN paper's ``uncertainty`` row (its [48]) is the shared-specific network with this weighting.
"""

from __future__ import annotations

import torch
from torch import nn

from rsbench.training.weighting.base import LossWeighting, register_weighting


@register_weighting("uncertainty")
class Uncertainty(LossWeighting):
    """Learned log variances. DDP: their gradients are averaged over processes explicitly."""

    def __init__(self, task_names, task_types):
        super().__init__(task_names, task_types)
        self.log_vars = nn.Parameter(torch.zeros(len(self.task_names)))
        self.register_buffer("scale", torch.tensor(
            [0.5 if self.task_types[n] == "regression" else 1.0 for n in self.task_names]))

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.log_vars.float()
        w = self.scale * torch.exp(-s)
        self._record(w[mask])
        return ((w * losses + 0.5 * s) * mask).sum()  # only the tasks with a loss this step
