"""Checkpoints written atomically, with every RNG state, so ``--resume`` continues exactly."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsbench.diskspace import disk_full, nearly_full
from rsbench.errors import InputError


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
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
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same user error
        raise InputError(f"{path} cannot be read ({type(exc).__name__}: {exc}); delete it to "
                         "start the run over") from None


def payload(state, config: dict) -> dict[str, Any]:
    """What a checkpoint of ``state`` (a :class:`rsbench.training.loop.TrainState`) holds."""
    return {"model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(), "scaler": state.scaler.state_dict(),
            "epoch": state.epoch, "rng": rng_state(), "history": state.history,
            "config": config}


def restore(state, saved: dict[str, Any]) -> None:
    """Put a loaded checkpoint back into ``state`` (weights, optimiser, epoch, RNG streams)."""
    state.model.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    state.scaler.load_state_dict(saved["scaler"])
    state.history = list(saved["history"])
    state.epoch = int(saved["epoch"])
    set_rng_state(saved["rng"])
