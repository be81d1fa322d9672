"""``gls``: Geometric Loss Strategy (Chennupati et al., "MultiNet++", CVPR Workshops 2019,
eq. 3): the loss is the geometric mean of the task losses, ``(Π_t L_t)^(1/T)``.

Its gradient is Σ_t w_t ∇L_t with w_t = GLS / (T L_t), so the method is a loss weighting with
those (detached) weights; the value is computed as exp(mean log L_t), which equals LibMTL's
``losses.prod() ** (1/T)`` without its under/overflow for many tasks or small losses. A step
that draws one task group takes the geometric mean over the tasks present. The paper states no
option; there is none.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import (
    LossWeighting,
    all_reduce_mean_,
    register_weighting,
    world_size,
)


@register_weighting("gls")
class GLS(LossWeighting):
    """Geometric mean of the losses. DDP: the task losses are averaged over processes before the
    weights are formed, so the weights are those of the global batch's losses and DDP's
    averaging of ``Σ_t w_t L_t`` gives the gradient of the global batch's geometric mean."""

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        L = losses[mask]
        Lg = L.detach().clone()
        if world_size() > 1:
            all_reduce_mean_(Lg)
        Lg = Lg.clamp_min(1e-12)
        gm = torch.exp(torch.log(Lg).mean())
        w = gm / (len(L) * Lg)
        self._record(w)
        return (w * L).sum()
