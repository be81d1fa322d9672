"""What each table row holds: its runs by setting, their seeds, and the unstated settings.

A method's runs are split by fingerprint (see :mod:`rsbench.reports.runs`): the benchmark's own
settings give the method's row, every other setting its own row labelled by what differs
(``MTLN (epochs=2)``). The footnotes say which seeds and settings each row holds and list the
settings the paper does not state (the ``unstated`` block of the runs' configs).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from rsbench.reports.runs import RunResult, RunSet


def method_variants(runs: RunSet, benchmarks: Sequence[str], method: str
                    ) -> list[tuple[str, dict[str, list[RunResult]]]]:
    """``[(setting label, {benchmark: runs})]`` for ``method`` over ``benchmarks``: first the
    benchmark's own settings ("" label, present even without runs), then each other setting
    (matched across benchmarks by its label)."""
    own = {b: runs.of(b, method) for b in benchmarks}
    out: list[tuple[str, dict[str, list[RunResult]]]] = [("", own)]
    others: dict[str, dict[str, list[RunResult]]] = {}
    for b in benchmarks:
        for g in runs.variants(b, method):
            others.setdefault(g.label, {})[b] = g.runs
    out += sorted(others.items())
    return out


def row_label(label: str, setting: str) -> str:
    return f"{label} ({setting})" if setting else label


def seed_list(runs: Sequence[RunResult]) -> str:
    return ", ".join(dict.fromkeys(r.seed for r in runs)) or "none"


def provenance_notes(rows: Sequence, benchmarks: Sequence[str]) -> list[str]:
    """Footnotes: the seeds and setting of every row with runs, and the unstated settings."""
    parts = []
    for r in rows:
        rs = getattr(r, "runs", None) or []
        if r.source != "ours" or not rs:
            continue
        setting = getattr(r, "setting", "") or "the benchmark's own settings"
        parts.append(f"{r.label}: seed(s) {seed_list(rs)} at {setting}")
    notes = []
    if parts:
        notes.append("Rows hold one setting each (runs grouped by fingerprint, never averaged "
                     "across settings): " + "; ".join(parts) + ".")
    unstated = unstated_settings([x for r in rows for x in (getattr(r, "runs", None) or [])])
    if unstated:
        notes.append("Settings the paper does not state (from the runs' configs): "
                     + "; ".join(f"{k}: {v}" for k, v in unstated.items()) + ".")
    return notes


def unstated_settings(runs: Sequence[RunResult]) -> dict[str, str]:
    """The ``unstated`` settings of the runs, each key once (first sentence seen)."""
    out: dict[str, str] = {}
    for r in runs:
        for k, v in r.unstated.items():
            out.setdefault(k, str(v).strip().rstrip("."))
    return dict(sorted(out.items()))


def provenance_csv(table) -> str:
    """One line per run behind the table: row, benchmark, method, seed, fingerprint, setting,
    folder and the unstated settings (``<out>.provenance.csv`` beside a CSV table)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "benchmark", "method", "seed", "fingerprint", "settings", "folder",
                "unstated"])
    for r in table.rows:
        for run in getattr(r, "runs", None) or []:
            w.writerow([r.label, run.benchmark, run.method, run.seed, run.fingerprint or "",
                        getattr(r, "setting", "") or "benchmark defaults", str(run.path),
                        "; ".join(f"{k}: {v}" for k, v in sorted(run.unstated.items()))])
    return buf.getvalue()
