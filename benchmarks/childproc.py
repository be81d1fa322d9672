"""Shared by the benchmark scripts: time a child process and read its peak memory."""

from __future__ import annotations

import os
import subprocess
import time


def timed(cmd: list[str], env: dict | None = None,
          cwd: str | os.PathLike | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, from ``os.wait4``) of the child process ``cmd``, run in
    ``cwd`` (``python -m`` imports from its working folder before PYTHONPATH)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024
