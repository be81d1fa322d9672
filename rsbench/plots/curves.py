"""``curves.png`` of a run: its history at a glance, one panel per quantity on a shared epoch axis.

Panels: the training loss of each task; each evaluation metric recorded during training
(``val_``/``test_<task>_<metric>`` columns, with ``eval_every``), the final test evaluation as a
marker at the last epoch; the task weights (``weight_<task>``) when the run's weighting has
any; the learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rsbench.plots.style import pyplot

# the headline metric of each task kind, as metrics.json names it
HEADLINE = ("oa", "miou", "rmse")


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in history:
        v = row.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            xs.append(int(row["epoch"]))
            ys.append(float(v))
    return xs, ys


def _panels(history: Sequence[Mapping[str, Any]], tasks: Sequence[str],
            final: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, dict]]:
    """(title, {label: (xs, ys, style, colour)}) for every panel with something to draw; a
    task keeps its colour in every panel."""
    keys = {k for row in history for k in row}
    colour = {t: f"C{i % 10}" for i, t in enumerate(tasks)}
    panels: list[tuple[str, dict]] = []
    panels.append(("training loss", {t: (*_series(history, f"loss_{t}"), "-", colour[t])
                                     for t in tasks}))
    last = max((int(r["epoch"]) for r in history), default=0)
    for split in ("val", "test"):  # progress evaluation (eval_every) on val, else test
        metrics = sorted({k.split("_")[-1] for k in keys if k.startswith(f"{split}_")}
                         | ({m for r in final.values() for m in HEADLINE if m in r}
                            if split == "test" else set()))
        for metric in metrics:
            _metric_panel(panels, history, tasks, final if split == "test" else {}, split,
                          metric, last, colour)
    weights = {t: (*_series(history, f"weight_{t}"), "-", colour[t]) for t in tasks
               if f"weight_{t}" in keys}
    if weights:
        panels.append(("task weight", weights))
    panels.append(("learning rate", {"lr": (*_series(history, "lr"), "-", "k")}))
    return panels


def _metric_panel(panels, history, tasks, final, split, metric, last, colour) -> None:
    """One evaluation metric: each task's series over epochs, the final value as a marker."""
    lines: dict[str, tuple] = {}
    for t in tasks:
        xs, ys = _series(history, f"{split}_{t}_{metric}")
        v = (final.get(t) or {}).get(metric)
        if xs:
            lines[t] = (xs, ys, ".-", colour[t])
        if isinstance(v, (int, float)) and math.isfinite(v):
            lines[f"{t} (final)"] = ([last], [float(v)], "D", colour[t])
    if lines:
        panels.append((f"{split} {metric}", lines))


def write_curves(history: Sequence[Mapping[str, Any]], tasks: Sequence[str], path: Path,
                 final: Mapping[str, Mapping[str, Any]] | None = None,
                 title: str = "") -> Path:
    """Draw the run's curves into ``path`` (a PNG); returns ``path``."""
    plt = pyplot()
    panels = _panels(history, tasks, final or {})
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                             figsize=(7, 2.2 * len(panels) + 0.6))
    for ax, (name, lines) in zip(axes[:, 0], panels):
        for label, (xs, ys, style, c) in lines.items():
            if xs:
                ax.plot(xs, ys, style, label=label, color=c, markersize=5)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7, ncol=2 if len(lines) > 6 else 1, loc="best")
    axes[-1, 0].set_xlabel("epoch")
    axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = Path(path).with_name(Path(path).name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return Path(path)
