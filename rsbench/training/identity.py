"""Run identity: a fingerprint of every setting that changes a run's results.

``settings`` holds the resolved benchmark config (every override included: --epochs, --lr,
--batch-size, --input-size, --set, the weighting), the model and its constructor arguments
(``model``), the starting weights (a file's SHA-256, or the source run's fingerprint and seed
for ``--from``), ``--frozen``, ``--max-train-batches`` and the dataset (SHA-256 of its
``dataset.json``). The seed is not part of it: runs that differ only in seed share a
fingerprint. Where a run computes (device, AMP, processes, workers) is recorded in config.json
but not fingerprinted, nor are settings that only change what is logged (``eval_every``).
``non_default`` lists, as dotted keys, the settings that differ from the benchmark's shipped
config and the model's defaults (empty for a run at the benchmark's own settings).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsbench.errors import InputError

# config keys that do not change results (descriptions, report layout, how often progress is
# evaluated, the record of --set whose values are already in the config itself)
NOT_RESULTS = frozenset({"description", "report", "unstated", "dataset", "method_suffix",
                         "settings", "eval_every", "eval_batch_size", "val_split"})
# identity keys never listed as non-default: the data and model the run was given, and the
# starting weights (the method's name already says "+pretrained", "-frozen", "-transfer")
NOT_CHOSEN = ("dataset_sha256", "model", "weights", "from_run", "frozen")


def sha256_bytes(path: Path) -> str:
    """SHA-256 of a file's bytes, in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(settings: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the settings as canonical JSON."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and scalars are leaves)."""
    if isinstance(obj, Mapping) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj} if prefix else {}


def start_settings(weights: str | None, from_run: str | None, *, frozen: bool = False,
                   max_train_batches: int | None = None) -> dict[str, Any]:
    """Where the weights start: a file's SHA-256 (not its path, so the same file anywhere is
    the same setting), or the ``--from`` run's fingerprint and seed."""
    if weights and weights != "imagenet":
        if not Path(weights).is_file():
            raise InputError(f"--weights {weights} does not exist; give a local ImageNet "
                             "weights file (e.g. torchvision's resnet34 .pth) or 'imagenet' "
                             "to download torchvision's")
        weights = {"sha256": sha256_bytes(Path(weights))}
    source = None
    if from_run:
        from rsbench.training.run_config import read_run_config

        conf_path = Path(from_run) / "config.json"
        src = read_run_config(conf_path) if conf_path.exists() else None  # checked: typed
        ident = src.identity if src else None
        source = {"fingerprint": ident.fingerprint if ident else str(Path(from_run).resolve()),
                  "seed": src.summary.seed if src else None}
    return {"weights": weights, "from_run": source, "frozen": frozen,
            "max_train_batches": max_train_batches}


def results_settings(cfg: Mapping[str, Any], *, model_spec: Mapping[str, Any],
                     start: Mapping[str, Any], dataset_sha256: str) -> dict[str, Any]:
    """Everything that changes a run's results (see the module docstring)."""
    config = {k: v for k, v in cfg.items() if k not in NOT_RESULTS}
    return {**json.loads(json.dumps(config, default=str)), **start,
            "model": {"name": model_spec["name"],
                      "kwargs": {k: v for k, v in model_spec.get("kwargs", {}).items()
                                 if k != "weights"},  # the file's hash is in "weights"
                      "added": model_spec.get("added", [])},
            "dataset_sha256": dataset_sha256}


def non_default(settings: Mapping[str, Any], default: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys (and this run's values) where ``settings`` differs from ``default``."""
    mine, base = flatten(settings), flatten(default)
    out = {}
    for key in sorted(set(mine) | set(base)):
        if key.split(".")[0] in NOT_CHOSEN:
            continue
        if json.dumps(mine.get(key), sort_keys=True) != json.dumps(base.get(key),
                                                                   sort_keys=True):
            out[key] = mine.get(key)
    return out


def identity(settings: dict[str, Any], default: Mapping[str, Any]) -> dict[str, Any]:
    """config.json's ``identity`` block: fingerprint, settings, non-default settings."""
    return {"fingerprint": fingerprint(settings), "settings": settings,
            "non_default": non_default(settings, default)}
