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

import inspect
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from rsbench.errors import InputError, UsageError


def freeze_shared(model: nn.Module) -> None:
    """Fix the shared branch (feature extractor): no gradients, BatchNorm statistics frozen."""
    if not hasattr(model, "shared_parameters"):
        raise UsageError(f"model {type(model).__name__} has no shared branch to freeze")
    for p in model.shared_parameters():
        p.requires_grad_(False)
    keep_frozen_bn_eval(model)


def keep_frozen_bn_eval(model: nn.Module) -> None:
    """Put BatchNorm layers whose parameters are all frozen in eval mode (fixed statistics)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            ps = list(m.parameters(recurse=False))
            if ps and not any(p.requires_grad for p in ps):
                m.eval()


def _add_task(model: nn.Module, info, run: Path, name: str, **options) -> None:
    if not hasattr(model, "add_task"):
        raise UsageError(f"--from {run}: a {name!r} run has no shared branch to transfer to a new "
                         "task; start from an mtln run (or shared-specific, uncertainty)")
    accepted = inspect.signature(model.add_task).parameters
    model.add_task(info, **{k: v for k, v in options.items() if k in accepted})


def model_from_run(run: str | Path, infos: Sequence, *, frozen: bool,
                   init_branch: str | None = None) -> nn.Module:
    """The model of a finished run with the new task(s) ``infos`` added (see module docstring)."""
    from rsbench.models import build_model
    from rsbench.models.base import TaskInfo

    run = Path(run)
    conf_path, ckpt_path = run / "config.json", run / "checkpoint.pt"
    if not (run / "metrics.json").exists() or not conf_path.exists() or not ckpt_path.exists():
        raise InputError(f"--from {run} is not a finished run (it needs config.json, "
                         "checkpoint.pt and metrics.json); finish it first, e.g. "
                         "`rsbench run msc --model mtln ... --resume`")
    conf = json.loads(conf_path.read_text())
    old = [TaskInfo(*t) for t in conf["task_infos"]]
    options = {"backbone": conf["backbone"]} if conf.get("backbone") else {}
    options.update(conf.get("model_options", {}))
    # the checkpoint holds every weight: fine-tune's networks are built as single-task's, so
    # its ImageNet file is neither needed nor downloaded
    name = "single-task" if conf["model"] == "fine-tune" else conf["model"]
    model = build_model(name, old, **options)
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)["model"]
    model.load_state_dict(state)
    if init_branch and init_branch not in conf["tasks"]:
        init_branch = None  # e.g. a run without Merced: a fresh branch
    before = {id(p) for p in model.parameters()}
    for info in infos:
        if frozen:
            _add_task(model, info, run, conf["model"], attention=False)
        else:
            _add_task(model, info, run, conf["model"], init_from=init_branch)
    # only the new task's parameters learn: its branch (if any) and its classifier
    for p in model.parameters():
        p.requires_grad_(id(p) not in before)
    keep_frozen_bn_eval(model)
    return model
