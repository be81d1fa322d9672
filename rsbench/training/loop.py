"""The training loop: batches -> forward -> backward -> optimiser step -> one record per epoch.

:func:`train` reads top to bottom; everything it changes lives in :class:`TrainState` (what a
checkpoint restores), everything fixed for the run in :class:`Loop`. Each step draws one batch
from each task group the epoch's plan names (:func:`rsbench.training.data.plan_epoch`: every
group, or one), runs one forward call over them (one DDP forward per step), and hands the task
losses to :func:`backward_step`, the one place that turns losses into gradients: the run's
task weighting (``rsbench.training.weighting``) performs the backward pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rsbench.progress import progress
from rsbench.training.batchnorm import keep_frozen_bn_eval
from rsbench.training.data import TaskGroup
from rsbench.training.device import autocast
from rsbench.training.distributed import DistInfo, all_reduce_sum


class GroupForward(nn.Module):
    """One forward call over every task group of a step (so DDP sees one forward per step)."""

    def __init__(self, model: nn.Module, groups: Sequence[TaskGroup]):
        super().__init__()
        self.model = model
        self.groups = list(groups)

    def forward(self, xs: Sequence[torch.Tensor], group_ids: Sequence[int]
                ) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        for gi, x in zip(group_ids, xs):
            outputs.update(self.model(x, tasks=self.groups[gi].tasks))
        return outputs


@dataclass
class TrainState:
    """What training changes, and what a checkpoint saves and restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    weighting: nn.Module  # a rsbench.training.weighting.Weighting (its state is checkpointed)
    history: list[dict] = field(default_factory=list)
    epoch: int = 0  # epochs finished


@dataclass(kw_only=True)
class Hooks:
    """What the loop calls back: ``progress_eval(epoch)`` returns the entries added to the
    epoch's record (empty when no evaluation is due); ``on_epoch_end(state, row)`` saves the
    checkpoint and history; ``on_step(step, task_losses)`` sees every step (e.g. TensorBoard)."""

    progress_eval: Callable[[int], dict] = lambda epoch: {}
    on_epoch_end: Callable[[TrainState, dict], None] = lambda state, row: None
    on_step: Callable[[int, Mapping[str, torch.Tensor]], None] | None = None


@dataclass(kw_only=True)
class Loop:
    """What stays fixed while training: data, losses, device, and the hooks (built with
    keywords).

    ``plan(epoch)`` names the groups each step of the epoch draws from (and sets the samplers);
    ``shared`` are the parameters the weighting treats as shared between tasks.
    """

    tasks: Sequence[str]
    step_module: nn.Module
    loaders: Sequence[Any]
    plan: Callable[[int], list[tuple[int, ...]]]
    prep: Callable
    losses: Mapping[str, Callable]
    epochs: int
    seed: int
    device: torch.device
    dist: DistInfo
    amp: torch.dtype | None = None
    shared: Sequence[nn.Parameter] = ()
    hooks: Hooks = field(default_factory=Hooks)


def auxiliary_loss(model: nn.Module, targets: Mapping[str, torch.Tensor]
                   ) -> torch.Tensor | None:
    """The model's own extra loss of the last training forward pass (e.g. DEN's policy
    gradient, whose reward needs each image's loss, hence the step's ``targets``), added
    unweighted to the task losses; None for models without one."""
    fn = getattr(model, "auxiliary_loss", None)
    return fn(targets) if callable(fn) else None


def backward_step(weighting: nn.Module, shared: Sequence[nn.Parameter],
                  task_losses: Mapping[str, torch.Tensor], scaler: torch.amp.GradScaler,
                  extra: torch.Tensor | None = None) -> torch.Tensor:
    """Turn the task losses into (scaler-scaled) gradients; returns their plain sum (logged).

    The weighting combines the tasks (loss weights or per-task gradients of ``shared``) and
    performs the backward pass; ``extra`` is added unweighted.
    """
    weighting.backward(dict(task_losses), list(shared), scaler, extra)
    return torch.stack([v.detach().float() for v in task_losses.values()]).sum()


def epoch_batches(loaders: Sequence[Any], plan: Sequence[tuple[int, ...]]
                  ) -> Iterator[tuple[tuple[int, ...], list[Mapping]]]:
    """(group ids, their batches) for every step of the plan, read from the groups' loaders."""
    iters = [iter(loader) for loader in loaders]
    for groups in plan:
        yield groups, [next(iters[g]) for g in groups]


def prepare_step(batches: Sequence[Mapping], prep: Callable, generator: torch.Generator
                 ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """One batch per drawn task group -> device inputs (one per group) and their targets."""
    xs, targets = [], {}
    for b in batches:
        x, tg = prep(b, train=True, generator=generator)
        xs.append(x)
        targets.update(tg)
    return xs, targets


def epoch_record(loop: Loop, epoch: int, sums: torch.Tensor, counts: torch.Tensor,
                 samples: int, seconds: float) -> dict[str, Any]:
    """The epoch's row of history.csv: mean losses over steps and ranks, time, throughput."""
    all_reduce_sum(sums, loop.dist)
    all_reduce_sum(counts, loop.dist)
    n = torch.tensor([samples], dtype=torch.float64)
    all_reduce_sum(n, loop.dist)
    vals = (sums / counts.clamp(min=1)).tolist()
    row: dict[str, Any] = {"epoch": epoch + 1, "loss": vals[0],
                           **{f"loss_{t}": v for t, v in zip(loop.tasks, vals[1:])}}
    if vals[-1]:
        row["loss_auxiliary"] = vals[-1]
    return {**row, "seconds": seconds, "samples": int(n.item()),
            "samples_per_s": float(n.item()) / seconds if seconds else math.nan}


def train(loop: Loop, state: TrainState) -> None:
    """Train from ``state.epoch`` to ``loop.epochs``, one record (and checkpoint) per epoch."""
    gen = torch.Generator(device=loop.device)
    for epoch in range(state.epoch, loop.epochs):
        plan = loop.plan(epoch)
        gen.manual_seed(loop.seed * 1_000_003 + epoch)  # this epoch's flips, whatever came before
        set_epoch = getattr(state.model, "set_epoch", None)
        if callable(set_epoch):  # models whose training changes with the epoch (SpectralDiff)
            set_epoch(epoch)
        loop.step_module.train()
        keep_frozen_bn_eval(state.model)
        # sums: summed task losses, each task's loss, auxiliary loss
        sums = torch.zeros(len(loop.tasks) + 2, dtype=torch.float64, device=loop.device)
        # steps each entry of sums was added over: known on the host, kept there (a tensor made
        # on the GPU each step would wait for the GPU every step)
        counts = torch.zeros(len(loop.tasks) + 2, dtype=torch.float64)
        samples, t0 = 0, time.perf_counter()
        steps = epoch_batches(loop.loaders, plan)
        if loop.dist.main:
            steps = progress(steps, total=len(plan), desc=f"epoch {epoch + 1}/{loop.epochs}")
        for i, (group_ids, batches) in enumerate(steps):
            xs, targets = prepare_step(batches, loop.prep, gen)
            samples += sum(x.shape[0] for x in xs)
            with autocast(loop.device, loop.amp):
                outputs = loop.step_module(xs, group_ids)
            task_losses = {t: loop.losses[t](outputs[t], targets[t]) for t in loop.tasks
                           if t in outputs}
            extra = auxiliary_loss(state.model, targets)
            state.optimizer.zero_grad(set_to_none=True)
            total = backward_step(state.weighting, loop.shared, task_losses, state.scaler,
                                  extra)
            state.scaler.step(state.optimizer)
            state.scaler.update()
            if loop.hooks.on_step is not None:
                loop.hooks.on_step(epoch * len(plan) + i, task_losses)
            zero = total.new_zeros((), dtype=torch.float64)
            sums += torch.stack([total.double()]
                                + [task_losses[t].detach().double() if t in task_losses
                                   else zero for t in loop.tasks]
                                + [extra.detach().double() if extra is not None else zero])
            counts += torch.tensor([1.0] + [float(t in task_losses) for t in loop.tasks] + [1.0],
                                   dtype=torch.float64)
        if loop.device.type == "cuda":
            torch.cuda.synchronize(loop.device)
        row = epoch_record(loop, epoch, sums, counts.to(loop.device), samples,
                           time.perf_counter() - t0)
        row["lr"] = state.optimizer.param_groups[0]["lr"]
        # the weights used this epoch (mean over its steps), then the per-epoch update (DWA)
        row.update({f"weight_{t}": w for t, w in state.weighting.weights().items()})
        state.weighting.epoch_end({t: row[f"loss_{t}"] for t in loop.tasks})
        state.scheduler.step()
        row.update(loop.hooks.progress_eval(epoch))
        state.history.append(row)
        state.epoch = epoch + 1
        loop.hooks.on_epoch_end(state, row)
