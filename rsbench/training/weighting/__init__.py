"""Task weightings, one file per method, each registering itself with ``@register_weighting``.

A weighting performs the backward pass of a step from the task losses (see ``base.py``); the
runner calls ``weighting.backward(losses, shared, scaler, extra)``. Adding a method is one new
file in this folder: every module here is imported, so its registration runs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Mapping, Sequence
from typing import Any

from rsbench.errors import UsageError
from rsbench.training.weighting.base import (
    WEIGHTINGS,
    GradientWeighting,
    LossWeighting,
    Weighting,
    register_weighting,
)

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["WEIGHTINGS", "GradientWeighting", "LossWeighting", "Weighting", "available_weightings",
           "build_weighting", "choose_weighting", "register_weighting"]


def available_weightings() -> list[str]:
    return sorted(WEIGHTINGS)


def choose_weighting(cfg: dict, model: str, name: str | None = None,
                     alpha: float | None = None) -> dict:
    """Settle the run's weighting in ``cfg`` (in place) and return it.

    The default is the model's own weighting (``uncertainty`` for the MTLN paper's uncertainty
    row), else the benchmark's ``"weighting"`` (``equal`` unless its config says otherwise).
    ``name`` (``--weighting``) replaces it and ``alpha`` (``--gradnorm-alpha``) sets GradNorm's
    alpha; either makes the method ``MODEL+NAME`` (``cfg["method_suffix"]``) when the result is
    not the default. Called again without ``name``/``alpha`` on a settled config: no change.
    """
    if name is None and alpha is None and "method_suffix" in cfg:
        return cfg["weighting"]
    from rsbench.models import default_weighting

    bench = dict(cfg.get("weighting") or {"name": "equal"})
    own = default_weighting(model)
    default = {"name": own} if own and own != bench.get("name") else bench
    chosen = name or default["name"]
    if chosen not in WEIGHTINGS:
        raise UsageError(f"unknown weighting {chosen!r}; choose one of: "
                         f"{', '.join(available_weightings())}")
    weighting = dict(default) if chosen == default["name"] else {"name": chosen}
    if alpha is not None:
        weighting["alpha"] = alpha
    cfg["weighting"] = weighting
    cfg["method_suffix"] = (f"+{chosen}" + (f"{alpha:g}" if alpha is not None else "")
                            if chosen != default["name"] or alpha is not None else "")
    return weighting


def build_weighting(name: str, task_names: Sequence[str], task_types: Mapping[str, str],
                    **options: Any) -> Weighting:
    """The registered weighting ``name`` for these tasks; ``options`` are its keyword options
    (the benchmark config's ``"weighting"`` entries besides ``name``)."""
    if name not in WEIGHTINGS:
        raise UsageError(f"unknown weighting {name!r}; choose one of: "
                         f"{', '.join(available_weightings())}")
    cls = WEIGHTINGS[name]
    known = [p for p in inspect.signature(cls.__init__).parameters
             if p not in ("self", "task_names", "task_types")]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise UsageError(f"weighting {name!r} takes no option {unknown[0]!r} (from the "
                         f"benchmark's \"weighting\" or --set weighting.{unknown[0]}=...); its "
                         f"options: {', '.join(known) or 'none'}")
    return cls(task_names, task_types, **options)
