"""Transfer to unseen datasets (MTLN paper, Section IV-E, Table VI).

From a finished MSC run (``--from RUN``) the model is rebuilt and its trained weights loaded, then
the new dataset's task is added with ``model.add_task``:
- ``--frozen``: the head goes straight on the frozen shared branch (task branches abandoned): the
  "pre-trained shared branch on MSC dataset" column;
- otherwise: a new task branch initialised from the ``init_branch`` task's branch (Merced in the
  paper), fine-tuned with the shared branch fixed: the "pre-train MTLN + fine-tuning" column.
Everything but the new task's own parameters (branch and classifier) stays fixed, the shared
extractors included, and frozen BatchNorm layers keep their statistics.
``--model fine-tune --weights W --frozen`` is the frozen ImageNet ResNet-34 + new linear layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from rsbench.errors import InputError, UsageError
from rsbench.models.base import TaskInfo
from rsbench.training.batchnorm import keep_frozen_bn_eval
from rsbench.training.run_config import RunConfig, read_run_config
from rsbench.training.run_folder import CONFIG_FILE, add_task, build_from_spec, rebuild_model


def freeze_shared(model: nn.Module) -> None:
    """Fix the shared branch (feature extractor): no gradients, BatchNorm statistics frozen."""
    params = getattr(model, "feature_parameters", None) or getattr(model, "shared_parameters", None)
    if params is None:
        raise UsageError(f"model {type(model).__name__} has no shared branch to freeze")
    for p in params():
        p.requires_grad_(False)
    keep_frozen_bn_eval(model)


def finished_run_config(run: str | Path) -> RunConfig:
    """The checked config.json of finished run ``run`` (the source of ``--from``), or a
    one-line error naming the file and the field."""
    run = Path(run)
    if not all((run / f).exists() for f in ("metrics.json", "config.json", "checkpoint.pt")):
        raise InputError(f"--from {run} is not a finished run (it needs config.json, "
                         "checkpoint.pt and metrics.json); finish it first, e.g. "
                         "`rsbench run msc --model mtln ... --resume`")
    return read_run_config(run / CONFIG_FILE)


def transfer_spec(run: str | Path, infos: Sequence, *, frozen: bool,
                  init_branch: str | None = None) -> dict:
    """The model spec of a transfer run: the source run's, plus the new task(s) ``infos``."""
    conf = finished_run_config(run)
    spec = conf.model_spec.to_json()
    if init_branch and init_branch not in conf.tasks:
        init_branch = None  # e.g. a run without Merced: a fresh branch
    options = {"attention": False} if frozen else {"init_from": init_branch}
    added = [{"task": [i.name, i.type, i.num_outputs], "options": options} for i in infos]
    return {**spec, "added": spec["added"] + added}


def attach_new_tasks(model: nn.Module, added: Sequence[dict]) -> None:
    """Add the ``added`` spec entries as new tasks; only their parameters stay trainable."""
    before = {id(p) for p in model.parameters()}
    for entry in added:
        add_task(model, TaskInfo(*entry["task"]), entry.get("options") or {})
    # only the new task's parameters learn: its branch (if any) and its classifier
    for p in model.parameters():
        p.requires_grad_(id(p) not in before)
    keep_frozen_bn_eval(model)


def model_from_run(run: str | Path, infos: Sequence, *, frozen: bool,
                   init_branch: str | None = None) -> nn.Module:
    """The model of a finished run with the new task(s) ``infos`` added (see module docstring)."""
    spec = transfer_spec(run, infos, frozen=frozen, init_branch=init_branch)
    model, conf = rebuild_model(run)  # config.json checked, size bounded, before it is built
    if not hasattr(model, "add_task"):
        raise UsageError(f"--from {run}: a {conf['model']!r} run has no shared branch to "
                         "transfer to a new task; start from an mtln run (or shared-specific, "
                         "uncertainty)")
    attach_new_tasks(model, spec["added"][-len(infos):])
    return model


def resumed_transfer_model(run: str | Path, spec: dict, new: int) -> nn.Module:
    """A resumed transfer run's model (its checkpoint holds every weight): the ``--from``
    run's architecture, checked as a received run folder, plus the ``new`` tasks of the data."""
    source = Path(run) / CONFIG_FILE
    model = build_from_spec({**spec, "added": spec["added"][:-new]}, source=source)
    attach_new_tasks(model, spec["added"][-new:])
    return model
