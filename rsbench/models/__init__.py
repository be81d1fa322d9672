"""Models, registered by name. Add a model: one file in this folder plus one line in MODELS.

``MODELS`` maps a registered name to ``"module:factory"``; the factory is called as
``factory(tasks: list[TaskInfo], **options)`` and returns a ``MultiTaskModel``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from rsbench.errors import UsageError

MODELS: dict[str, str] = {
    "hsi-mtl": "rsbench.models.hsi_mtl:build",
    "hsi-mtl-baseline": "rsbench.models.hsi_mtl:build_baseline",
    "hsi-mtl-r": "rsbench.models.hsi_mtl:build_r",
    "hsi-mtl-rd": "rsbench.models.hsi_mtl:build_rd",
    "hsi-mtl-rda": "rsbench.models.hsi_mtl:build_rda",
    "hsi-mtl-dac": "rsbench.models.hsi_mtl:build_dac",
    "hsi-single-task": "rsbench.models.hsi_single_task:build",
    "unet": "rsbench.models.hsi_unet:build",
    "segnet": "rsbench.models.hsi_segnet:build",
    "res-unet": "rsbench.models.hsi_resunet:build",
    "deeplabv3plus": "rsbench.models.hsi_deeplabv3plus:build",
    "mottus-3dcnn": "rsbench.models.mottus_3dcnn:build",
    "pham-cnn": "rsbench.models.pham_cnn:build",
    "gsc-vit": "rsbench.models.gsc_vit:build",
    "mstnet": "rsbench.models.mstnet:build",
    "spectraldiff": "rsbench.models.spectraldiff:build",
    "mtln": "rsbench.models.mtln:build_mtln",
    "single-task": "rsbench.models.single_task:build_single_task",
    "fine-tune": "rsbench.models.fine_tune:build_fine_tune",
    "shared-specific": "rsbench.models.shared_specific:build_shared_specific",
    "baseline-attention": "rsbench.models.baseline_attention:build_baseline_attention",
    "cross-stitch": "rsbench.models.cross_stitch:build_cross_stitch",
    "uncertainty": "rsbench.models.uncertainty:build_uncertainty",
    "den": "rsbench.models.den:build_den",
}


def available_models() -> list[str]:
    return sorted(MODELS)


def build_model(name: str, tasks: Sequence[Any], **options: Any):
    """Instantiate the registered model ``name`` for ``tasks``."""
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(available_models())}")
    module, attr = MODELS[name].split(":")
    factory = getattr(importlib.import_module(module), attr)
    check_options(name, factory, options)
    return factory(list(tasks), **options)


def default_weighting(name: str) -> str | None:
    """The task weighting a model is defined with (its factory's ``default_weighting``, e.g.
    ``uncertainty``), or None when the benchmark's weighting applies."""
    if name not in MODELS:
        return None
    module, attr = MODELS[name].split(":")
    return getattr(getattr(importlib.import_module(module), attr), "default_weighting", None)


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
