"""Finished runs read back from a runs folder, whatever its layout, grouped by settings.

Every ``metrics.json`` under the folder is a run; the ``config.json`` beside it says what it ran
(benchmark, method, and the ``identity`` block: a fingerprint of every setting that changes
results and the settings that differ from the benchmark's own). Only complete runs count: a run
folder without ``metrics.json`` (stopped or still training) is listed as unfinished and never
contributes a number; a ``metrics.json`` or ``config.json`` that cannot be read (or whose
identity, unstated settings, benchmark, method or seed have the wrong type) is one warning and
skipped. Runs of one method are grouped by fingerprint: seeds of the same settings are averaged
together, runs at other settings become their own rows (labelled by what differs), never one mean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rsbench.errors import InputError
from rsbench.training.run_config import read_run_summary

SHORT_KEYS = {"optimizer.lr": "lr"}  # config keys shown by their command-line name


def setting_label(non_default: dict) -> str:
    """``{"epochs": 2, "optimizer.lr": 0.001}`` → ``"epochs=2, lr=0.001"`` ("" for the
    benchmark's own settings)."""
    return ", ".join(f"{SHORT_KEYS.get(k, k)}="
                     f"{json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v}"
                     for k, v in sorted(non_default.items()))


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass
class RunResult:
    benchmark: str
    method: str
    seed: str
    metrics: dict
    path: Path
    config: dict = field(default_factory=dict)

    @property
    def identity(self) -> dict:
        return self.config.get("identity") or {}

    @property
    def fingerprint(self) -> str | None:
        """None for a run written before identities were recorded (read as the benchmark's own
        settings)."""
        return self.identity.get("fingerprint") or self.metrics.get("fingerprint")

    @property
    def non_default(self) -> dict:
        return dict(self.identity.get("non_default") or {})

    @property
    def unstated(self) -> dict:
        return dict(self.config.get("unstated") or {})


@dataclass
class RunGroup:
    """Runs of one method on one benchmark at one setting (one fingerprint); ``label`` says how
    the setting differs from the benchmark's own ("" = the benchmark's own settings)."""

    benchmark: str
    method: str
    label: str
    runs: list[RunResult]

    @property
    def seeds(self) -> list[str]:
        return [r.seed for r in self.runs]


def _seed_key(r: RunResult) -> tuple:
    return (len(r.seed), r.seed, str(r.path))


def _short(v) -> str:
    s = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)
    return s if len(s) <= 12 else s[:12] + "…"


def _groups(runs: list[RunResult]) -> list[RunGroup]:
    """Split the runs of one (benchmark, method) by fingerprint, the benchmark's own settings
    first. Fingerprints with the same non-default settings (e.g. two builds of the dataset):
    the one with an identity and the most seeds keeps the label, the others are labelled by the
    settings that differ from it."""
    by_fp: dict[str | None, list[RunResult]] = {}
    for r in runs:
        by_fp.setdefault(r.fingerprint, []).append(r)
    groups = []
    for rs in by_fp.values():
        rs.sort(key=_seed_key)
        groups.append(RunGroup(rs[0].benchmark, rs[0].method, setting_label(rs[0].non_default),
                               rs))
    by_label: dict[str, list[RunGroup]] = {}
    for g in groups:
        by_label.setdefault(g.label, []).append(g)
    for label, same in by_label.items():
        if len(same) < 2:
            continue
        same.sort(key=lambda g: (g.runs[0].fingerprint is None, -len(g.runs),
                                 g.runs[0].fingerprint or ""))
        ref = _flatten(same[0].runs[0].identity.get("settings") or {})
        for g in same[1:]:
            fp = g.runs[0].fingerprint
            if fp is None:
                extra = "no identity recorded"
            else:
                f = _flatten(g.runs[0].identity.get("settings") or {})
                keys = [k for k in sorted(set(f) | set(ref)) if f.get(k) != ref.get(k)]
                extra = ", ".join(f"{k}={_short(f.get(k))}" for k in keys[:3]) \
                    or f"fingerprint {fp[:8]}"
            g.label = ", ".join(p for p in (label, extra) if p)
    return sorted(groups, key=lambda g: (g.label != "", g.label))


@dataclass
class RunSet:
    """Every finished run, the unfinished folders seen and the files that could not be read."""

    runs: list[RunResult] = field(default_factory=list)
    unfinished: list[tuple[Path, str]] = field(default_factory=list)  # (folder, benchmark)
    warnings: list[str] = field(default_factory=list)

    def groups(self, benchmark: str, method: str) -> list[RunGroup]:
        """Runs of ``method`` on ``benchmark`` by setting; the first group is the method's row
        (the benchmark's own settings) when it has any such run."""
        return _groups([r for r in self.runs if r.benchmark == benchmark and r.method == method])

    def of(self, benchmark: str, method: str) -> list[RunResult]:
        """Runs of ``method`` on ``benchmark`` at the benchmark's own settings only (one
        fingerprint: never a mean over different settings)."""
        groups = self.groups(benchmark, method)
        return list(groups[0].runs) if groups and groups[0].label == "" else []

    def variants(self, benchmark: str, method: str) -> list[RunGroup]:
        """Groups of ``method`` on ``benchmark`` at settings other than the benchmark's own."""
        groups = self.groups(benchmark, method)
        return groups[1:] if groups and groups[0].label == "" else groups

    def methods(self, benchmark: str) -> list[str]:
        return sorted({r.method for r in self.runs if r.benchmark == benchmark})

    def unfinished_in(self, benchmarks: set[str]) -> list[Path]:
        return [p for p, b in self.unfinished if b in benchmarks]


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _read_config(path: Path) -> tuple[dict, str | None]:
    """config.json beside a metrics.json, its fields a report reads checked: ({}, None) when
    there is none, ({}, the one-line problem) when it is damaged."""
    if not path.exists():
        return {}, None
    try:
        conf, _ = read_run_summary(path)
    except InputError as exc:
        return {}, str(exc)
    return conf, None


def collect_runs(root: str | Path) -> RunSet:
    """Every ``metrics.json`` below ``root`` (any depth) with the ``config.json`` beside it."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"runs folder {root} does not exist; give the --out folder of "
                         "`rsbench run` (default: runs)")
    out = RunSet()
    folders = {p.parent for name in ("metrics.json", "config.json", "checkpoint.pt")
               for p in root.rglob(name)}
    for d in sorted(folders):
        conf, problem = _read_config(d / "config.json")
        rel = d.relative_to(root).parts
        bench = conf.get("benchmark") or (rel[0] if rel else "")
        mf = d / "metrics.json"
        if problem and mf.exists():
            out.warnings.append(f"skipped {problem}")
            continue
        if not mf.exists():
            out.unfinished.append((d, bench))
            continue
        metrics = _read_json(mf)
        if metrics is None or not isinstance(metrics.get("tasks", {}), dict):
            out.warnings.append(f"skipped {mf}: not a readable metrics file (malformed JSON); "
                                "rerun that run with --resume or delete its folder")
            continue
        if not metrics.get("complete"):
            out.unfinished.append((d, bench))
            continue
        bench = metrics.get("benchmark") or bench
        method = metrics.get("method") or conf.get("method") or (rel[1] if len(rel) > 1 else "")
        seed = metrics.get("seed", conf.get("seed", rel[-1] if rel else ""))
        out.runs.append(RunResult(bench, method, str(seed), metrics, d, conf))
    return out
