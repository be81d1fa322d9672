"""Train and evaluate one model on one benchmark for one seed, into ``<out>/<benchmark>/<method>/<seed>/``.

The run folder (:mod:`rsbench.training.run_folder`) holds ``config.json`` (resolved settings),
``history.csv`` (one row per epoch), ``checkpoint.pt`` (rewritten atomically after every epoch:
model, optimiser, scheduler, scaler, epoch, RNG states), ``run.log``, ``confusion_<task>.png``
and, written last and atomically, ``metrics.json``. A folder without ``metrics.json`` is an
unfinished run that ``--resume`` continues from its last finished epoch, replaying exactly what
an uninterrupted run does. This module sets a run up and hands it to the training loop
(:mod:`rsbench.training.loop`); evaluation and checkpoints live in their own modules.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsbench import __version__
from rsbench.datasets.format import open_dataset
from rsbench.errors import InputError, UsageError
from rsbench.locking import folder_lock
from rsbench.training import checkpoint as ckpt
from rsbench.training.config import task_settings
from rsbench.training.data import EpochBatches, make_loader, make_prep, make_reader
from rsbench.training.data import task_groups as _task_groups
from rsbench.training.device import amp_dtype, amp_name, make_scaler, pick_device, seed_everything
from rsbench.training.distributed import barrier, broadcast_object, init_distributed
from rsbench.training.evaluation import Evaluator
from rsbench.training.factories import make_optimizer, make_scheduler
from rsbench.training.loop import GroupForward, Loop, TrainState, train
from rsbench.training.losses import make_loss
from rsbench.training.run_data import check_dataset, in_channels, sample_side, task_infos
from rsbench.training.run_folder import CONFIG_FILE, Logger, RunFolder

__all__ = ["RunRequest", "Run", "run_benchmark", "task_infos", "in_channels", "sample_side",
           "count_parameters"]

# settings that must match for --resume to continue a run
_RESUME_KEYS = ("benchmark", "model", "method", "backbone", "batch_size", "optimizer",
                "scheduler", "tasks", "max_train_batches", "input_size", "dataset_name",
                "from_run", "frozen", "weights", "model_options", "settings")


@dataclass
class RunRequest:
    """Everything one run needs besides the benchmark config."""

    model: str
    data: str
    seed: int = 0
    out: str = "runs"
    device: str = "auto"
    amp: bool | None = None
    workers: int = 0
    resume: bool = False
    max_train_batches: int | None = None
    weights: str | None = None
    from_run: str | None = None
    frozen: bool = False


def count_parameters(model: nn.Module) -> dict[str, Any]:
    """Total and trainable parameters, and the model's own breakdown (shared/task parts)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    try:
        breakdown = {k: int(v) for k, v in model.parameter_breakdown().items()}
    except Exception:  # noqa: BLE001 - a model without a breakdown still reports its total
        breakdown = {"total": total}
    return {"total": int(total), "trainable": int(trainable), "breakdown": breakdown}


class Run:
    """One (benchmark, method, seed): build everything, train with checkpoints, evaluate."""

    def __init__(self, cfg: Mapping[str, Any], req: RunRequest):
        self.cfg = dict(cfg)
        self.req = req
        self.dist = init_distributed(use_cuda=req.device != "cpu" and torch.cuda.is_available())
        self.device = pick_device(req.device, self.dist)
        self.amp = amp_dtype(self.device, req.amp)
        self.channels_last = self.device.type == "cuda"
        self.data = open_dataset(req.data, hint=(cfg.get("dataset") or {}).get("hint"))
        self.tasks = check_dataset(self.data, self.cfg, req.data)
        self.groups = _task_groups(self.data, self.tasks)
        self.types = {t: self.data.task(t)["type"] for t in self.tasks}
        self.infos = task_infos(self.data, self.tasks)
        self.method = self._method_name()
        self.dir = Path(req.out) / self.cfg["benchmark"] / self.method / str(req.seed)
        self.folder = RunFolder(self.dir)
        self.log = Logger(None, self.dist.main)
        self.evaluate = Evaluator(self.cfg, self.data, req.data, self.groups, self.types,
                                  self.device, self.dist, self.amp, req.workers)

    # naming ---------------------------------------------------------------------------------
    def _method_name(self) -> str:
        if self.req.from_run:
            base = json.loads((Path(self.req.from_run) / CONFIG_FILE).read_text())["model"] \
                if (Path(self.req.from_run) / CONFIG_FILE).exists() else self.req.model
            if base != self.req.model:
                raise UsageError(f"--from {self.req.from_run} is a {base!r} run, not "
                                 f"{self.req.model!r}; pass --model {base} (the run's model is "
                                 "the one transferred)")
            return f"{base}-{'frozen' if self.req.frozen else 'transfer'}"
        name = f"{self.req.model}-frozen" if self.req.frozen else self.req.model
        if self.req.weights and self.req.model != "fine-tune":
            name += "+pretrained"  # not the paper's from-scratch method: its own table row
        return name + self.cfg.get("method_suffix", "")  # e.g. "+gradnorm" (--weighting)

    def resolved_config(self) -> dict:
        r = self.req
        return {**self.cfg, "model": r.model, "method": self.method, "seed": r.seed,
                "data": str(Path(r.data).resolve()), "dataset_name": self.data.name,
                "tasks": self.tasks, "task_infos": [[i.name, i.type, i.num_outputs]
                                                    for i in self.infos],
                "max_train_batches": r.max_train_batches,
                "weights": r.weights, "from_run": r.from_run, "frozen": r.frozen,
                "device": str(self.device), "amp": amp_name(self.amp),
                "channels_last": self.channels_last,
                "workers": r.workers, "world_size": self.dist.world,
                "rsbench_version": __version__, "torch_version": torch.__version__,
                "python": platform.python_version(), "host": platform.node()}

    # folder state ----------------------------------------------------------------------------
    def _check_folder(self, conf: dict) -> dict | None:
        """Check the run folder against --resume; return the checkpoint to continue, if any."""
        f, d = self.folder, self.dir
        if not self.req.resume:
            if f.finished:
                raise UsageError(f"{d} already holds a finished run; rerun with --resume to "
                                 "train it further, or choose another --out")
            if f.checkpoint.exists():
                raise UsageError(f"{d} holds an interrupted run; rerun with --resume to "
                                 "continue it, or delete the folder to start over")
            return None
        if not f.checkpoint.exists():
            return None
        old = f.read_config()
        diff = [k for k in _RESUME_KEYS if json.dumps(old.get(k), sort_keys=True)
                != json.dumps(conf.get(k), sort_keys=True)]
        if diff:
            raise UsageError(f"{d} was started with other settings ({', '.join(diff)}: "
                             f"{', '.join(str(old.get(k)) for k in diff)}); resume with the same "
                             "options or choose another --out")
        return ckpt.load_checkpoint(f.checkpoint)

    # the model -------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        from rsbench.models import build_model

        infos = self.infos
        if self.req.from_run:
            from rsbench.training.transfer import model_from_run

            return model_from_run(self.req.from_run, infos, frozen=self.req.frozen,
                                  init_branch=(self.cfg.get("transfer") or {}).get("init_branch"))
        options: dict[str, Any] = {}
        if self.cfg.get("backbone"):
            options["backbone"] = self.cfg["backbone"]
        ch = in_channels(self.data, self.cfg.get("image_array", "image"))
        if ch != 3:
            options["in_channels"] = ch
        if self.req.weights:
            if self.req.weights != "imagenet" and not Path(self.req.weights).exists():
                raise InputError(f"--weights {self.req.weights} does not exist; give a local "
                                 "ImageNet weights file (e.g. torchvision's resnet34 .pth) or "
                                 "'imagenet' to download torchvision's")
            options["weights"] = self.req.weights
        options.update(self.cfg.get("model_options", {}))
        model = build_model(self.req.model, infos, **options)
        if self.req.frozen:
            from rsbench.training.transfer import freeze_shared

            freeze_shared(model)
        return model

    # main ------------------------------------------------------------------------------------
    def execute(self) -> dict:
        conf = self.resolved_config()
        seed_everything(self.req.seed)
        # built before the run folder is touched: a model that cannot be built (unknown name,
        # bad --weights, unusable --from run) leaves no stray folder and no moved metrics
        model = self.build_model().to(self.device)
        with contextlib.ExitStack() as stack:
            state, error = None, None
            if self.dist.main:
                try:
                    stack.enter_context(folder_lock(
                        self.dir, f"rsbench run {self.cfg['benchmark']} {self.method} "
                        f"seed {self.req.seed}"))
                    state = self._check_folder(conf)
                except UsageError as exc:
                    error = str(exc)
            error = broadcast_object(error, self.dist)
            if error:
                raise UsageError(error)
            if not self.dist.main and self.req.resume and self.folder.checkpoint.exists():
                state = ckpt.load_checkpoint(self.folder.checkpoint)
            return self._train_and_score(model, state, conf)

    def _start_log(self, params: dict, epochs: int) -> None:
        self.log(f"run {self.dir}: {self.method} on {self.cfg['benchmark']} "
                 f"({', '.join(self.tasks)}), seed {self.req.seed}, {epochs} epochs, "
                 f"device {self.device}, amp {self.amp}, "
                 f"{params['total'] / 1e6:.2f}M parameters")
        side = sample_side(self.data, self.cfg.get("image_array", "image"))
        size = self.cfg.get("input_size")
        if side and size and side != size:
            self.log(f"inputs: {side}-px images resized to {size} px on the device "
                     "(--input-size 0 keeps them as built)")

    def _train_and_score(self, model: nn.Module, saved: dict | None, conf: dict) -> dict:
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        params = count_parameters(model)
        epochs = int(self.cfg["epochs"])
        optimizer = make_optimizer(self.cfg, [p for p in model.parameters() if p.requires_grad])
        state = TrainState(model, optimizer, make_scheduler(self.cfg, optimizer, epochs),
                           make_scaler(self.device, self.amp))
        if saved is not None:
            ckpt.restore(state, saved)
        if self.dist.main:
            self.folder.retire_metrics()  # training further: the old metrics are not final
            self.folder.write_config(conf)
            self.log = self.folder.logger(echo=True)
        if saved is not None:
            self.log(f"resuming {self.dir} after epoch {state.epoch}")
        else:
            self._start_log(params, epochs)
        step_module: nn.Module = GroupForward(model, self.groups)
        if self.dist.enabled:
            step_module = nn.parallel.DistributedDataParallel(
                step_module, device_ids=[self.device.index] if self.device.type == "cuda"
                else None, find_unused_parameters=True)
        prep = make_prep(self.cfg, self.device, self.types, channels_last=self.channels_last)
        samplers, loaders = self._train_loaders()
        steps = max(s.per_pass for s in samplers)
        if self.req.max_train_batches:
            steps = min(steps, int(self.req.max_train_batches))
        eval_every = int(self.cfg.get("eval_every") or 0)

        def progress_eval(epoch: int) -> dict:
            if not eval_every or (epoch + 1) % eval_every or epoch + 1 >= epochs:
                return {}
            split = self.cfg["test_split"]
            return {f"test_{t}_{k}": v for t, m in self.evaluate(model, prep, split).items()
                    for k, v in m.items() if isinstance(v, float)}

        def on_epoch_end(st: TrainState, row: dict) -> None:
            if self.dist.main:
                ckpt.save_checkpoint(self.folder.checkpoint, ckpt.payload(st, conf))
                self.folder.write_history(st.history)
                self.log(f"epoch {st.epoch}/{epochs}: loss {row['loss']:.4f} "
                         f"({row['seconds']:.1f} s, {row['samples_per_s']:.1f} samples/s)")
            barrier(self.dist)

        train(Loop(self.tasks, step_module, samplers, loaders, steps, prep,
                   self._losses(), epochs, self.req.seed, self.device, self.dist, self.amp,
                   progress_eval, on_epoch_end), state)

        results = self.evaluate(model, prep, self.cfg["test_split"], plot_dir=self.dir,
                                title=f"{self.method} on {{task}} ({self.cfg['benchmark']}, "
                                      f"seed {self.req.seed})")
        metrics = self._final_metrics(results, params, state.history, epochs)
        if self.dist.main:
            self.folder.write_metrics(metrics)
            summary = ", ".join(f"{t} {m.get('oa', m.get('miou', m.get('rmse', 0))):.4f}"
                                for t, m in results.items())
            self.log(f"finished {self.dir}: {summary}")
        barrier(self.dist)
        return metrics

    # training inputs ---------------------------------------------------------------------------
    def _losses(self) -> dict:
        return {t: make_loss(task_settings(self.cfg, t, self.types[t]), self.data.task(t))
                for t in self.tasks}

    def _train_loaders(self) -> tuple[list[EpochBatches], list]:
        bs = int(self.cfg["batch_size"])
        if bs < self.dist.world:
            raise UsageError(f"--batch-size {bs} is smaller than the {self.dist.world} "
                             "processes; use at least one sample per process")
        samplers, loaders = [], []
        pin = self.device.type == "cuda"
        for gi, g in enumerate(self.groups):
            rows = self.data.rows(g.tasks[0], self.cfg["train_split"])
            s = EpochBatches(rows, bs, seed=self.req.seed, group=gi, shuffle=True,
                             drop_last=True, rank=self.dist.rank, world=self.dist.world)
            reader = make_reader(self.cfg, self.req.data, g.tasks)
            samplers.append(s)
            loaders.append(make_loader(reader, s, workers=self.req.workers, pin_memory=pin))
        return samplers, loaders

    def _final_metrics(self, results, params, history, epochs) -> dict:
        secs = [h["seconds"] for h in history]
        sps = [h["samples_per_s"] for h in history]
        return {
            "complete": True,
            "benchmark": self.cfg["benchmark"], "method": self.method,
            "model": self.req.model, "seed": self.req.seed,
            "backbone": self.cfg.get("backbone"), "dataset": self.data.name,
            "epochs": epochs, "tasks": results, "parameters": params,
            "train_seconds_per_epoch": float(np.mean(secs)) if secs else None,
            "train_samples_per_s": float(np.mean(sps)) if sps else None,
            "device": str(self.device), "world_size": self.dist.world,
            "amp": amp_name(self.amp),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }


def run_benchmark(cfg: Mapping[str, Any], req: RunRequest) -> dict:
    """Train and evaluate one run; returns its final metrics (see module docstring)."""
    return Run(cfg, req).execute()
