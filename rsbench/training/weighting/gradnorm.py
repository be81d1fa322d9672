"""``gradnorm``: GradNorm (Chen et al., ICML 2018), the HSI paper's eq. 20.

Task weights w_t are learned so that the gradient norms G_t = ||∇_W w_t L_t|| at the last
shared layer W follow ``mean(G) · r_t^α``, r_t the relative inverse training rate
(L_t / L_t(0) over its mean). Each step takes one step of the method's own Adam (lr ``lr``) on
``Σ_t |G_t − target_t|`` for the weights only, renormalises them to sum to the number of tasks,
and back-propagates ``Σ_t w_t L_t`` with the new weights. The weights, the first-step losses
and the Adam state are in the state dict, so a resumed run continues exactly.

W is the model's ``last_shared_layer()`` where it names one (the HSI models), otherwise all of
its ``shared_parameters()`` (LibMTL's choice; the scene models).
"""

from __future__ import annotations

import torch
from torch import nn

from rsbench.errors import UsageError
from rsbench.training.weighting.base import (
    LossWeighting,
    all_reduce_mean_,
    register_weighting,
    world_size,
)


@register_weighting("gradnorm")
class GradNorm(LossWeighting):
    """Learned weights balancing gradient norms. DDP: the task losses and the measured gradient
    norms are averaged over processes before the weights' update, so every process updates them
    identically; the network's gradients are averaged by DDP's reducer."""

    def __init__(self, task_names, task_types, alpha: float = 1.5, lr: float = 0.025):
        super().__init__(task_names, task_types)
        self.alpha = float(alpha)
        t = len(self.task_names)
        self.register_buffer("w", torch.ones(t))
        self.register_buffer("initial", torch.full((t,), float("nan")))
        # the weights' own leaf and optimiser, kept out of nn.Module registration so the
        # runner's optimiser never touches them (they have their own Adam, as in the paper)
        object.__setattr__(self, "_param", nn.Parameter(torch.ones(t)))
        object.__setattr__(self, "_opt", torch.optim.Adam([self._param], lr=float(lr)))

    def select_shared(self, model: nn.Module) -> list[nn.Parameter]:
        layer = getattr(model, "last_shared_layer", None)
        params = ([p for p in layer().parameters() if p.requires_grad] if layer
                  else super().select_shared(model))
        if not params:
            raise UsageError(f"model {type(model).__name__} shares no trainable layer between "
                             "its tasks, so GradNorm does not apply; choose another --weighting")
        return params

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self._record(self.w[mask])
        return (self.w * losses).sum()

    def backward(self, losses, shared_params, scaler, extra=None) -> None:
        L, mask = self._stack(losses)
        shared = [p for p in shared_params if p.requires_grad]
        if shared and L.requires_grad:
            self._update(L, mask.nonzero().flatten(), shared, scaler)
        super().backward(losses, shared_params, scaler, extra)

    def _update(self, L_all: torch.Tensor, idx: torch.Tensor, shared: list[nn.Parameter],
                scaler) -> None:
        """One Adam step on the weights of the tasks ``idx`` that have a loss this step."""
        L = L_all[idx]
        if self._param.device != self.w.device:
            self._move_param()
        scale = float(scaler.get_scale()) if scaler.is_enabled() else 1.0
        norms = []
        for loss in L:  # ||∇_W L_t||, from the scaled loss (AMP) divided back
            grads = torch.autograd.grad(scaler.scale(loss), shared, retain_graph=True,
                                        allow_unused=True)
            sq = sum((g.float() ** 2).sum() for g in grads if g is not None)
            norms.append(torch.as_tensor(sq, device=L.device).sqrt() / scale)
        norms_t = torch.stack(norms).detach()
        lt = L.detach().clone()
        if world_size() > 1:
            all_reduce_mean_(norms_t)
            all_reduce_mean_(lt)
        if not torch.isfinite(norms_t).all():
            return  # an AMP overflow step: the scaler skips it, the weights stay
        with torch.no_grad():
            self._param.copy_(self.w)
            first = torch.isnan(self.initial[idx])
            if first.any():
                self.initial[idx[first]] = lt[first].clamp_min(1e-12)
        gnorm = self._param[idx] * norms_t  # G_t = w_t ||∇_W L_t||
        ratio = lt / self.initial[idx]
        target = (gnorm.mean() * (ratio / ratio.mean()).pow(self.alpha)).detach()
        self._opt.zero_grad(set_to_none=True)
        (self._param.grad,) = torch.autograd.grad((gnorm - target).abs().sum(), [self._param])
        self._opt.step()
        with torch.no_grad():
            p = self._param.clamp_min(1e-4)
            self.w.copy_(p * len(self.task_names) / p.sum())

    def get_extra_state(self) -> dict:
        return {"optimizer": self._opt.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("optimizer"):
            self._opt.load_state_dict(state["optimizer"])
            if self._param.device != self.w.device:
                self._move_param()

    def _move_param(self) -> None:
        self._param.data = self._param.data.to(self.w.device)
        for st in self._opt.state.values():
            for k, v in st.items():
                if torch.is_tensor(v) and k != "step":
                    st[k] = v.to(self.w.device)
