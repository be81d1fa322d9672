"""The weighting contract and its two families: loss weightings and gradient combiners.

A weighting receives the task losses of one step and performs the backward pass itself, so a
method that works on per-task gradients (PCGrad, CAGrad, MGDA) fits the same loop as one that
scales losses (equal, uncertainty, DWA, RLW, GradNorm), as LibMTL separates them from models.

AMP: every backward starts from ``scaler.scale(loss)``. Loss weightings scale one sum; the
gradient combiners combine scaled per-task gradients. Each combiner here is positively
homogeneous of degree 1 in the gradients (scaling all of them by S scales the result by S), so
``scaler.step`` unscaling the written ``.grad`` gives the combination of unscaled gradients,
and an overflow (inf/NaN in any task's gradient) stays non-finite and makes the scaler skip.

DDP: see each method's docstring for what is reduced across processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn

from rsbench.errors import UsageError
from rsbench.training.distributed import all_reduce_

WEIGHTINGS: dict[str, type[Weighting]] = {}


def register_weighting(name: str):
    """Class decorator: make the weighting available as ``name`` (CLI ``--weighting NAME``)."""
    def wrap(cls: type[Weighting]) -> type[Weighting]:
        cls.name = name
        WEIGHTINGS[name] = cls
        return cls
    return wrap


def world_size() -> int:
    """Processes in the default group (1 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def all_reduce_mean_(t: torch.Tensor) -> torch.Tensor:
    """Average ``t`` over processes in place (via the CPU for gloo with a GPU tensor)."""
    world = world_size()
    if world > 1:
        all_reduce_(t).div_(world)
    return t


class Weighting(nn.Module):
    """Base class. Subclasses implement :meth:`backward`; its parameters (if any) are trained by
    the runner's optimiser and its ``state_dict`` goes in the checkpoint."""

    name = ""

    def __init__(self, task_names: Sequence[str], task_types: Mapping[str, str]):
        super().__init__()
        self.task_names = list(task_names)
        self.task_types = {n: task_types[n] for n in self.task_names}
        # per-epoch mean of the weights used at each step (history.csv ``weight_<task>``)
        self.register_buffer("_weight_sum", torch.zeros(len(self.task_names),
                                                        dtype=torch.float64))
        self.register_buffer("_weight_steps", torch.zeros(len(self.task_names),
                                                          dtype=torch.int64))
        self._present = torch.arange(len(self.task_names))  # tasks with a loss this step

    def backward(self, losses: Mapping[str, torch.Tensor], shared_params: Sequence[nn.Parameter],
                 scaler: torch.amp.GradScaler, extra: torch.Tensor | None = None) -> None:
        """Backward pass of one step: leave (scaler-scaled) gradients in every ``.grad``.

        ``extra`` is an auxiliary loss (e.g. a policy-gradient term) added unweighted."""
        raise NotImplementedError

    def select_shared(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters this method treats as shared: the model's ``shared_parameters()``."""
        fn = getattr(model, "shared_parameters", None)
        return [p for p in (fn() if fn else []) if p.requires_grad]

    def reseed(self, seed: int) -> None:
        """Seed the method's own random generator (a fresh run only; resume restores it)."""

    def weights(self) -> dict[str, float]:
        """Mean weight of each task over the steps since the last :meth:`epoch_end` ({} for a
        method that has no per-task weights)."""
        return {n: float(s / c) for n, s, c in zip(self.task_names, self._weight_sum,
                                                   self._weight_steps) if int(c) > 0}

    def epoch_end(self, mean_losses: Mapping[str, float]) -> None:
        """Called once per epoch with the epoch's mean task losses (after :meth:`weights`)."""
        self._weight_sum.zero_()
        self._weight_steps.zero_()

    def _record(self, w: torch.Tensor) -> None:
        """Add this step's weights: one per task, or one per present task (``_present``)."""
        idx = self._present if w.numel() != len(self.task_names) else \
            torch.arange(len(self.task_names))
        self._weight_sum[idx] += w.detach().to(self._weight_sum)
        self._weight_steps[idx] += 1

    def _stack(self, losses: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The task losses in ``task_names`` order (0 for a task without a loss this step, as
        when a step draws one task group) and the mask of tasks that have one."""
        present = [n in losses for n in self.task_names]
        if not any(present):
            raise ValueError("no task loss this step")
        ref = next(iter(losses.values()))
        L = torch.stack([losses[n].float() if n in losses else ref.new_zeros((), dtype=torch.float32)
                         for n in self.task_names])
        mask = torch.tensor(present, device=L.device)
        self._present = mask.nonzero().flatten().cpu()
        return L, mask


class LossWeighting(Weighting):
    """A method that only scales the losses: one backward of ``Σ_t w_t L_t (+ extra)``.

    DDP: the network's gradients are averaged by DDP's reducer in that backward; the method's own
    parameters (not inside the DDP module) have their gradients averaged here explicitly."""

    def combine(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Total loss from the (T,) task losses (``mask``: tasks that have a loss this step);
        subclasses record their weights."""
        raise NotImplementedError

    def backward(self, losses, shared_params, scaler, extra=None) -> None:
        total = self.combine(*self._stack(losses))
        if extra is not None:
            total = total + extra.float()
        scaler.scale(total).backward()
        if world_size() > 1:
            for p in self.parameters():
                if p.grad is not None:
                    all_reduce_mean_(p.grad)


class GradientWeighting(Weighting):
    """A method that combines per-task gradients of the shared parameters.

    Each task's scaled loss is differentiated separately; :meth:`combine` turns the (T, D)
    matrix of flattened shared gradients into one D vector, written to the shared ``.grad``.
    Most methods give the update as a combination Σ_t c_t g_t of this step's task gradients and
    implement :meth:`coefficients` (c from the gradients) instead. Task-specific parameters get
    the sum of their tasks' gradients (their own task's, for a parameter only one task
    reaches); ``extra``'s gradient is added unchanged everywhere.

    Single process: T (+1 for ``extra``) backward passes, the shared gradients read and cleared
    after each one (LibMTL's ``backward`` mode). DDP: per-task gradients taken with
    ``torch.autograd.grad`` bypass DDP's reducer, so each task's shared gradient is averaged over
    processes explicitly (``all_reduce``) before combining, which makes the combination that of
    the global batch and identical on every process; one more backward of ``Σ_t L_t + extra``
    through DDP gives the task-specific gradients, averaged by DDP's reducer. The method's own
    parameters (IMTL's loss scales) have their gradients averaged explicitly.

    ``rep_grad=True`` (LibMTL's ``rep_grad``): the coefficients come from the gradients with
    respect to the shared representation the heads read (``model.shared_representation()``)
    instead of the shared parameters; see :mod:`rsbench.training.weighting.representation`.
    """

    #: whether the method has a shared-representation mode (its update is Σ_t c_t g_t, or it
    #: defines its own representation update, as GradDrop)
    rep_grad_supported = True

    def __init__(self, task_names, task_types, rep_grad: bool = False):
        super().__init__(task_names, task_types)
        self.rep_grad = bool(rep_grad)
        if self.rep_grad and not self.rep_grad_supported:
            raise UsageError(f"weighting {self.name!r} has no shared-representation mode (its "
                             "update is not a combination of this step's task gradients); drop "
                             "--set weighting.rep_grad=true")
        self._capture = None  # the representation recorder, installed by select_shared
        self._loss_scale = 1.0  # the GradScaler's scale of this step (for stateful methods)

    def select_shared(self, model: nn.Module) -> list[nn.Parameter]:
        shared = super().select_shared(model)
        if self.rep_grad and shared:
            from rsbench.training.weighting.representation import RepresentationCapture

            self._capture = RepresentationCapture(model)
        return shared

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """(P, D) gradients and (P,) losses of the tasks present this step -> (P,) c, the
        update being Σ_t c_t g_t."""
        raise NotImplementedError

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """(P, D) gradients and (P,) losses of the tasks present this step -> (D,) update."""
        if not torch.isfinite(grads).all():  # AMP overflow: stays non-finite, the scaler skips
            return grads.sum(0)
        c = self.coefficients(grads, losses)
        return c.to(device=grads.device, dtype=grads.dtype) @ grads

    def representation_update(self, per: Sequence[torch.Tensor], reps: Sequence[torch.Tensor],
                              losses: torch.Tensor) -> list[torch.Tensor]:
        """Rep mode: each present task's gradient w.r.t. its representation ``reps`` (B, ...)
        -> what it sends back into it. Default (LibMTL's ``_backward_new_grads``): c_t times
        it, c from the batch-summed gradients (averaged over processes under DDP)."""
        from rsbench.training.weighting.representation import batch_summed

        H = batch_summed(per)
        if not torch.isfinite(H).all():  # AMP overflow: stays non-finite, the scaler skips
            return list(per)
        c = self.coefficients(H, losses)
        return [ct.to(p) * p for ct, p in zip(c, per)]

    def backward(self, losses, shared_params, scaler, extra=None) -> None:
        self._loss_scale = float(scaler.get_scale()) if scaler.is_enabled() else 1.0
        shared = [p for p in shared_params if p.requires_grad]
        if shared and self._capture is not None:
            self._capture.backward(self, losses, scaler, extra)
        else:
            self._parameter_backward(losses, shared, scaler, extra)
        if world_size() > 1:
            for p in self.parameters():
                if p.grad is not None:
                    all_reduce_mean_(p.grad)

    def _weighted_loss_backward(self, losses, shared_params, scaler, extra,
                                weights_from) -> None:
        """Backward of ``Σ_t w_t L_t (+ extra)`` with the weights read off this step's shared
        gradients (FairGrad, ExcessMTL: the authors weight the loss, so the task heads' gradients
        are weighted too). ``weights_from(grads, losses)`` gets the present tasks' gradients
        (scaler-scaled, averaged over processes; ``self._loss_scale`` unscales them) or None
        without shared parameters or after an AMP overflow, and returns one weight per task."""
        self._loss_scale = float(scaler.get_scale()) if scaler.is_enabled() else 1.0
        shared = [p for p in shared_params if p.requires_grad]
        self._stack(losses)
        L = [losses[n].float() for n in self.task_names if n in losses]
        grads = None
        if shared:
            grads, _ = autograd_grads([scaler.scale(x) for x in L], shared)
            if world_size() > 1:
                all_reduce_mean_(grads)
            if not torch.isfinite(grads).all():  # the gradients stay non-finite: scaler skips
                grads = None
        w = weights_from(grads, torch.stack(L).detach())
        total = sum(wt * x for wt, x in zip(w, L))
        if extra is not None:
            total = total + extra.float()
        scaler.scale(total).backward()

    def _parameter_backward(self, losses, shared, scaler, extra) -> None:
        L, mask = self._stack(losses)
        L = L[mask]
        scaled = [scaler.scale(losses[n].float()) for n in self.task_names if n in losses]
        if not shared:  # nothing shared (e.g. single-task): every task only reaches its own
            total = sum(scaled) + (scaler.scale(extra.float()) if extra is not None else 0)
            total.backward()
            return
        grads, g_extra, used = task_gradients(scaled, shared, scaler, extra)
        combined = self.combine(grads, L.detach())
        if g_extra is not None:
            combined = combined + g_extra[0]
        write_grads(shared, combined, used)


def gram(grads: torch.Tensor, chunk: int = 1 << 14) -> torch.Tensor:
    """The (T, T) float64 Gram matrix of (T, D) gradients: float32 products over chunks of the
    D columns, summed in float64 (as accurate as float64 throughout, ~20x cheaper for large D)."""
    if grads.dtype == torch.float64 or grads.shape[1] <= chunk:
        g = grads.double()
        return g @ g.T
    g = grads.float()
    out = torch.zeros(g.shape[0], g.shape[0], dtype=torch.float64, device=g.device)
    for start in range(0, g.shape[1], chunk):
        part = g[:, start:start + chunk]
        out += (part @ part.T).double()
    return out


def task_gradients(scaled: Sequence[torch.Tensor], shared: Sequence[nn.Parameter],
                   scaler: torch.amp.GradScaler, extra: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None, set[int]]:
    """(T, D) shared gradients of the scaled task losses (averaged over processes under DDP),
    ``extra``'s (1, D) or None, and the indices of the shared parameters any of them reached.
    Task-specific parameters get Σ_t of their gradients (single process: accumulated by the
    per-task backward passes; DDP: one backward of the sum through DDP's reducer)."""
    if world_size() > 1:
        grads, used = autograd_grads(scaled, shared)
        all_reduce_mean_(grads)
        g_extra = None
        if extra is not None:
            g_extra, used_x = autograd_grads([scaler.scale(extra.float())], shared)
            all_reduce_mean_(g_extra)
            used |= used_x
        total = sum(scaled) + (scaler.scale(extra.float()) if extra is not None else 0)
        total.backward()  # DDP's reducer: task-specific gradients averaged
        return grads, g_extra, used
    grads, used = _backward_grads(scaled, shared)
    g_extra = None
    if extra is not None:
        g_extra, used_x = _backward_grads([scaler.scale(extra.float())], shared)
        used |= used_x
    return grads, g_extra, used


def _flat(grads: Sequence[torch.Tensor | None], params: Sequence[nn.Parameter]) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                      for g, p in zip(grads, params)])


def autograd_grads(losses: Sequence[torch.Tensor], params: Sequence[nn.Parameter]
                    ) -> tuple[torch.Tensor, set[int]]:
    """(T, D) gradients of each loss w.r.t. ``params`` without touching ``.grad``."""
    rows, used = [], set()
    for loss in losses:
        g = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        used |= {i for i, x in enumerate(g) if x is not None}
        rows.append(_flat(g, params))
    return torch.stack(rows), used


def _backward_grads(losses: Sequence[torch.Tensor], params: Sequence[nn.Parameter]
                    ) -> tuple[torch.Tensor, set[int]]:
    """(T, D) gradients of each loss w.r.t. ``params``, by ``backward`` (other parameters keep
    accumulating theirs); the shared ``.grad`` are cleared after each."""
    rows, used = [], set()
    for p in params:
        p.grad = None
    for loss in losses:
        loss.backward(retain_graph=True)
        g = [p.grad for p in params]
        used |= {i for i, x in enumerate(g) if x is not None}
        rows.append(_flat(g, params))
        for p in params:
            p.grad = None
    return torch.stack(rows), used


def write_grads(params: Sequence[nn.Parameter], flat: torch.Tensor, used: set[int]) -> None:
    """Unflatten ``flat`` into the ``.grad`` of ``params`` (None for parameters no task used)."""
    offset = 0
    for i, p in enumerate(params):
        n = p.numel()
        if i in used:
            p.grad = flat[offset:offset + n].view_as(p).to(p.dtype).clone()
        else:
            p.grad = None
        offset += n
