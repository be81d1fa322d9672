"""Train and evaluate one model on one benchmark for one seed, into ``<out>/<benchmark>/<method>/<seed>/``.

The run folder holds ``config.json`` (resolved settings), ``history.csv`` (one row per epoch),
``checkpoint.pt`` (rewritten atomically after every epoch: model, optimiser, scheduler, scaler,
epoch, RNG states), ``run.log``, ``confusion_<task>.png`` and, written last and atomically,
``metrics.json``. A folder without ``metrics.json`` is an unfinished run that ``--resume``
continues from its last finished epoch, replaying exactly what an uninterrupted run does.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsbench import __version__
from rsbench.datasets.format import Dataset as BuiltDataset
from rsbench.datasets.format import atomic_write_text, json_default, open_dataset
from rsbench.errors import InputError, UsageError
from rsbench.progress import is_quiet, progress
from rsbench.training import checkpoint as ckpt
from rsbench.training.config import resolve, task_settings
from rsbench.training.data import EpochBatches, TaskGroup, make_loader, make_prep, make_reader
from rsbench.training.data import task_groups as _task_groups
from rsbench.training.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_object,
    init_distributed,
)
from rsbench.training.losses import make_loss
from rsbench.training.metrics import METRICS
from rsbench.training.transfer import keep_frozen_bn_eval

METRICS_FILE = "metrics.json"
CHECKPOINT = "checkpoint.pt"
CONFIG_FILE = "config.json"
HISTORY = "history.csv"
LOG = "run.log"
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
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _clean(obj: Any) -> Any:
    """NaN/inf -> None so metrics.json is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def pick_device(name: str, info: DistInfo | None = None) -> torch.device:
    """``auto``: the GPU when there is one (this rank's under torchrun), else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA GPU is visible; "
                             "use --device auto or cpu")
        return torch.device("cuda", info.local_rank if info else torch.cuda.current_device())
    if name != "cpu":
        raise UsageError(f"--device {name!r} is not one of auto, cpu, cuda")
    return torch.device("cpu")


def amp_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """Autocast dtype: bf16 where supported (fp16 on older GPUs); off on CPU unless asked."""
    if amp is None:
        amp = device.type == "cuda"
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Logger:
    """Appends lines to the run's log file and echoes them (rank 0 only)."""

    def __init__(self, path: Path | None, echo: bool):
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        line = f"{_dt.datetime.now().isoformat(timespec='seconds')} {msg}"
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        if self.echo and not is_quiet():
            print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# the pieces of a run
# --------------------------------------------------------------------------------------------


def check_dataset(data: BuiltDataset, cfg: Mapping[str, Any], path: str) -> list[str]:
    """The benchmark's tasks on this dataset, or a one-line error if it is the wrong kind."""
    names = cfg["dataset"].get("names") or []
    if names and data.name not in names:
        hint = cfg["dataset"].get("hint", "")
        raise InputError(
            f"{path} holds a {data.name!r} dataset but benchmark {cfg['benchmark']!r} needs "
            f"{' or '.join(repr(n) for n in names)}" + (f"; {hint}" if hint else ""))
    tasks = list(cfg.get("tasks") or data.tasks)
    missing = [t for t in tasks if t not in data.tasks]
    if missing:
        raise InputError(f"{path} has no task {', '.join(missing)} that benchmark "
                         f"{cfg['benchmark']!r} needs (it has {', '.join(data.tasks)}); "
                         "rebuild the dataset")
    for split in (cfg["train_split"], cfg["test_split"]):
        for t in tasks:
            if not len(data.rows(t, split)):
                raise InputError(f"{path} has no {split!r} samples for task {t!r}; "
                                 "rebuild the dataset with a train/test split")
    return tasks


def task_infos(data: BuiltDataset, tasks: Sequence[str]) -> list:
    """The models' view of the tasks: name, type and number of outputs."""
    from rsbench.models.base import TaskInfo

    out = []
    for name in tasks:
        spec = data.task(name)
        if spec["type"] == "regression":
            tgt = spec["target"]
            n = len(tgt) if isinstance(tgt, list) else 1
        else:
            n = len(spec["classes"])
        out.append(TaskInfo(name, spec["type"], n))
    return out


def sample_side(data: BuiltDataset, image_array: str) -> int | None:
    """Height of the stored samples (sample layout), None for raster-layout arrays."""
    meta = data.manifest["arrays"].get(image_array, {})
    return int(meta["shape"][1]) if meta.get("layout", "sample") == "sample" else None


def in_channels(data: BuiltDataset, image_array: str) -> int:
    """Bands of the image array (sample layout N×H×W[×C], raster layout H×W[×C])."""
    meta = data.manifest["arrays"][image_array]
    dims = 4 if meta.get("layout", "sample") == "sample" else 3
    return int(meta["shape"][-1]) if len(meta["shape"]) == dims else 1


class GroupForward(nn.Module):
    """One forward call over every task group of a step (so DDP sees one forward per step)."""

    def __init__(self, model: nn.Module, groups: Sequence[TaskGroup]):
        super().__init__()
        self.model = model
        self.groups = list(groups)

    def forward(self, xs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        for g, x in zip(self.groups, xs):
            outputs.update(self.model(x, tasks=g.tasks))
        return outputs


def make_scheduler(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer, epochs: int):
    """Per-epoch learning-rate schedule; the paper's is constant."""
    sched = cfg.get("scheduler") or {}
    name = sched.get("name") if isinstance(sched, Mapping) else sched
    if not name or name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(sched["step_size"]),
                                               gamma=float(sched.get("gamma", 0.1)))
    return resolve(name)(optimizer, epochs=epochs, **{k: v for k, v in sched.items()
                                                       if k != "name"})


def make_optimizer(cfg: Mapping[str, Any], params) -> torch.optim.Optimizer:
    opt = dict(cfg["optimizer"])
    name = opt.pop("name", "adam").lower()
    lr = float(opt.pop("lr"))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, **opt)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, **opt)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, **opt)
    return resolve(name)(params, lr=lr, **opt)


def count_parameters(model: nn.Module) -> dict[str, Any]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    try:
        breakdown = {k: int(v) for k, v in model.parameter_breakdown().items()}
    except Exception:  # noqa: BLE001 - a model without a breakdown still reports its total
        breakdown = {"total": total}
    return {"total": int(total), "trainable": int(trainable), "breakdown": breakdown}


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


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
        self.log = Logger(None, self.dist.main)

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
                "device": str(self.device), "amp": str(self.amp).replace("torch.", "")
                if self.amp else None, "channels_last": self.channels_last,
                "workers": r.workers, "world_size": self.dist.world,
                "rsbench_version": __version__, "torch_version": torch.__version__,
                "python": platform.python_version(), "host": platform.node()}

    # folder state ----------------------------------------------------------------------------
    def _prepare_folder(self, conf: dict) -> dict | None:
        """Check the run folder against --resume; return the checkpoint to continue, if any."""
        d = self.dir
        done, has_ckpt = (d / METRICS_FILE).exists(), (d / CHECKPOINT).exists()
        if not self.req.resume:
            if done:
                raise UsageError(f"{d} already holds a finished run; rerun with --resume to "
                                 "train it further, or choose another --out")
            if has_ckpt:
                raise UsageError(f"{d} holds an interrupted run; rerun with --resume to "
                                 "continue it, or delete the folder to start over")
            return None
        if not has_ckpt:
            return None
        old = json.loads((d / CONFIG_FILE).read_text()) if (d / CONFIG_FILE).exists() else {}
        diff = [k for k in _RESUME_KEYS if json.dumps(old.get(k), sort_keys=True)
                != json.dumps(conf.get(k), sort_keys=True)]
        if diff:
            raise UsageError(f"{d} was started with other settings ({', '.join(diff)}: "
                             f"{', '.join(str(old.get(k)) for k in diff)}); resume with the same "
                             "options or choose another --out")
        return ckpt.load_checkpoint(d / CHECKPOINT)

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
        state, error = None, None
        if self.dist.main:
            try:
                state = self._prepare_folder(conf)
            except UsageError as exc:
                error = str(exc)
        error = broadcast_object(error, self.dist)
        if error:
            raise UsageError(error)
        if not self.dist.main and self.req.resume and (self.dir / CHECKPOINT).exists():
            state = ckpt.load_checkpoint(self.dir / CHECKPOINT)

        seed_everything(self.req.seed)
        # built before the run folder is touched: a model that cannot be built (unknown name,
        # bad --weights, unusable --from run) leaves no stray folder and no moved metrics
        model = self.build_model().to(self.device)
        if self.dist.main:
            self.dir.mkdir(parents=True, exist_ok=True)
            if (self.dir / METRICS_FILE).exists():
                # training further: the old metrics are no longer the final ones
                os.replace(self.dir / METRICS_FILE, self.dir / "metrics.previous.json")
            atomic_write_text(self.dir / CONFIG_FILE, json.dumps(conf, indent=2,
                                                             default=json_default))
            self.log = Logger(self.dir / LOG, True)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        params = count_parameters(model)
        epochs = int(self.cfg["epochs"])
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(self.cfg, trainable)
        scheduler = make_scheduler(self.cfg, optimizer, epochs)
        scaler = torch.amp.GradScaler(self.device.type,
                                      enabled=self.amp == torch.float16)
        losses = {t: make_loss(task_settings(self.cfg, t, self.types[t]), self.data.task(t))
                  for t in self.tasks}
        history: list[dict] = []
        start_epoch = 0
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            history = list(state["history"])
            start_epoch = int(state["epoch"])
            ckpt.set_rng_state(state["rng"])
            self.log(f"resuming {self.dir} after epoch {start_epoch}")
        else:
            self.log(f"run {self.dir}: {self.method} on {self.cfg['benchmark']} "
                     f"({', '.join(self.tasks)}), seed {self.req.seed}, {epochs} epochs, "
                     f"device {self.device}, amp {self.amp}, "
                     f"{params['total'] / 1e6:.2f}M parameters")
            side = sample_side(self.data, self.cfg.get("image_array", "image"))
            size = self.cfg.get("input_size")
            if side and size and side != size:
                self.log(f"inputs: {side}-px images resized to {size} px on the device "
                         "(--input-size 0 keeps them as built)")
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
        gen = torch.Generator(device=self.device)
        eval_every = int(self.cfg.get("eval_every") or 0)

        for epoch in range(start_epoch, epochs):
            for s in samplers:
                s.set_epoch(epoch, steps)
            gen.manual_seed(self.req.seed * 1_000_003 + epoch)
            step_module.train()
            keep_frozen_bn_eval(model)
            row = self._train_epoch(epoch, epochs, step_module, model, loaders, prep, gen,
                                    losses, optimizer, scaler, steps)
            row["lr"] = optimizer.param_groups[0]["lr"]
            scheduler.step()
            if eval_every and (epoch + 1) % eval_every == 0 and epoch + 1 < epochs:
                ev = self.evaluate(model, prep)
                for t, m in ev.items():
                    for k, v in m.items():
                        if isinstance(v, float):
                            row[f"test_{t}_{k}"] = v
            history.append(row)
            if self.dist.main:
                ckpt.save_checkpoint(self.dir / CHECKPOINT, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                    "epoch": epoch + 1, "rng": ckpt.rng_state(), "history": history,
                    "config": conf})
                self._write_history(history)
                self.log(f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f} "
                         f"({row['seconds']:.1f} s, {row['samples_per_s']:.1f} samples/s)")
            barrier(self.dist)

        results = self.evaluate(model, prep, plots=True)
        metrics = self._final_metrics(results, params, history, epochs)
        if self.dist.main:
            atomic_write_text(self.dir / METRICS_FILE,
                         json.dumps(_clean(metrics), indent=2, default=json_default))
            summary = ", ".join(f"{t} {m.get('oa', m.get('miou', m.get('rmse', 0))):.4f}"
                                for t, m in results.items())
            self.log(f"finished {self.dir}: {summary}")
        barrier(self.dist)
        return metrics

    # training ----------------------------------------------------------------------------------
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

    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def _train_epoch(self, epoch, epochs, step_module, model, loaders, prep, gen, losses,
                     optimizer, scaler, steps) -> dict:
        sums = torch.zeros(len(self.tasks) + 1, dtype=torch.float64, device=self.device)
        samples = 0
        t0 = time.perf_counter()
        bar = progress(zip(*loaders), total=steps, desc=f"epoch {epoch + 1}/{epochs}") \
            if self.dist.main else zip(*loaders)
        for batches in bar:
            xs, targets = [], {}
            for b in batches:
                x, tg = prep(b, train=True, generator=gen)
                xs.append(x)
                targets.update(tg)
                samples += x.shape[0]
            with self._autocast():
                outputs = step_module(xs)
            task_losses = {t: losses[t](outputs[t], targets[t]) for t in self.tasks}
            total = model.combine_losses(task_losses)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            sums += torch.stack([total.detach().double()]
                                + [task_losses[t].detach().double() for t in self.tasks])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - t0
        all_reduce_sum(sums, self.dist)
        n = torch.tensor([samples], dtype=torch.float64)
        all_reduce_sum(n, self.dist)
        vals = (sums / max(1, steps * self.dist.world)).tolist()
        row = {"epoch": epoch + 1, "loss": vals[0],
               **{f"loss_{t}": v for t, v in zip(self.tasks, vals[1:])},
               "seconds": seconds, "samples": int(n.item()),
               "samples_per_s": float(n.item()) / seconds if seconds else math.nan}
        return row

    # evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, prep, plots: bool = False) -> dict[str, dict]:
        """Metrics of every task on the test split (each rank a slice, confusions summed)."""
        model.eval()
        meters = {}
        for t in self.tasks:
            spec = self.data.task(t)
            kind = task_settings(self.cfg, t, self.types[t]).get("metric", self.types[t])
            cls = METRICS[kind] if kind in METRICS else resolve(kind)
            n_out = len(spec["target"]) if isinstance(spec.get("target"), list) else 1
            meters[t] = cls(spec.get("classes") or [], device=self.device, num_outputs=n_out,
                            spec=spec)
        bs = int(self.cfg.get("eval_batch_size") or self.cfg["batch_size"])
        for gi, g in enumerate(self.groups):
            rows = self.data.rows(g.tasks[0], self.cfg["test_split"])
            s = EpochBatches(rows, bs * self.dist.world, seed=0, group=gi, shuffle=False,
                             drop_last=False, rank=self.dist.rank, world=self.dist.world)
            loader = make_loader(make_reader(self.cfg, self.req.data, g.tasks), s,
                                 workers=min(self.req.workers, 2),
                                 pin_memory=self.device.type == "cuda")
            batches = progress(loader, total=len(s), desc=f"test {'+'.join(g.tasks)}") \
                if self.dist.main else loader
            for b in batches:
                if not len(b["image"]):
                    continue
                x, targets = prep(b, train=False)
                with self._autocast():
                    out = model(x, tasks=g.tasks)
                for t in g.tasks:
                    meters[t].update(out[t].float(), targets[t])
        results = {}
        for t, m in meters.items():
            all_reduce_sum(m.state, self.dist)
            results[t] = m.compute()
            if plots and self.dist.main:
                m.plot(self.dir / f"confusion_{t}.png",
                       f"{self.method} on {t} ({self.cfg['benchmark']}, seed {self.req.seed})")
        model.train()
        keep_frozen_bn_eval(model)
        return results

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
            "amp": str(self.amp).replace("torch.", "") if self.amp else None,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def _write_history(self, history: list[dict]) -> None:
        keys: list[str] = []
        for h in history:
            keys += [k for k in h if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
        atomic_write_text(self.dir / HISTORY, buf.getvalue())


def run_benchmark(cfg: Mapping[str, Any], req: RunRequest) -> dict:
    """Train and evaluate one run; returns its final metrics (see module docstring)."""
    return Run(cfg, req).execute()
