"""The shared-representation gradient mode of the gradient weightings (``rep_grad=True``,
LibMTL's ``rep_grad``): per-task gradients w.r.t. the feature map the heads read, not w.r.t.
the shared parameters.

A model offers the mode by returning, from ``shared_representation()``, the feature map of its
last forward call through which every shared parameter reaches every loss (the shared-specific
network's last backbone feature with scene heads, the HSI FC models' shared FC output); models
without one (``has_shared_representation()`` false: MTLN, whose shared extractors run inside the
task branches, the SegNet decoders that read every block) refuse the option with one line.

Per step: the T task gradients w.r.t. the representation R (heads only, no pass through the
encoder), summed over the batch as LibMTL's ``_get_grads`` does (so tasks fed other images, as
MSC's, compare feature by feature), give the method's coefficients c; one backward of
``Σ_t L_t + Σ_t ((u_t − g_t) · R_t)`` then gives the task-specific parameters their own task's
gradient and the encoder the back-propagated ``Σ_t u_t`` (u_t = c_t g_t, or the method's own
representation update: GradDrop). Cost: T head-only backward passes plus one full one, against
T full ones in the parameter mode.

DDP: each process holds its own samples' representation; the batch-summed gradients are
averaged over processes (the global batch's sum at the global loss's scale), so every process
gets the same coefficients, and DDP's reducer averages the one backward, which gives the
update of one process on the concatenated batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from rsbench.errors import UsageError
from rsbench.training.weighting.base import all_reduce_mean_, world_size


def batch_summed(per: Sequence[torch.Tensor]) -> torch.Tensor:
    """(P, D_feature): each task's representation gradient summed over its batch, averaged over
    processes under DDP (LibMTL: ``per_grads.reshape(T, B, -1).sum(1)``)."""
    shapes = {tuple(p.shape[1:]) for p in per}
    if len(shapes) > 1:
        raise UsageError("the tasks' shared representations differ in shape "
                         f"({', '.join(str(s) for s in sorted(shapes))}), so their gradients "
                         "cannot be compared; drop --set weighting.rep_grad=true")
    H = torch.stack([p.float().reshape(p.shape[0], -1).sum(0) for p in per])
    return all_reduce_mean_(H) if world_size() > 1 else H


class RepresentationCapture:
    """Records, after each training forward call of ``model``, the tasks it answered and its
    shared representation; :meth:`backward` consumes them."""

    def __init__(self, model: nn.Module):
        has = getattr(model, "has_shared_representation", None)
        if not (callable(has) and has()):
            raise UsageError(f"model {type(model).__name__} has no single feature map that all "
                             "its heads read, so weighting.rep_grad does not apply (models with "
                             "one: shared-specific on scene tasks, mottus-3dcnn, pham-cnn); drop "
                             "--set weighting.rep_grad=true")
        self.records: list[tuple[tuple[str, ...], torch.Tensor]] = []
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args, output) -> None:
        if not torch.is_grad_enabled():
            return  # evaluation: nothing to differentiate
        rep = module.shared_representation()
        if rep is not None and rep.requires_grad and isinstance(output, Mapping):
            self.records.append((tuple(output), rep))

    def gradients(self, weighting, losses: Mapping[str, torch.Tensor],
                  scaler: torch.amp.GradScaler
                  ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """The present tasks' scaled losses, their gradients w.r.t. their representations
        (heads only) and those representations, in ``task_names`` order."""
        rep_of = {t: rep for tasks, rep in self.records for t in tasks}
        self.records = []
        names = [n for n in weighting.task_names if n in losses]
        lost = [n for n in names if n not in rep_of]
        if lost:
            raise UsageError(f"no shared representation was recorded for task {lost[0]!r} "
                             "(weighting.rep_grad needs the model's training forward pass)")
        scaled = [scaler.scale(losses[n].float()) for n in names]
        per = []
        for s, n in zip(scaled, names):
            (g,) = torch.autograd.grad(s, rep_of[n], retain_graph=True, allow_unused=True)
            per.append(torch.zeros_like(rep_of[n]) if g is None else g)
        return scaled, per, [rep_of[n] for n in names]

    def backward(self, weighting, losses: Mapping[str, torch.Tensor],
                 scaler: torch.amp.GradScaler, extra: torch.Tensor | None) -> None:
        L, mask = weighting._stack(losses)
        scaled, per, reps = self.gradients(weighting, losses, scaler)
        update = weighting.representation_update(per, reps, L[mask].detach())
        total = sum(scaled)
        for rep, u, g in zip(reps, update, per):
            total = total + ((u.float() - g.float()).detach() * rep.float()).sum()
        if extra is not None:
            total = total + scaler.scale(extra.float())
        total.backward()
