"""Models, registered by name. Add a model: one file in this folder whose factory carries
``@register_model("name")`` (``rsbench/models/registry.py``); nothing else to edit.

A factory is called as ``factory(tasks: list[TaskInfo], **options)`` and returns a
``MultiTaskModel``. Every module of this package is imported on the registry's first use.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from rsbench.errors import UsageError
from rsbench.models.registry import model_factories, register_model

__all__ = ["architecture_of", "available_models", "build_model", "check_options",
           "default_weighting", "model_factories", "model_label", "register_model",
           "starts_from_weights", "takes_option"]


def available_models() -> list[str]:
    return sorted(model_factories())


def build_model(name: str, tasks: Sequence[Any], **options: Any):
    """Instantiate the registered model ``name`` for ``tasks``."""
    factories = model_factories()
    if name not in factories:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(available_models())}")
    factory = factories[name]
    check_options(name, factory, options)
    return factory(list(tasks), **options)


def takes_option(name: str, option: str) -> bool:
    """Whether model ``name``'s factory takes ``option`` (by name, or through ``**options``)."""
    factory = model_factories().get(name)
    if factory is None:
        return False
    params = list(inspect.signature(factory).parameters.values())[1:]
    return any(p.name == option or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def architecture_of(name: str) -> str:
    """The model whose networks ``name`` builds (its factory's ``architecture``, e.g.
    fine-tune's is single-task: only the starting weights differ); ``name`` itself otherwise."""
    factory = model_factories().get(name)
    return getattr(factory, "architecture", name) if factory else name


def starts_from_weights(name: str) -> bool:
    """Whether model ``name`` is defined by starting from given weights (fine-tune: ImageNet),
    so its runs need ``--weights`` and are not a separate "+pretrained" method."""
    factory = model_factories().get(name)
    return bool(getattr(factory, "starts_from_weights", False)) if factory else False


def model_label(name: str) -> str:
    """The name reports show for model ``name`` (its factory's ``label``, e.g. ``MMoE`` for
    ``mmoe``); ``name`` itself when it has none."""
    factory = model_factories().get(name)
    return str(getattr(factory, "label", name)) if factory else name


def default_weighting(name: str) -> str | None:
    """The task weighting a model is defined with (its factory's ``default_weighting``, e.g.
    ``uncertainty``), or None when the benchmark's weighting applies."""
    factory = model_factories().get(name)
    return getattr(factory, "default_weighting", None) if factory else None


def check_options(name: str, fn: Any, options: Mapping[str, Any]) -> None:
    """A one-line UsageError for options ``fn`` does not take (its first parameter, the tasks,
    excluded); nothing to check when it takes ``**options``."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise UsageError(f"model {name!r} takes no option {unknown[0]!r} (from the benchmark's "
                         f"model_options or --set); its options: {', '.join(known) or 'none'}. "
                         "Is it a model for this benchmark? `rsbench models list` says")
