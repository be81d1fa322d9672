"""One run's folder: its paths, ``config.json``, ``run.log``, ``history.csv``, ``metrics.json``,
and the one function that rebuilds the run's model from it (:func:`rebuild_model`).

``metrics.json`` is written last and atomically: a folder without it is an unfinished run.
Every file is written through a temporary file and a rename, so a kill never leaves half a file.
"""

from __future__ import annotations

import csv
import datetime as _dt
import inspect
import io
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from rsbench.datasets.format.manifest import atomic_write_text, json_default
from rsbench.errors import InputError, UsageError
from rsbench.progress import is_quiet
from rsbench.training.model_size import TooLarge, max_parameters, meta_model, size_of, too_large
from rsbench.training.run_config import (
    RECEIVED,
    BadField,
    ModelSpec,
    key_name,
    read_run_config,
)

METRICS_FILE = "metrics.json"
CHECKPOINT = "checkpoint.pt"
CONFIG_FILE = "config.json"
HISTORY = "history.csv"
LOG = "run.log"


def clean_json(obj: Any) -> Any:
    """NaN/inf -> None so metrics.json is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    return obj


class Logger:
    """Appends time-stamped lines to the run's log file and echoes them (rank 0 only)."""

    def __init__(self, path: Path | None, echo: bool):
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        line = f"{_dt.datetime.now().isoformat(timespec='seconds')} {msg}"
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        if self.echo and not is_quiet():
            print(msg, file=sys.stderr, flush=True)


class RunFolder:
    """The files of one run folder (``path``), read and written in one place."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def finished(self) -> bool:
        return (self.path / METRICS_FILE).exists()

    @property
    def interrupted(self) -> bool:
        return not self.finished and self.checkpoint.exists()

    def read_config(self) -> dict:
        """The stored config.json, or {} when there is none."""
        p = self.path / CONFIG_FILE
        return json.loads(p.read_text()) if p.exists() else {}

    def read_metrics(self) -> dict:
        return json.loads((self.path / METRICS_FILE).read_text())

    def write_config(self, conf: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / CONFIG_FILE, json.dumps(conf, indent=2,
                                                              default=json_default))

    def write_history(self, history: list[dict]) -> None:
        keys: list[str] = []
        for h in history:
            keys += [k for k in h if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
        atomic_write_text(self.path / HISTORY, buf.getvalue())

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_text(self.path / METRICS_FILE,
                          json.dumps(clean_json(metrics), indent=2, default=json_default))

    def logger(self, echo: bool = True) -> Logger:
        return Logger(self.path / LOG, echo)


class ModelMismatch(InputError):
    """A checkpoint's weights do not fit the model its run folder describes."""


# --------------------------------------------------------------------------------------------
# the model of a run folder
# --------------------------------------------------------------------------------------------


def model_spec_of(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The run's ``model_spec`` ({name, kwargs, tasks, added}); rebuilt from the older config
    keys (model, backbone, model_options, task_infos) for runs written before it existed.
    ``conf`` is a config that :func:`~rsbench.training.run_config.read_run_config` checked."""
    spec = conf.get("model_spec")
    if spec:
        return dict(spec)
    kwargs = {"backbone": conf["backbone"]} if conf.get("backbone") else {}
    kwargs.update(conf.get("model_options") or {})
    return {"name": conf["model"], "kwargs": kwargs, "tasks": conf["task_infos"], "added": []}


def add_task(model: nn.Module, info, options: Mapping[str, Any]) -> None:
    """``model.add_task(info, **options)``, passing only the options its signature takes."""
    accepted = inspect.signature(model.add_task).parameters
    model.add_task(info, **{k: v for k, v in options.items() if k in accepted})


def _typed(spec: Mapping[str, Any] | ModelSpec, source: Path | None) -> ModelSpec:
    if isinstance(spec, ModelSpec):
        return spec
    try:
        return ModelSpec.from_json(dict(spec))
    except BadField as exc:
        raise InputError(f"{source or 'the model spec'}: {exc}; {RECEIVED}") from None


def _unknown_options(factory: Any, options: Mapping[str, Any]) -> list[str]:
    params = list(inspect.signature(factory).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    return [k for k in options if k not in {p.name for p in params}]


def _build(spec: ModelSpec, stage: list[str]) -> nn.Module:
    """The model of ``spec`` (starting weights not read); ``stage[0]`` says which part of the
    spec is being built, for the message when it fails."""
    from rsbench.models import architecture_of, build_model
    from rsbench.models.base import TaskInfo

    kwargs = {k: v for k, v in spec.kwargs.items() if k != "weights"}
    name = architecture_of(spec.name)
    stage[0] = "kwargs"
    model = build_model(name, [TaskInfo(*t.to_json()) for t in spec.tasks], **kwargs)
    for i, added in enumerate(spec.added):
        stage[0] = f"added[{i}]"
        if not hasattr(model, "add_task"):
            raise TypeError(f"a {spec.name!r} model takes no added tasks")
        add_task(model, TaskInfo(*added.task.to_json()), added.options)
    return model


def check_spec(spec: Mapping[str, Any] | ModelSpec, source: Path | None = None) -> None:
    """Build ``spec`` on the meta device (nothing allocated, :mod:`~rsbench.training.model_size`)
    and refuse it in one line when it cannot be built or is above the size limit.

    ``source``: the config.json the spec was read from; problems then name that file and the
    field (exit 1). Without it the spec is the run's own (benchmark config and --set): exit 2.
    """
    from rsbench.models import architecture_of, model_factories

    spec = _typed(spec, source)
    if source:
        where, fix, error = f"{source}: model_spec", f"; {RECEIVED}", InputError
    else:
        where, fix, error = "the model options (model_options, --set)", "", UsageError
    factories = model_factories()
    name = architecture_of(spec.name)
    if name not in factories:
        known = ", ".join(sorted(factories))
        raise error(f"{where}.name {spec.name!r} is not a model of this rsbench (its models: "
                    f"{known}){fix}" if source else
                    f"unknown model {spec.name!r}; choose one of: {known}")
    unknown = _unknown_options(factories[name], spec.kwargs)
    if unknown:
        raise error(f"{where}.kwargs.{key_name(unknown[0])} is not an option of model "
                    f"{spec.name!r}{fix}"
                    if source else f"model {spec.name!r} takes no option {unknown[0]!r} "
                    "(from the benchmark's model_options or --set)")
    stage = ["kwargs"]
    try:
        model = meta_model(lambda: _build(spec, stage))
    except TooLarge as exc:
        raise error(too_large(exc.count, where, at_least=True)) from None
    except Exception as exc:  # noqa: BLE001 - whatever the model makes of bad values: one line
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        if stage[0] == "kwargs":
            what = f"{where}{'.kwargs' if source else ''} do not make a {spec.name!r} model"
        else:
            what = f"{where}.{stage[0]} cannot be added to a {spec.name!r} model"
        raise error(f"{what} ({type(exc).__name__}: {first}){fix}") from None
    count = size_of(model)
    if count > max_parameters():
        raise error(too_large(count, where))


def build_from_spec(spec: Mapping[str, Any] | ModelSpec, *, source: Path | None = None
                    ) -> nn.Module:
    """An untrained model of the architecture ``spec`` describes, for a checkpoint's weights;
    checked on the meta device first (:func:`check_spec`; ``source``: the config.json it came
    from).

    Starting weights are not read (the checkpoint holds every weight): fine-tune's networks
    are built as single-task's, so its ImageNet file is neither needed nor downloaded.
    """
    spec = _typed(spec, source)
    check_spec(spec, source)
    return _build(spec, [""])


def rebuild_model(run_dir: str | Path, *, map_location: Any = "cpu",
                  legacy_kwargs: Mapping[str, Any] | None = None) -> tuple[nn.Module, dict]:
    """The model of run folder ``run_dir`` with its last checkpoint's weights, and its config.

    Used by ``--from`` and ``taiga-map``. ``legacy_kwargs`` complete the constructor arguments
    of runs written before ``model_spec`` was stored. config.json is checked
    (:mod:`~rsbench.training.run_config`) and the model's size bounded before anything is built.
    """
    from rsbench.training.checkpoint import load_checkpoint

    folder = RunFolder(Path(run_dir))
    conf_path = folder.path / CONFIG_FILE
    if not conf_path.exists() or not folder.checkpoint.exists():
        raise InputError(f"{folder.path} holds no config.json and checkpoint.pt; give a run "
                         "folder written by `rsbench run`")
    conf = read_run_config(conf_path)
    spec = conf.model_spec
    if legacy_kwargs and conf.raw.get("model_spec") is None:
        spec = ModelSpec(spec.name, {**legacy_kwargs, **spec.kwargs}, spec.tasks, spec.added)
    model = build_from_spec(spec, source=conf_path)
    state = load_checkpoint(folder.checkpoint, map_location=map_location)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ModelMismatch(f"{folder.checkpoint} does not fit the model its config.json "
                         f"describes ({type(exc).__name__}); give an untouched run folder"
                         ) from None
    return model, conf.raw
