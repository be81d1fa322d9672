"""Train and evaluate one model on one benchmark for one seed.

A run lives in ``<out>/<benchmark>/<method>/<fingerprint[:8]>/<seed>/``: the fingerprint
(:mod:`rsbench.training.identity`) covers every setting that changes results, so runs with
different settings never share a folder, and seeds of one setting sit side by side.

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
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsbench import __version__
from rsbench.datasets.format.reader import open_dataset
from rsbench.errors import InputError, RsbenchError, UsageError
from rsbench.locking import folder_lock
from rsbench.plots.curves import write_curves
from rsbench.progress import is_quiet
from rsbench.training import checkpoint as ckpt
from rsbench.training.config import load_benchmark, task_settings
from rsbench.training.data import (
    EpochBatches,
    check_batching,
    make_loader,
    make_prep,
    make_reader,
    plan_epoch,
)
from rsbench.training.data import task_groups as _task_groups
from rsbench.training.device import (
    amp_dtype,
    amp_name,
    make_scaler,
    memory_format_,
    pick_device,
    seed_everything,
)
from rsbench.training.distributed import barrier, broadcast_object, init_distributed
from rsbench.training.evaluation import Evaluator
from rsbench.training.factories import make_optimizer, make_scheduler
from rsbench.training.identity import identity, results_settings, sha256_bytes, start_settings
from rsbench.training.loop import GroupForward, Hooks, Loop, TrainState, train
from rsbench.training.losses import make_loss
from rsbench.training.run_config import dataset_windows, read_run_config
from rsbench.training.run_data import (
    check_dataset,
    has_split,
    in_channels,
    sample_side,
    task_infos,
)
from rsbench.training.run_folder import CONFIG_FILE, Logger, RunFolder
from rsbench.training.run_model import (
    build_run_model,
    count_parameters,
    method_name,
    model_kwargs,
    model_spec,
    model_unstated,
)
from rsbench.training.tensorboard import TensorBoardLog, summary_writer_class
from rsbench.training.weighting import Weighting, build_weighting, choose_weighting

__all__ = ["RunRequest", "Run", "run_benchmark", "task_infos", "in_channels", "sample_side",
           "count_parameters"]


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
    tensorboard: bool = False  # also log scalars to RUN/tensorboard/ (optional extra)


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
        if req.tensorboard:
            summary_writer_class()  # not installed: one line saying how, before anything runs
        choose_weighting(self.cfg, req.model)  # the model's own default when the CLI chose none
        check_batching(self.cfg.get("batching") or "per-task")
        self.cfg["unstated"] = model_unstated(self.cfg.get("unstated") or {}, req.model)
        self.method = self._method_name()
        self.model_spec = self._model_spec(self.cfg)
        self.identity = self._identity()
        fp = self.identity["fingerprint"]
        self.dir = Path(req.out) / self.cfg["benchmark"] / self.method / fp[:8] / str(req.seed)
        self.folder = RunFolder(self.dir)
        self.log = Logger(None, self.dist.main)
        self.evaluate = Evaluator(self.cfg, self.data, req.data, self.groups, self.types,
                                  self.device, self.dist, self.amp, req.workers)

    # naming ---------------------------------------------------------------------------------
    def _method_name(self) -> str:
        r = self.req
        return method_name(self.cfg, r.model, weights=r.weights, from_run=r.from_run,
                           frozen=r.frozen)

    def resolved_config(self) -> dict:
        r = self.req
        return {**self.cfg, "model": r.model, "method": self.method, "seed": r.seed,
                "data": str(Path(r.data).resolve()), "dataset_name": self.data.name,
                "dataset_windows": dataset_windows(self.data.manifest),
                "tasks": self.tasks, "task_infos": [[i.name, i.type, i.num_outputs]
                                                    for i in self.infos],
                "max_train_batches": r.max_train_batches,
                "weights": r.weights, "from_run": r.from_run, "frozen": r.frozen,
                "device": str(self.device), "amp": amp_name(self.amp),
                "channels_last": self.channels_last,
                "workers": r.workers, "world_size": self.dist.world,
                "threads": torch.get_num_threads(),  # not in the fingerprint; changes the bits
                "rsbench_version": __version__, "torch_version": torch.__version__,
                "python": platform.python_version(), "host": platform.node(),
                "model_spec": self.model_spec, "identity": self.identity,
                "unstated": dict(self.cfg.get("unstated") or {})}

    # folder state ----------------------------------------------------------------------------
    def _check_folder(self) -> dict | None:
        """Check the run folder against --resume; return the checkpoint to continue, if any."""
        f, d = self.folder, self.dir
        if f.finished:
            raise UsageError(f"{d} already holds a finished run with these settings; add "
                             "--resume to skip it, or choose another --out")
        if not f.checkpoint.exists():
            return None
        if not self.req.resume:
            raise UsageError(f"{d} holds an interrupted run; rerun with --resume to "
                             "continue it, or delete the folder to start over")
        if not (d / CONFIG_FILE).exists():
            raise InputError(f"{d} holds a checkpoint but no {CONFIG_FILE}; delete the folder "
                             "to start the run over")
        stored = read_run_config(d / CONFIG_FILE, fix="delete the folder to start the run over")
        old = stored.identity.fingerprint if stored.identity else None
        if old != self.identity["fingerprint"]:
            raise UsageError(f"{d} holds a run of other settings (fingerprint {old}, this run "
                             f"{self.identity['fingerprint']}); choose another --out")
        return ckpt.load_checkpoint(f.checkpoint)

    # the model and the run's identity ------------------------------------------------------
    def _model_kwargs(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        return model_kwargs(cfg, self.data, self.req.weights, self.req.model)

    def _model_spec(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        r = self.req
        return model_spec(cfg, self.data, r.model, self.infos, weights=r.weights,
                          from_run=r.from_run, frozen=r.frozen)

    def _identity(self) -> dict[str, Any]:
        manifest = Path(self.data.root) / "dataset.json"
        data_sha = sha256_bytes(manifest) if manifest.exists() else None
        r = self.req
        start = start_settings(r.weights, r.from_run, frozen=r.frozen,
                               max_train_batches=r.max_train_batches)
        settings = results_settings(self.cfg, model_spec=self.model_spec, start=start,
                                    dataset_sha256=data_sha)
        try:  # the benchmark's shipped settings with the same model: the reference
            shipped = load_benchmark(self.cfg["benchmark"])
            # the method's name says its weighting (MODEL+WEIGHTING): its options may differ
            choose_weighting(shipped, r.model, self.cfg["weighting"]["name"])
        except UsageError:  # a config that is not shipped: no reference
            shipped = self.cfg
        reference = results_settings(
            shipped, model_spec={**self.model_spec, "kwargs": self._model_kwargs(shipped)},
            start=start_settings(None, None), dataset_sha256=data_sha)
        return identity(settings, reference)

    def build_model(self, resuming: bool = False) -> nn.Module:
        """The run's model (see :func:`rsbench.training.run_model.build_run_model`)."""
        return build_run_model(self.cfg, self.model_spec, self.infos, from_run=self.req.from_run,
                               frozen=self.req.frozen, resuming=resuming)

    def build_weighting(self) -> Weighting:
        """The run's task weighting (config ``"weighting"``: name and options)."""
        options = dict(self.cfg.get("weighting") or {"name": "equal"})
        name = options.pop("name", "equal")
        return build_weighting(name, self.tasks, self.types, **options).to(self.device)

    # main ------------------------------------------------------------------------------------
    def execute(self) -> dict:
        conf = self.resolved_config()
        if self.req.resume and self.folder.finished:
            return self._already_finished()
        resuming = self.req.resume and self.folder.interrupted
        seed_everything(self.req.seed)
        # built before the run folder is touched: a model that cannot be built (unknown name,
        # bad --weights, unusable --from run) leaves no stray folder
        model = self.build_model(resuming).to(self.device)
        weighting = self.build_weighting()
        shared = weighting.select_shared(model)  # e.g. GradNorm with no shared layer: refused
        with contextlib.ExitStack() as stack:
            state, error = None, None
            if self.dist.main:
                try:
                    stack.enter_context(folder_lock(
                        self.dir, f"rsbench run {self.cfg['benchmark']} {self.method} "
                        f"seed {self.req.seed}"))
                    state = self._check_folder()
                except RsbenchError as exc:  # every process stops with the same line
                    error = (type(exc).__name__, str(exc))
            error = broadcast_object(error, self.dist)
            if error:
                raise (InputError if error[0] == "InputError" else UsageError)(error[1])
            if not self.dist.main and self.req.resume and self.folder.checkpoint.exists():
                state = ckpt.load_checkpoint(self.folder.checkpoint)
            return self._train_and_score(model, weighting, shared, state, conf)

    def _already_finished(self) -> dict:
        """--resume on a finished run: nothing to do; its stored metrics."""
        if self.dist.main and not is_quiet():
            print(f"{self.dir} is finished (fingerprint {self.identity['fingerprint']}); "
                  "nothing to do", file=sys.stderr, flush=True)
        return {**self.folder.read_metrics(), "run_folder": str(self.dir)}

    def _start_log(self, params: dict, epochs: int) -> None:
        self.log(f"run {self.dir} (fingerprint {self.identity['fingerprint']}): "
                 f"{self.method} on {self.cfg['benchmark']} "
                 f"({', '.join(self.tasks)}), seed {self.req.seed}, {epochs} epochs, "
                 f"device {self.device}, amp {self.amp}, {torch.get_num_threads()} threads, "
                 f"{params['total'] / 1e6:.2f}M parameters")
        side = sample_side(self.data, self.cfg.get("image_array", "image"))
        size = self.cfg.get("input_size")
        if side and size and side != size:
            self.log(f"inputs: {side}-px images resized to {size} px on the device "
                     "(--input-size 0 keeps them as built)")
        if int(self.cfg.get("eval_every") or 0):
            self.log(f"progress: evaluated on the {self.progress_split()!r} split every "
                     f"{self.cfg['eval_every']} epochs; {self.cfg['test_split']!r} is read once, "
                     "at the end")
        changed = self.identity["non_default"]
        self.log("settings: " + (", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items())
                                 if changed else "the benchmark's own"))
        for key, sentence in (self.cfg.get("unstated") or {}).items():
            self.log(f"not stated by the paper: {key}: {sentence}")

    def _train_and_score(self, model: nn.Module, weighting: Weighting, shared: list,
                         saved: dict | None, conf: dict) -> dict:
        if self.channels_last:
            model = memory_format_(model, True)
        params = count_parameters(model, weighting)
        epochs = int(self.cfg["epochs"])
        # the weighting's own parameters (uncertainty's log variances) train with the model's
        optimizer = make_optimizer(self.cfg, [p for p in model.parameters() if p.requires_grad]
                                   + list(weighting.parameters()))
        state = TrainState(model, optimizer, make_scheduler(self.cfg, optimizer, epochs),
                           make_scaler(self.device, self.amp), weighting)
        if saved is not None:
            ckpt.restore(state, saved, self.folder.checkpoint)
        else:
            weighting.reseed(self.req.seed)
        if self.dist.main:
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

        def plan(epoch: int) -> list[tuple[int, ...]]:
            return plan_epoch(samplers, self.cfg.get("batching") or "per-task",
                              seed=self.req.seed, epoch=epoch,
                              max_steps=self.req.max_train_batches)
        eval_every = int(self.cfg.get("eval_every") or 0)
        tb = (TensorBoardLog(self.dir / "tensorboard")
              if self.req.tensorboard and self.dist.main else None)

        split = self.progress_split()

        def progress_eval(epoch: int) -> dict:
            if not eval_every or (epoch + 1) % eval_every or epoch + 1 >= epochs:
                return {}
            return {f"{split}_{t}_{k}": v for t, m in self.evaluate(model, prep, split).items()
                    for k, v in m.items() if isinstance(v, float)}

        def on_epoch_end(st: TrainState, row: dict) -> None:
            if self.dist.main:
                ckpt.save_checkpoint(self.folder.checkpoint, ckpt.payload(st, conf))
                self.folder.write_history(st.history)
                if tb is not None:
                    tb.epoch(row, self.tasks)
                self.log(f"epoch {st.epoch}/{epochs}: loss {row['loss']:.4f} "
                         f"({row['seconds']:.1f} s, {row['samples_per_s']:.1f} samples/s)")
            barrier(self.dist)

        hooks = Hooks(progress_eval=progress_eval, on_epoch_end=on_epoch_end,
                      on_step=(lambda step, losses: tb.step(step, losses)) if tb else None)
        train(Loop(tasks=self.tasks, step_module=step_module, loaders=loaders, plan=plan,
                   prep=prep, losses=self._losses(), epochs=epochs, seed=self.req.seed,
                   device=self.device, dist=self.dist, amp=self.amp, shared=shared,
                   hooks=hooks), state)

        results = self.evaluate(model, prep, self.cfg["test_split"], plot_dir=self.dir,
                                title=f"{self.method} on {{task}} ({self.cfg['benchmark']}, "
                                      f"seed {self.req.seed})")
        metrics = self._final_metrics(results, params, state.history, epochs)
        if self.dist.main:
            write_curves(state.history, self.tasks, self.dir / "curves.png", results,
                         title=f"{self.method} on {self.cfg['benchmark']}, seed {self.req.seed}")
            if tb is not None:
                tb.final(results, epochs)
                tb.close()
            self.folder.write_metrics(metrics)
            summary = ", ".join(f"{t} {m.get('oa', m.get('miou', m.get('rmse', 0))):.4f}"
                                for t, m in results.items())
            self.log(f"finished {self.dir}: {summary}")
        barrier(self.dist)
        return {**metrics, "run_folder": str(self.dir)}

    def progress_split(self) -> str:
        """The split periodic evaluation reads: the validation split when the dataset has one
        (TAIGA), else the test split (the MTLN datasets are split 80/20 into train and test)."""
        val = self.cfg.get("val_split")
        return val if val and has_split(self.data, self.tasks, val) else self.cfg["test_split"]

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
            # each step converts its batches at once: the workers may reuse their buffers
            loaders.append(make_loader(reader, s, workers=self.req.workers, pin_memory=pin,
                                       reuse_buffers=True))
        return samplers, loaders

    def _final_metrics(self, results, params, history, epochs) -> dict:
        secs = [h["seconds"] for h in history]
        sps = [h["samples_per_s"] for h in history]
        return {
            "complete": True, "fingerprint": self.identity["fingerprint"],
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
