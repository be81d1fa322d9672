"""The typed schema of a run folder's ``config.json``: what ``--from``, ``--resume``,
``taiga-map`` and ``report`` read from a run folder, checked before anything is built.

A run folder may come from someone else, so its config is read like a dataset manifest
(:mod:`rsbench.datasets.format.manifest`): the file's size is bounded, and every field these commands
use is checked for its type and range, so that a damaged or edited file is one line naming the
file and the field (``config.json: model_spec.tasks[1] ...``), never an error deep inside a
model. The sizes inside ``model_spec`` (widths, depths) are bounded separately, by building the
model on the meta device first (:mod:`rsbench.training.model_size`). Pure Python: the report
reads these files without importing torch.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsbench.datasets.format.manifest import MAX_CLASSES, TASK_TYPES
from rsbench.errors import InputError

# a config.json of a real run is a few kB; anything near this is not one (and is not read)
MAX_CONFIG_BYTES = 16 << 20
MAX_NAME = 200  # model, task and benchmark names are short words
MAX_TASKS = 1024  # a benchmark has a few tasks (TAIGA: 13)
FINGERPRINT = re.compile(r"[0-9a-f]{16}")
RECEIVED = ("it is not the config.json `rsbench run` wrote (damaged or edited): copy the run "
            "folder again, or rerun that run")


class BadField(ValueError):
    """One field of a JSON document with the wrong type or value (``field``: its dotted path)."""

    def __init__(self, field_path: str, problem: str):
        super().__init__(f"{field_path} {problem}")
        self.field = field_path


def kind(value: Any) -> str:
    """How a JSON value reads in a message: "a list", "text", "a number", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return "an object"


def _object(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise BadField(path, f"is {kind(value)}, not an object")
    return value


def _optional(d: Mapping[str, Any], key: str, path: str, empty: Any) -> Any:
    """``d[key]``, or ``empty`` when it is absent or null; of ``empty``'s type otherwise."""
    value = d.get(key)
    if value is None:
        return type(empty)()
    if not isinstance(value, type(empty)):
        raise BadField(path, f"is {kind(value)}, not "
                       + ("an object" if isinstance(empty, dict) else "a list"))
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise BadField(path, f"is {kind(value)}, not a name")
    return value


def key_name(key: str) -> str:
    """A key of a received file as a message shows it: bounded, on one line."""
    return key if key.isidentifier() and len(key) <= 40 else repr(key[:40])


def _count(value: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadField(path, f"is {kind(value)}, not a whole number")
    if not lo <= value <= hi:
        raise BadField(path, f"is {value}, outside {lo} to {hi:,}")
    return value


def _names(value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        raise BadField(path, f"is {kind(value)}, not a list of task names")
    return [_text(v, f"{path}[{i}]") for i, v in enumerate(value)]


@dataclass(frozen=True)
class TaskEntry:
    """One task a model is built for: ``[name, type, outputs]`` in config.json."""

    name: str
    type: str
    num_outputs: int

    @classmethod
    def from_json(cls, value: Any, path: str) -> TaskEntry:
        if not isinstance(value, list) or len(value) != 3:
            raise BadField(path, f"is {kind(value)}"
                           + (f" of {len(value)} entries" if isinstance(value, list) else "")
                           + ", not [name, type, outputs]")
        name, ttype, outputs = value
        _text(name, f"{path}[0]")
        if ttype not in TASK_TYPES:
            raise BadField(f"{path}[1]", f"is {kind(ttype)}, not one of {', '.join(TASK_TYPES)}")
        # a dataset refuses more than MAX_CLASSES classes on read: no head is larger
        return cls(name, ttype, _count(outputs, f"{path}[2]", 1, MAX_CLASSES))

    def to_json(self) -> list:
        return [self.name, self.type, self.num_outputs]


@dataclass(frozen=True)
class AddedTask:
    """A task added to a built model (transfer): ``{"task": [...], "options": {...}}``."""

    task: TaskEntry
    options: dict

    @classmethod
    def from_json(cls, value: Any, path: str) -> AddedTask:
        value = _object(value, path)
        options = _optional(value, "options", f"{path}.options", {})
        return cls(TaskEntry.from_json(value.get("task"), f"{path}.task"), dict(options))

    def to_json(self) -> dict:
        return {"task": self.task.to_json(), "options": dict(self.options)}


@dataclass
class ModelSpec:
    """Enough to rebuild a run's model: registered ``name``, constructor ``kwargs``, the
    ``tasks`` it is built for and the tasks ``added`` afterwards (transfer)."""

    name: str
    kwargs: dict
    tasks: list[TaskEntry]
    added: list[AddedTask] = field(default_factory=list)

    @classmethod
    def from_json(cls, value: Any, path: str = "model_spec") -> ModelSpec:
        value = _object(value, path)
        name = _text(value.get("name"), f"{path}.name")
        kwargs = _optional(value, "kwargs", f"{path}.kwargs", {})
        raw_tasks = value.get("tasks")
        if isinstance(raw_tasks, list) and len(raw_tasks) > MAX_TASKS:
            raise BadField(f"{path}.tasks", f"lists {len(raw_tasks):,} tasks, more than rsbench "
                           f"accepts ({MAX_TASKS:,})")
        if not isinstance(raw_tasks, list) or not raw_tasks:
            raise BadField(f"{path}.tasks", f"is {kind(raw_tasks)}, not a list of "
                           "[name, type, outputs] (a model needs at least one task)")
        tasks = [TaskEntry.from_json(t, f"{path}.tasks[{i}]") for i, t in enumerate(raw_tasks)]
        raw_added = _optional(value, "added", f"{path}.added", [])
        if len(raw_added) > MAX_TASKS:
            raise BadField(f"{path}.added", f"lists {len(raw_added):,} tasks, more than rsbench "
                           f"accepts ({MAX_TASKS:,})")
        added = [AddedTask.from_json(a, f"{path}.added[{i}]") for i, a in enumerate(raw_added)]
        names = [t.name for t in tasks] + [a.task.name for a in added]
        twice = sorted(n for n, c in Counter(names).items() if c > 1)
        if twice:
            raise BadField(f"{path}.tasks", f"lists task {twice[0]!r} twice")
        return cls(name, dict(kwargs), tasks, added)

    def to_json(self) -> dict:
        return {"name": self.name, "kwargs": dict(self.kwargs),
                "tasks": [t.to_json() for t in self.tasks],
                "added": [a.to_json() for a in self.added]}


@dataclass(frozen=True)
class RunIdentity:
    """config.json's ``identity``: the fingerprint and the settings it hashes."""

    fingerprint: str
    settings: dict
    non_default: dict

    @classmethod
    def from_json(cls, value: Any, path: str = "identity") -> RunIdentity:
        value = _object(value, path)
        fp = value.get("fingerprint")
        if not isinstance(fp, str) or not FINGERPRINT.fullmatch(fp):
            raise BadField(f"{path}.fingerprint", f"is {kind(fp)}, not 16 hex digits")
        return cls(fp, _optional(value, "settings", f"{path}.settings", {}),
                   _optional(value, "non_default", f"{path}.non_default", {}))


@dataclass
class RunSummary:
    """What a report reads from config.json: which benchmark, method and seed a run is, its
    identity (absent for runs written before identities were recorded) and its unstated
    settings (``protocol`` and ``model_options``, read by the taiga tables, are checked too)."""

    benchmark: str | None
    method: str | None
    seed: int | None
    identity: RunIdentity | None
    unstated: dict[str, str]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunSummary:
        opt = {k: None if d.get(k) is None else _text(d[k], k)
               for k in ("benchmark", "method", "protocol")}
        _optional(d, "model_options", "model_options", {})  # read by the taiga tables
        seed = d.get("seed")
        unstated = _optional(d, "unstated", "unstated", {})
        for key, sentence in unstated.items():
            if not isinstance(sentence, str):
                raise BadField(f"unstated.{key_name(key)}", f"is {kind(sentence)}, not a "
                               "sentence")
        return cls(opt["benchmark"], opt["method"],
                   None if seed is None else _count(seed, "seed", 0, 2**32 - 1),
                   None if d.get("identity") is None else RunIdentity.from_json(d["identity"]),
                   dict(unstated))


WINDOW_KEYS = ("patch", "bands")  # what makes a TAIGA dataset's windows those a run learnt


def dataset_windows(manifest: Mapping[str, Any]) -> dict | None:
    """The window settings of a TAIGA dataset (patch size, bands) that a run records, so a
    later map can check its ``--data`` without opening the folder a received file names."""
    taiga = manifest.get("taiga") or {}
    return {k: taiga.get(k) for k in WINDOW_KEYS} if taiga else None


@dataclass
class RunConfig:
    """A run folder's config.json, checked: ``raw`` is the whole file as read."""

    path: Path
    raw: dict
    model: str
    tasks: list[str]
    model_spec: ModelSpec
    summary: RunSummary
    data: str | None = None
    windows: dict | None = None

    @property
    def identity(self) -> RunIdentity | None:
        return self.summary.identity

    @classmethod
    def from_json(cls, d: Any, path: Path) -> RunConfig:
        d = _object(d, "the file")
        model = _text(d.get("model"), "model")
        if d.get("model_spec") is not None:
            spec = ModelSpec.from_json(d["model_spec"])
        else:  # written before model_spec existed: rebuilt from the older keys
            kwargs = {"backbone": _text(d["backbone"], "backbone")} if d.get("backbone") else {}
            kwargs.update(_optional(d, "model_options", "model_options", {}))
            spec = ModelSpec.from_json({"name": model, "kwargs": kwargs,
                                        "tasks": d.get("task_infos")}, "task_infos")
        if spec.name != model:
            raise BadField("model_spec.name", f"is {spec.name!r}, but the run's model is "
                           f"{model!r}")
        data = d.get("data")
        if data is not None and not isinstance(data, str):
            raise BadField("data", f"is {kind(data)}, not a folder")
        windows = d.get("dataset_windows")
        if windows is not None:
            windows = _object(windows, "dataset_windows")
            if set(windows) != set(WINDOW_KEYS) or len(json.dumps(windows)) > 400:
                raise BadField("dataset_windows", "must hold exactly "
                               f"{' and '.join(WINDOW_KEYS)} (short values)")
        return cls(Path(path), d, model, _names(d.get("tasks"), "tasks"), spec,
                   RunSummary.from_json(d), data, windows)


def read_json_file(path: str | Path, what: str, fix: str = RECEIVED,
                   max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """The JSON document in ``path``, or one line naming the file: missing, too large to be
    ``what``, not text, not JSON (nested without bound included)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{path} is {size:,} bytes, too large for {what} (at most "
                             f"{max_bytes:,}); {fix}")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # a file that grows meanwhile is still bounded
        return json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} is missing; {fix}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not {what}; {fix}") from None
    except PermissionError:
        raise InputError(f"{path} cannot be read (permission denied); fix its permissions") \
            from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not text (it holds binary data), not {what}; {fix}") \
            from None
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path} is not valid JSON ({first[:120]}); {fix}") from None


def read_run_config(path: str | Path, fix: str = RECEIVED) -> RunConfig:
    """The checked config.json at ``path`` (see :class:`RunConfig`), or one line naming the
    file and the field, ending in ``fix``."""
    path = Path(path)
    raw = read_json_file(path, "a run's config.json", fix)
    try:
        return RunConfig.from_json(raw, path)
    except BadField as exc:
        raise InputError(f"{path}: {exc}; {fix}") from None


def read_run_summary(path: str | Path) -> tuple[dict, RunSummary]:
    """config.json as JSON and the fields a report reads from it, checked (one line naming
    the file and the field otherwise)."""
    raw = read_json_file(path, "a run's config.json")
    try:
        return _object(raw, "the file"), RunSummary.from_json(_object(raw, "the file"))
    except BadField as exc:
        raise InputError(f"{path}: {exc}; {RECEIVED}") from None
