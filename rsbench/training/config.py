"""Benchmark configs: one JSON file per benchmark in ``rsbench/configs/``, overridden by options.

A config holds the paper's settings (input size, optimiser, learning rate, batch size, epochs),
the dataset ``name`` it expects, and per task type the loss and metric to use. Anything custom
(a loss, a metric, a batch reader, an input preparation) is a dotted path ``"module:attr"``, so a
new benchmark is one new JSON file and nothing else.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rsbench.errors import InputError, UsageError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

# Filled in for every benchmark unless its file says otherwise.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "dataset": {"names": []},
    "tasks": None,                   # None = every task of the dataset
    "backbone": None,                # None = the model's default
    "input_size": 224,
    "optimizer": {"name": "adam", "lr": 1e-4, "weight_decay": 0.0},
    "scheduler": None,               # None (constant lr) | {"name": "cosine"} | {"name": "step", ...}
    "batch_size": 32,
    "batching": "per-task",          # multitask steps: per-task | proportional (training/data.py)
    "epochs": 30,
    "train_split": "train",
    "test_split": "test",
    "val_split": "val",              # progress evaluation reads it when the dataset has it
    "eval_every": 0,                 # evaluate progress every N epochs (0 = only at the end)
    "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "scale": 255.0},
    "augment": {"hflip": True, "vflip": True},
    "image_array": "image",
    "task_types": {
        "classification": {"loss": "cross_entropy", "metric": "classification"},
        "segmentation": {"loss": "cross_entropy", "metric": "segmentation"},
        "regression": {"loss": "mse", "metric": "regression"},
    },
    "task_options": {},              # per task name: overrides of its type's settings
    "weighting": {"name": "equal"},  # task weighting (rsbench/training/weighting/) + options
    "batch_reader": None,            # dotted path: custom reader factory (see training/data.py)
    "prepare": None,                 # dotted path: custom on-device input preparation
    "transfer": None,                # {"from_benchmark": "msc", "init_branch": "merced"}: the
                                     # benchmark --from runs must be of, and the branch a new
                                     # task branch starts from
    "unstated": {},                  # {setting: sentence}: what the paper does not state
}


def available_benchmarks() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def read_config(name: str, _seen: tuple[str, ...] = ()) -> dict:
    """The JSON of benchmark ``name`` with its ``"extends"`` resolved: the base benchmark's
    config, then each key this file gives merged over it (mappings key by key, anything else
    replaced; a key set to null removes the base's value, so the defaults apply)."""
    path = CONFIG_DIR / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); fix the benchmark config") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path} holds no JSON object; a benchmark config is {{\"key\": value, ...}}")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not (CONFIG_DIR / f"{base}.json").exists():
        raise InputError(f"{path}: \"extends\": {json.dumps(base)} names no benchmark; give one of: "
                         f"{', '.join(available_benchmarks())}")
    if base in (*_seen, name):
        raise InputError(f"{path}: \"extends\" goes round in a circle "
                         f"({' -> '.join((*_seen, name, base))}); one of them must not extend")
    return _merge(read_config(base, (*_seen, name)), raw, drop_nulls=True)


def lineage(name: str) -> list[str]:
    """``name`` and the benchmarks it ``extends``, nearest first (mini-msc -> [mini-msc, msc]);
    an unknown name is just itself."""
    chain: list[str] = []
    while name and name not in chain and (CONFIG_DIR / f"{name}.json").exists():
        chain.append(name)
        try:
            base = json.loads((CONFIG_DIR / f"{name}.json").read_text()).get("extends")
        except (json.JSONDecodeError, AttributeError):
            break  # read_config names the broken file when the benchmark is loaded
        name = base if isinstance(base, str) else ""
    return chain or [name]


def _merge(base: dict, over: Mapping, drop_nulls: bool = False) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if drop_nulls and v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), dict) and k != "scheduler":
            out[k] = _merge(out[k], v, drop_nulls)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_benchmark(name: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """The resolved config of benchmark ``name``: defaults < its JSON file < ``overrides``.

    ``overrides`` entries that are None are ignored, so unset command-line options keep the
    benchmark's values.
    """
    if not (CONFIG_DIR / f"{name}.json").exists():
        raise UsageError(f"unknown benchmark {name!r}; choose one of: "
                         f"{', '.join(available_benchmarks())}")
    raw = read_config(name)
    cfg = _merge(DEFAULTS, raw)
    cfg["benchmark"] = name
    for k, v in (overrides or {}).items():
        if v is None:
            continue
        if k == "lr":
            cfg["optimizer"]["lr"] = float(v)
        else:
            cfg[k] = v
    return cfg


def apply_settings(cfg: dict, items: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set KEY=VALUE`` items to ``cfg`` in place; returns them as {key: value}.

    KEY is a dotted path into the config (``model_options.width``,
    ``task_types.classification.loss_options.gamma``); its first part must be a config key
    (or ``model_options``), missing inner levels are created. VALUE is read as JSON (numbers,
    true/false, null, lists, objects) and otherwise kept as a string.
    """
    applied: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise UsageError(f"--set {item!r}: write KEY=VALUE with a dotted KEY, e.g. "
                             "--set model_options.width=16")
        top = sorted({*cfg, "model_options"} - {"benchmark", "description"})
        if parts[0] not in top:
            raise UsageError(f"--set {item!r}: the config has no key {parts[0]!r}; its keys: "
                             f"{', '.join(top)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = cfg
        for i, part in enumerate(parts[:-1]):
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise UsageError(f"--set {item!r}: {'.'.join(parts[:i + 1])} is "
                                 f"{node[part]!r}, not a group of settings")
            node = node[part]
        node[parts[-1]] = value
        applied[key.strip()] = value
    return applied


def task_settings(cfg: Mapping[str, Any], task: str, task_type: str) -> dict:
    """Loss/metric settings of one task: its type's defaults, then per-task overrides."""
    base = dict(cfg["task_types"].get(task_type, {}))
    base.update(cfg.get("task_options", {}).get(task, {}))
    return base


def resolve(dotted: str) -> Any:
    """Import ``"package.module:attr"`` (or ``"package.module.attr"``)."""
    module, _, attr = dotted.partition(":") if ":" in dotted else dotted.rpartition(".")
    if not module or not attr:
        raise UsageError(f"{dotted!r} named in the benchmark config is neither a registered "
                         "name nor a 'package.module:attr' path; use one of the names its "
                         "section lists in the README")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot import {dotted!r} named in the benchmark config ({exc})") from None
