"""How runs are launched (``--jobs``, ``--launcher``, the SLURM resources): one object that
``reproduce`` and ``run`` fill from their options and hand to a launcher."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rsbench.errors import UsageError


@dataclass
class LaunchOptions:
    launcher: str = "local"  # local | slurm | submitit-local
    jobs: int = 1
    gpus_per_run: int | None = None
    threads_per_run: int | None = None
    partition: str | None = None
    account: str | None = None
    time: str = "24:00:00"
    mem: str | None = None
    cpus_per_run: int | None = None
    sbatch: tuple[str, ...] = ()
    slurm_setup: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def check(self) -> LaunchOptions:
        """Raise the one-line UsageError of a SLURM option that cannot be right, before
        anything is planned or submitted."""
        time_minutes(self.time)
        mem_gb(self.mem)
        sbatch_lines(self.sbatch)
        return self

    @property
    def parallel(self) -> bool:
        """Runs go to processes of their own (anything but the serial default)."""
        return self.launcher != "local" or self.jobs > 1


def time_minutes(value: str) -> int:
    """SLURM's time formats (MINUTES, HH:MM:SS, MM:SS, D-HH[:MM[:SS]]) in whole minutes."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value.strip())
    if not m:
        raise UsageError(f"--time {value!r} is not a SLURM time; give MINUTES, HH:MM:SS or "
                         "D-HH:MM:SS (e.g. --time 2-00:00:00)")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:
        hours, minutes, seconds = a, b or 0, c or 0
    elif b is None:
        hours, minutes, seconds = 0, a, 0
    elif c is None:
        hours, minutes, seconds = 0, a, b
    else:
        hours, minutes, seconds = a, b, c
    total = (days or 0) * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    if total < 1:
        raise UsageError(f"--time {value!r} is shorter than a minute")
    return total


def mem_gb(value: str | None) -> float | None:
    """``--mem 32G`` / ``32000M`` / ``1T`` in GB (SLURM's suffixes; no suffix: MB)."""
    if value is None:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)B?", value.strip().upper())
    if not m:
        raise UsageError(f"--mem {value!r} is not a memory size; give e.g. 32G or 16000M")
    scale = {"K": 1 / 1024 ** 2, "M": 1 / 1024, "": 1 / 1024, "G": 1, "T": 1024}[m.group(2)]
    return float(m.group(1)) * scale


def sbatch_lines(values: tuple[str, ...]) -> dict[str, str]:
    """``--sbatch qos=high --sbatch constraint=a100`` -> {"qos": "high", ...} (#SBATCH lines)."""
    out = {}
    for v in values:
        key, sep, val = v.lstrip("-").partition("=")
        if not key or not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise UsageError(f"--sbatch {v!r}: give an sbatch option as KEY=VALUE or KEY, "
                             "e.g. --sbatch qos=high or --sbatch exclusive")
        out[key.replace("-", "_")] = val if sep else ""
    return out
