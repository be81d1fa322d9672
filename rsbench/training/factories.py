"""Optimiser and learning-rate schedule factories: small registries keyed by the config's name.

A benchmark config names an optimiser (``"optimizer": {"name": "adam", "lr": ..., **kwargs}``)
and a per-epoch schedule (``"scheduler": null | "cosine" | {"name": "step", ...}``); a name
not registered here is a dotted path ``"module:attr"`` to a factory with the same signature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from rsbench.errors import UsageError
from rsbench.training.config import resolve

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def _constant(optimizer, epochs: int, **_):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)


def _cosine(optimizer, epochs: int, **_):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))


def _step(optimizer, epochs: int, step_size: int, gamma: float = 0.1, **_):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(step_size),
                                           gamma=float(gamma))


SCHEDULERS: dict[str, Callable[..., Any]] = {
    "constant": _constant,
    "cosine": _cosine,
    "step": _step,
}


def make_optimizer(cfg: Mapping[str, Any], params: Iterable) -> torch.optim.Optimizer:
    """The config's optimiser over ``params`` (the paper's: Adam)."""
    opt = dict(cfg["optimizer"])
    name = str(opt.pop("name", "adam"))
    lr = float(opt.pop("lr"))
    factory = OPTIMIZERS.get(name.lower()) or _resolve(name, OPTIMIZERS, "optimizer")
    return factory(params, lr=lr, **opt)


def make_scheduler(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer, epochs: int):
    """Per-epoch learning-rate schedule; the paper's is constant."""
    sched = cfg.get("scheduler") or {}
    options = dict(sched) if isinstance(sched, Mapping) else {"name": sched}
    name = options.pop("name", None) or "constant"
    factory = SCHEDULERS.get(name) or _resolve(str(name), SCHEDULERS, "scheduler")
    return factory(optimizer, epochs=epochs, **options)


def _resolve(name: str, registered: Mapping[str, Any], what: str) -> Callable[..., Any]:
    """A factory named by a dotted path, or one line naming the registered choices."""
    if ":" not in name and "." not in name:
        raise UsageError(f"unknown {what} {name!r} in the benchmark config; choose one of "
                         f"{', '.join(sorted(registered))} or give a 'package.module:attr' path")
    return resolve(name)
