"""One run's folder: its paths, ``config.json``, ``run.log``, ``history.csv``, ``metrics.json``.

``metrics.json`` is written last and atomically: a folder without it is an unfinished run.
Every file is written through a temporary file and a rename, so a kill never leaves half a file.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from rsbench.datasets.format import atomic_write_text, json_default
from rsbench.progress import is_quiet

METRICS_FILE = "metrics.json"
CHECKPOINT = "checkpoint.pt"
CONFIG_FILE = "config.json"
HISTORY = "history.csv"
LOG = "run.log"
PREVIOUS_METRICS = "metrics.previous.json"


def clean_json(obj: Any) -> Any:
    """NaN/inf -> None so metrics.json is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    return obj


class Logger:
    """Appends time-stamped lines to the run's log file and echoes them (rank 0 only)."""

    def __init__(self, path: Path | None, echo: bool):
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        line = f"{_dt.datetime.now().isoformat(timespec='seconds')} {msg}"
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        if self.echo and not is_quiet():
            print(msg, file=sys.stderr, flush=True)


class RunFolder:
    """The files of one run folder (``path``), read and written in one place."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def finished(self) -> bool:
        return (self.path / METRICS_FILE).exists()

    @property
    def interrupted(self) -> bool:
        return not self.finished and self.checkpoint.exists()

    def read_config(self) -> dict:
        """The stored config.json, or {} when there is none."""
        p = self.path / CONFIG_FILE
        return json.loads(p.read_text()) if p.exists() else {}

    def read_metrics(self) -> dict:
        return json.loads((self.path / METRICS_FILE).read_text())

    def write_config(self, conf: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / CONFIG_FILE, json.dumps(conf, indent=2,
                                                              default=json_default))

    def retire_metrics(self) -> None:
        """Training further: the old final metrics become ``metrics.previous.json``."""
        if self.finished:
            os.replace(self.path / METRICS_FILE, self.path / PREVIOUS_METRICS)

    def write_history(self, history: list[dict]) -> None:
        keys: list[str] = []
        for h in history:
            keys += [k for k in h if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
        atomic_write_text(self.path / HISTORY, buf.getvalue())

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_text(self.path / METRICS_FILE,
                          json.dumps(clean_json(metrics), indent=2, default=json_default))

    def logger(self, echo: bool = True) -> Logger:
        return Logger(self.path / LOG, echo)
