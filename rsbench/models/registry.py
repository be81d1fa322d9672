"""The model registry: each model file marks its factory with ``@register_model("name")``
(timm style); every module of this package is imported once, on first use of the registry."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

_FACTORIES: dict[str, Callable[..., Any]] = {}
_loaded = False


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``factory(tasks, **options) -> MultiTaskModel`` as model ``name``."""

    def add(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _FACTORIES and _FACTORIES[name] is not factory:
            raise ValueError(f"model {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return add


def model_factories() -> dict[str, Callable[..., Any]]:
    """Every registered model's factory by name (imports the package's modules once)."""
    global _loaded
    if not _loaded:
        import rsbench.models as package

        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
        _loaded = True
    return dict(_FACTORIES)
