"""Where a run computes: device choice, mixed precision (autocast dtype) and global seeding."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from rsbench.errors import UsageError
from rsbench.training.distributed import DistInfo


def pick_device(name: str, info: DistInfo | None = None) -> torch.device:
    """``auto``: the GPU when there is one (this rank's under torchrun), else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA GPU is visible; "
                             "use --device auto or cpu")
        return torch.device("cuda", info.local_rank if info else torch.cuda.current_device())
    if name != "cpu":
        raise UsageError(f"--device {name!r} is not one of auto, cpu, cuda")
    return torch.device("cpu")


def amp_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """Autocast dtype: bf16 where supported (fp16 on older GPUs); off on CPU unless asked."""
    if amp is None:
        amp = device.type == "cuda"
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16


def amp_name(dtype: torch.dtype | None) -> str | None:
    """The autocast dtype as config.json / metrics.json record it ("bfloat16", or None)."""
    return str(dtype).replace("torch.", "") if dtype else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast context for ``dtype`` on ``device``; a no-op context when AMP is off."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A gradient scaler, active only for fp16 (bf16 and fp32 need no loss scaling)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so model initialisation is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def memory_format_(model: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    """Lay the model's 4-D tensors (2-D convolution weights) out channels-last, or back to
    contiguous, in place. ``Module.to(memory_format=...)`` refuses models with 3-D convolutions
    (5-D weights: Mõttus's and Pham's CNNs), whose tensors keep their layout here."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with torch.no_grad():
        for t in (*model.parameters(), *model.buffers()):
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=fmt)
    return model

