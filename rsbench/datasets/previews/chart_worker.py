"""A process that loads matplotlib while a long build stages its sources, then draws its charts.

Importing matplotlib is ~0.5 s of Python that holds the GIL: in a thread beside build-psc's
strip loop it slowed every pair, and left for the end it was the critical path of the finish.
In its own process (a fresh interpreter at the lowest CPU priority, in its own session so a
Ctrl-C goes to the builder only) the import takes only CPU time the tiling leaves idle, and at
finish the charts are drawn there while the builder draws the montage and writes the index.
The PNGs are the ones drawn in-process (same code, same Agg canvas); any failure of the worker
leaves the drawing to the builder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_BOOT = ("import os\n"
         "try:\n    os.nice(19)\nexcept OSError:\n    pass\n"
         "from rsbench.datasets.previews.chart_worker import serve\nserve()\n")


def serve() -> None:
    """The worker's loop: import matplotlib, then draw one chart per JSON line of stdin
    (``[task, title, path, ylabel]`` for :func:`~rsbench.datasets.previews.psc.plot_class_counts`)
    and answer ``ok`` or ``error`` per line; exits at the end of stdin."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401

    from rsbench.datasets.previews.psc import plot_class_counts

    for line in sys.stdin:
        try:
            task, title, path, ylabel = json.loads(line)
            plot_class_counts(task, title, Path(path), ylabel)
            answer = "ok"
        except Exception as exc:  # noqa: BLE001 - reported to the builder, which redraws
            answer = f"error {type(exc).__name__}"
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    os._exit(0)  # nothing left to flush: skip tearing down matplotlib and pandas


class ChartWorker:
    """The worker process, started when constructed. :meth:`draw` sends chart jobs,
    :meth:`finished` waits for them; :meth:`close` ends the process."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[3])  # the folder holding rsbench/
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
        self._sent = 0

    def draw(self, jobs: list[tuple]) -> bool:
        """Queue ``(task, title, path, ylabel)`` charts; False if the worker is gone."""
        try:
            for task, title, path, ylabel in jobs:
                self._proc.stdin.write(json.dumps([task, title, str(path), ylabel]) + "\n")
            self._proc.stdin.flush()
        except (OSError, ValueError):
            return False
        self._sent += len(jobs)
        return True

    def finished(self) -> bool:
        """Wait for every queued chart; True when each was drawn."""
        answers = [self._proc.stdout.readline().strip() for _ in range(self._sent)]
        self._sent = 0
        return all(a == "ok" for a in answers)

    def close(self) -> None:
        """End the worker (at once, whatever it was doing)."""
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._proc.kill()
        self._proc.wait()


def start_chart_worker() -> ChartWorker | None:
    """A started :class:`ChartWorker`, or None where no process can be started (the charts are
    then drawn in-process, as for small builds)."""
    try:
        return ChartWorker()
    except OSError:
        return None
