"""Checkpoints written atomically, with every RNG state, so ``--resume`` continues exactly.

A checkpoint holds only tensors and plain Python values (the config as a JSON string, NumPy's
RNG state as lists), so it is read back with ``torch.load(weights_only=True)``: a run folder
received from someone else can never run code when it is resumed, transferred or mapped.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsbench.datasets.format.manifest import json_default
from rsbench.diskspace import disk_full, nearly_full
from rsbench.errors import InputError


def rng_state() -> dict[str, Any]:
    """Every RNG stream of this process, as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [kind, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(gauss)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the streams saved by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` through a temporary file, so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(payload, tmp)
    except (RuntimeError, OSError) as exc:  # torch reports a full disk as a RuntimeError
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or \
                nearly_full(path.parent):
            raise disk_full(path, written) from None
        raise
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's contents, read without running any code it may hold (weights only)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(f"{path} is not a safe rsbench checkpoint (it holds objects other "
                         "than tensors and plain values); rsbench will not load it — delete "
                         "it, or use a run folder from a source you trust") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same user error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(f"{path} cannot be read ({type(exc).__name__}: {first}); delete it "
                         "to start the run over") from None
    if not isinstance(state, dict):
        raise InputError(f"{path} is not an rsbench checkpoint (it holds a "
                         f"{type(state).__name__}); delete it to start the run over")
    return state


def payload(state, config: dict) -> dict[str, Any]:
    """What a checkpoint of ``state`` (a :class:`rsbench.training.loop.TrainState`) holds."""
    return {"model": state.model.state_dict(), "weighting": state.weighting.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(), "scaler": state.scaler.state_dict(),
            "epoch": state.epoch, "rng": rng_state(), "history": state.history,
            "model_spec": json.dumps(config.get("model_spec"), default=json_default),
            "config": json.dumps(config, default=json_default)}


def restore(state, saved: dict[str, Any], path: Path | str = "checkpoint.pt") -> None:
    """Put a loaded checkpoint back into ``state`` (weights, optimiser, epoch, RNG streams);
    one line naming ``path`` when it does not fit the run (damaged or from other settings)."""
    try:
        _restore(state, saved)
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise InputError(f"{path} does not fit this run ({type(exc).__name__}: {first}); "
                         "delete it to start the run over") from None


def _restore(state, saved: dict[str, Any]) -> None:
    state.model.load_state_dict(saved["model"])
    state.weighting.load_state_dict(saved["weighting"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    state.scaler.load_state_dict(saved["scaler"])
    state.history = list(saved["history"])
    state.epoch = int(saved["epoch"])
    set_rng_state(saved["rng"])
