"""Task weighting for the multitask loss (HSI paper, Section III-F): equal, homoscedastic
uncertainty (Kendall et al. 2018) and GradNorm (Chen et al. 2018).

A weighting is an ``nn.Module`` called as ``weighting(losses) -> total``. :func:`attach` puts
it on a model so that ``model.combine_losses`` (what the runner calls) uses it, its parameters
are trained and checkpointed with the model's, and nothing in the runner has to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from rsbench.errors import UsageError

WEIGHTINGS = ("equal", "uncertainty", "gradnorm")


class EqualWeighting(nn.Module):
    """Plain sum of the task losses."""

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([v.float() for v in losses.values()]).sum()

    def weights(self) -> dict[str, float]:
        return {}


class UncertaintyWeighting(nn.Module):
    """Learned homoscedastic uncertainty, one log variance s_t = log σ_t² per task (eq. 18–19).

    Regression: ``½ e^(−s) L + ½ s`` (Gaussian likelihood); classification: ``e^(−s) L + ½ s``
    (scaled softmax), which is Kendall et al.'s 1/(2σ²)·L + log σ and 1/σ²·L + log σ.
    """

    def __init__(self, task_types: Mapping[str, str]):
        super().__init__()
        self.names = list(task_types)
        self.regression = torch.tensor([task_types[n] == "regression" for n in self.names])
        self.log_vars = nn.Parameter(torch.zeros(len(self.names)))

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = self.log_vars.new_zeros(())
        for name, loss in losses.items():
            i = self.names.index(name)
            s = self.log_vars[i]
            scale = 0.5 if bool(self.regression[i]) else 1.0
            total = total + scale * torch.exp(-s) * loss.float() + 0.5 * s
        return total

    def weights(self) -> dict[str, float]:
        return {n: float(torch.exp(-v)) for n, v in zip(self.names, self.log_vars.detach())}


class GradNorm(nn.Module):
    """GradNorm: task weights w_t learned so that the gradient norms of w_t·L_t at the last
    shared layer follow ``mean(G) · r_t^α``, r_t the relative inverse training rate (eq. 20).

    Each call measures ``G_t = ||∇_W w_t L_t||``, takes one step of its own Adam on
    ``Σ_t |G_t − target_t|`` for the weights only, renormalises them to sum to the number of
    tasks, and returns ``Σ_t w_t L_t`` (weights fixed) for the network's backward pass.
    The weights and initial losses are buffers and the weights' Adam state is the module's
    extra state, so all of it is checkpointed with the model and a resumed run continues exactly.
    """

    def __init__(self, names: Sequence[str], shared: Sequence[nn.Parameter], alpha: float = 1.5,
                 lr: float = 0.025):
        super().__init__()
        self.names = list(names)
        self.alpha = float(alpha)
        self._shared = list(shared)  # not registered: the model already owns them
        self.register_buffer("w", torch.ones(len(self.names)))
        self.register_buffer("initial", torch.full((len(self.names),), float("nan")))
        # the weights' own leaf and optimiser, kept out of the model's parameters (so the
        # network's optimiser never touches them) by bypassing nn.Module registration
        object.__setattr__(self, "_param", nn.Parameter(torch.ones(len(self.names))))
        object.__setattr__(self, "_opt", torch.optim.Adam([self._param], lr=lr))

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        names = [n for n in self.names if n in losses]
        idx = torch.tensor([self.names.index(n) for n in names], device=self.w.device)
        L = torch.stack([losses[n].float() for n in names])
        if not torch.is_grad_enabled() or not L.requires_grad:
            return (self.w[idx] * L).sum()
        if self._param.device != self.w.device:
            self._move_param()
        with torch.no_grad():
            self._param.copy_(self.w)
            first = torch.isnan(self.initial[idx])
            if first.any():
                self.initial[idx[first]] = L.detach()[first].clamp_min(1e-12)
        # G_t = ||∇_W (w_t L_t)|| = w_t ||∇_W L_t||
        norms = []
        for loss in L:
            grads = torch.autograd.grad(loss, self._shared, retain_graph=True,
                                        allow_unused=True)
            sq = sum((g.float() ** 2).sum() for g in grads if g is not None)
            norms.append(torch.sqrt(torch.as_tensor(sq, device=L.device)))
        gnorm = self._param[idx] * torch.stack(norms).detach()
        ratio = L.detach() / self.initial[idx]
        rel = ratio / ratio.mean()
        target = (gnorm.mean() * rel.pow(self.alpha)).detach()
        grad_loss = (gnorm - target).abs().sum()
        self._opt.zero_grad(set_to_none=True)
        (wgrad,) = torch.autograd.grad(grad_loss, [self._param])
        self._param.grad = wgrad
        self._opt.step()
        with torch.no_grad():
            p = self._param.clamp_min(1e-4)
            self.w.copy_(p * len(self.names) / p.sum())
        return (self.w[idx] * L).sum()

    def get_extra_state(self) -> dict:
        return {"optimizer": self._opt.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("optimizer"):
            self._opt.load_state_dict(state["optimizer"])
            if self._param.device != self.w.device:
                self._move_param()

    def _move_param(self) -> None:
        self._param.data = self._param.data.to(self.w.device)
        for state in self._opt.state.values():
            for k, v in state.items():
                if torch.is_tensor(v) and k != "step":
                    state[k] = v.to(self.w.device)

    def weights(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.w)}


def make_weighting(name: str, model: nn.Module, alpha: float = 1.5,
                   lr: float = 0.025) -> nn.Module:
    """The weighting ``name`` for ``model``'s tasks (its ``tasks`` dict of TaskInfo)."""
    tasks = model.tasks
    if name == "equal":
        return EqualWeighting()
    if name == "uncertainty":
        return UncertaintyWeighting({n: t.type for n, t in tasks.items()})
    if name == "gradnorm":
        layer_fn = getattr(model, "last_shared_layer", None)
        if layer_fn is None:
            raise UsageError(f"model {type(model).__name__} names no last shared layer, which "
                             "GradNorm needs; use --weighting equal or uncertainty")
        shared = [p for p in layer_fn().parameters() if p.requires_grad]
        return GradNorm(list(tasks), shared, alpha=alpha, lr=lr)
    raise UsageError(f"unknown weighting {name!r}; choose one of: {', '.join(WEIGHTINGS)}")


def attach(model: nn.Module, name: str = "equal", **options) -> nn.Module:
    """Make ``model.combine_losses`` use the weighting ``name``; returns the model."""
    weighting = make_weighting(name, model, **options)
    model.add_module("loss_weighting", weighting)
    # a plain instance attribute shadowing the class method (not a second registration)
    object.__setattr__(model, "combine_losses", weighting)
    return model
