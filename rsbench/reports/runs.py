"""Finished runs read back from a runs folder (``<runs>/<benchmark>/<method>/<seed>/metrics.json``).

Only complete runs count: a folder without ``metrics.json`` (stopped or still training) is
listed as unfinished and never contributes a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rsbench.errors import InputError


@dataclass
class RunResult:
    benchmark: str
    method: str
    seed: str
    metrics: dict
    path: Path


@dataclass
class RunSet:
    """Every finished run, plus the unfinished folders seen (for a note under the table)."""

    runs: list[RunResult] = field(default_factory=list)
    unfinished: list[Path] = field(default_factory=list)

    def of(self, benchmark: str, method: str) -> list[RunResult]:
        return sorted((r for r in self.runs if r.benchmark == benchmark and r.method == method),
                      key=lambda r: (len(r.seed), r.seed))

    def methods(self, benchmark: str) -> list[str]:
        return sorted({r.method for r in self.runs if r.benchmark == benchmark})


def collect_runs(root: str | Path) -> RunSet:
    """All ``metrics.json`` files three levels below ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"runs folder {root} does not exist; give the --out folder of "
                         "`rsbench run` (default: runs)")
    out = RunSet()
    for seed_dir in sorted(root.glob("*/*/*")):
        if not seed_dir.is_dir():
            continue
        mf = seed_dir / "metrics.json"
        if not mf.exists():
            if (seed_dir / "checkpoint.pt").exists() or (seed_dir / "config.json").exists():
                out.unfinished.append(seed_dir)
            continue
        try:
            metrics = json.loads(mf.read_text())
        except json.JSONDecodeError:
            out.unfinished.append(seed_dir)
            continue
        if not metrics.get("complete"):
            out.unfinished.append(seed_dir)
            continue
        bench, method, seed = seed_dir.parts[-3:]
        out.runs.append(RunResult(bench, method, seed, metrics, seed_dir))
    return out
