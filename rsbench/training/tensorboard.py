"""Optional TensorBoard log of a run (``rsbench run ... --tensorboard``), in ``RUN/tensorboard/``.

Scalars: ``loss_step/<task>`` every step (the main process's own batch), and per epoch
``loss/<task>`` and ``loss/sum`` (means over steps and processes), ``weight/<task>`` (the
weighting's mean weight over the epoch, when it has weights), ``lr``, the progress evaluation
``val/<task>/<metric>`` (or ``test/...`` without a val split) with ``eval_every``, and the final
``test/<task>/<metric>`` at the last epoch. TensorBoard is an optional extra: ``pip install 'rsbench[tensorboard]'``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsbench.errors import UsageError

INSTALL = ("--tensorboard needs TensorBoard, an optional extra: pip install "
           "'rsbench[tensorboard]' (or pip install tensorboard)")


class TensorBoardLog:
    """Writes a run's scalars with torch's ``SummaryWriter``."""

    def __init__(self, folder: Path):
        self.writer = summary_writer_class()(str(folder))

    def step(self, step: int, task_losses: Mapping[str, Any]) -> None:
        for t, v in task_losses.items():
            value = v.detach() if hasattr(v, "detach") else v  # a loss still in the graph
            self.writer.add_scalar(f"loss_step/{t}", float(value), step)

    def epoch(self, row: Mapping[str, Any], tasks: list[str]) -> None:
        """One history.csv row: losses, task weights, learning rate, test metrics."""
        e = int(row["epoch"])
        for key, v in row.items():
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                continue
            if key == "loss":
                self.writer.add_scalar("loss/sum", v, e)
            elif key.startswith("loss_"):
                self.writer.add_scalar(f"loss/{key[5:]}", v, e)
            elif key.startswith("weight_"):
                self.writer.add_scalar(f"weight/{key[7:]}", v, e)
            elif key == "lr":
                self.writer.add_scalar("lr", v, e)
            elif key.startswith(("test_", "val_")):
                split, _, rest = key.partition("_")
                task = next((t for t in tasks if rest.startswith(f"{t}_")), None)
                if task is not None:
                    self.writer.add_scalar(f"{split}/{task}/{rest[len(task) + 1:]}", v, e)
        self.writer.flush()

    def final(self, results: Mapping[str, Mapping[str, Any]], epoch: int) -> None:
        """The final evaluation's scalar metrics at the last epoch."""
        for task, metrics in results.items():
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self.writer.add_scalar(f"test/{task}/{k}", v, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def summary_writer_class():
    """torch's ``SummaryWriter``, or a one-line UsageError saying how to install TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(INSTALL) from None
    return SummaryWriter
