"""What a launch did with each run: ``OUT/.rsbench-launch/<key hash>.json``, one small JSON per
job (state, PID or SLURM job id, log, last error, start and end times), rewritten atomically.

The run folder stays the truth about a run (``metrics.json`` = done, its lock = training); the
ledger adds what the folder cannot say: that a run was queued, failed (and with what line),
skipped, or sits in a SLURM queue.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from rsbench.datasets.format.manifest import atomic_write_text

LEDGER = ".rsbench-launch"
STATES = ("queued", "submitted", "waiting", "running", "done", "failed", "skipped",
          "interrupted")


def ledger_dir(out: str | Path) -> Path:
    return Path(out) / LEDGER


def record_path(out: str | Path, key: str) -> Path:
    return ledger_dir(out) / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def read_record(out: str | Path, key: str) -> dict[str, Any]:
    """The job's record, or {} when there is none (or it cannot be read)."""
    try:
        rec = json.loads(record_path(out, key).read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) and rec.get("key") == key else {}


def all_records(out: str | Path) -> list[dict[str, Any]]:
    """Every readable record of the runs folder ``out``, oldest first."""
    recs = []
    for p in sorted(ledger_dir(out).glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("key"), str):
            recs.append(rec)
    return sorted(recs, key=lambda r: r.get("planned", 0))


def update(out: str | Path, key: str, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the job's record (created if absent) and write it."""
    rec = read_record(out, key) or {"key": key, "planned": time.time()}
    rec.update(fields)
    path = record_path(out, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(rec, indent=1))
    return rec


def log_path(out: str | Path, key: str) -> Path:
    """Where a local launch writes the job's output (linked from the run folder)."""
    return ledger_dir(out) / "logs" / f"{record_path(out, key).stem}.log"


def last_error(log: str | Path | None) -> str | None:
    """The error line a run printed last (``rsbench: error: ...``) in its log, else the last
    non-empty line; None without a readable log."""
    try:
        lines = [ln.strip() for ln in Path(log).read_text(errors="replace").splitlines()
                 if ln.strip()] if log else []
    except OSError:
        return None
    errors = [ln for ln in lines if ln.startswith("rsbench: error:") or "Error" in ln[:40]]
    line = (errors or lines or [None])[-1]
    return line.removeprefix("rsbench: error: ") if line else None
