"""Turn a table's declared runs into ``rsbench run`` commands (``rsbench reproduce``).

Each :class:`~rsbench.reports.plan.PlannedRun` becomes one command (all seeds, or one per seed
for runs started ``--from`` another run), with ``--resume`` so that finished runs at the same
settings are not trained again and unfinished ones continue. A run that cannot be carried out
here (model not implemented, no local ImageNet weights, no dataset for its benchmark) is a
:class:`Step` with a skip reason, never silently dropped. Runs that others start from come first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rsbench.errors import InputError, RsbenchError, UsageError
from rsbench.reports.plan import PlannedRun
from rsbench.reports.runs import SHORT_KEYS
from rsbench.training.run_config import read_run_summary


@dataclass
class Step:
    plan: PlannedRun
    seeds: list[int]
    data: str | None = None
    options: list[str] = field(default_factory=list)  # run options beyond the plan's own
    skip: str | None = None

    def command(self, out: str, seed: int | None = None, source: str | None = None) -> list[str]:
        """``rsbench run ...`` arguments (after the program name) for all seeds or one."""
        seeds = [seed] if seed is not None else self.seeds
        cmd = ["run", self.plan.benchmark, "--model", self.plan.model, "--data", str(self.data),
               "--seed", *[str(s) for s in seeds], "--out", out, "--resume",
               *self.plan.options]
        if self.plan.source:
            cmd += ["--from", source or f"<{'/'.join(self.plan.source)} run of seed "
                                        f"{seeds[0]}, found after it finishes>"]
        return cmd + self.options


def parse_data(values: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """``--data DIR`` (every benchmark) and ``--data BENCHMARK=DIR`` (one benchmark)."""
    default, per = None, {}
    for v in values:
        bench, sep, path = v.partition("=")
        if sep and bench and not Path(v).exists():
            per[bench] = path
        elif default is None:
            default = v
        else:
            raise UsageError(f"--data {v}: a second plain folder; give the others as "
                             "--data BENCHMARK=DIR")
    return default, per


def dataset_problem(benchmark: str, path: str | None) -> str | None:
    """Why ``path`` cannot serve ``benchmark`` (None when it can)."""
    from rsbench.datasets.format.reader import open_dataset
    from rsbench.training.config import load_benchmark

    if path is None:
        return f"no dataset for {benchmark} (give --data {benchmark}=DIR)"
    names = load_benchmark(benchmark)["dataset"].get("names") or []
    try:
        name = open_dataset(path).name
    except RsbenchError as exc:
        return f"--data {path} is not a built dataset ({exc})"
    if names and name not in names:
        return (f"{path} holds a {name!r} dataset, {benchmark} needs "
                f"{' or '.join(repr(n) for n in names)} (give --data {benchmark}=DIR)")
    return None


def local_imagenet(benchmark: str) -> tuple[str | None, str | None]:
    """(``"imagenet"``, None) when torchvision's ImageNet weights for the benchmark's backbone
    are already in the local torch hub cache, else (None, why not)."""
    import torch
    import torchvision

    from rsbench.models.backbones import Backbone
    from rsbench.training.config import load_benchmark

    name = load_benchmark(benchmark).get("backbone")
    cls = next((c for c in Backbone.__subclasses__() if getattr(c, "name", None) == name), None)
    ref = getattr(cls, "imagenet_weights", None)
    if not ref:
        return None, (f"torchvision has no ImageNet weights for {name}; give --weights FILE "
                      "(a local state dict)")
    enum_name, member = ref.split(".")
    url = getattr(torchvision.models, enum_name)[member].url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return "imagenet", None
    return None, (f"no local ImageNet weights for {name} (not in {cached.parent}); give "
                  "--weights FILE (a torchvision state dict)")


def with_sources(runs: Sequence[PlannedRun]) -> list[PlannedRun]:
    """The table's runs with every ``--from`` source before the runs that need it."""
    order: list[PlannedRun] = []
    for r in runs:
        if r.source:
            src = PlannedRun(*r.source)
            if src not in order:
                order.insert(0, src)
        if r not in order:
            order.append(r)
    return order


def plan_steps(runs: Sequence[PlannedRun], seeds: Sequence[int], data: Sequence[str],
               run_options: Sequence[str] = (), weights: str | None = None) -> list[Step]:
    """One step per planned run, skipped with a reason where it cannot run here."""
    from rsbench.models import available_models

    default, per = parse_data(data)
    for path in (default, *per.values()):
        if path is not None and not Path(path).exists():
            raise InputError(f"--data {path}: no such folder; build the dataset there first "
                             "(e.g. rsbench build-msc ... --out DIR) or give the folder a "
                             "builder wrote")
    models = set(available_models())
    steps, problems, imagenet = [], {}, {}
    for plan in with_sources(runs):
        path = per.get(plan.benchmark, default)
        step = Step(plan, list(seeds), path, list(run_options))
        if plan.model not in models:
            step.skip = (f"model {plan.model!r} is not implemented in rsbench (see `rsbench "
                         "models list`)")
        else:
            if plan.benchmark not in problems:
                problems[plan.benchmark] = dataset_problem(plan.benchmark, path)
            step.skip = problems[plan.benchmark]
        if step.skip is None and plan.weights:
            if weights:
                step.options += ["--weights", weights]
            else:
                if plan.benchmark not in imagenet:
                    imagenet[plan.benchmark] = local_imagenet(plan.benchmark)
                value, why = imagenet[plan.benchmark]
                step.options += ["--weights", value] if value else []
                step.skip = why
        steps.append(step)
    skipped = {(s.plan.benchmark, s.plan.model) for s in steps if s.skip}
    for s in steps:
        if s.skip is None and s.plan.source in skipped:
            s.skip = f"the run it starts from ({' '.join(s.plan.source)}) is skipped"
    return steps


def _get(conf: Mapping, dotted: str):
    for part in dotted.split("."):
        if not isinstance(conf, Mapping) or part not in conf:
            return None
        conf = conf[part]
    return conf


def find_source_run(out: str, benchmark: str, model: str, seed: int,
                    overrides: Mapping[str, object]) -> Path | None:
    """The finished run folder of ``model`` on ``benchmark`` with ``seed`` whose settings are
    the benchmark's own except ``overrides`` (dotted keys); the latest finished if several."""
    from rsbench.training.config import load_benchmark

    own = load_benchmark(benchmark)
    keys = {"epochs", "batch_size", "input_size", "optimizer.lr", *overrides}
    allowed = keys | {SHORT_KEYS.get(k, k) for k in keys}
    best: tuple[str, Path] | None = None
    for mf in Path(out).rglob("metrics.json"):
        try:
            metrics = json.loads(mf.read_text())
            conf, _ = read_run_summary(mf.parent / "config.json")  # checked: dicts, not text
        except (OSError, json.JSONDecodeError, InputError):
            continue
        if not isinstance(metrics, dict):
            continue
        spec = conf.get("model_spec")
        name = conf.get("model") or (spec.get("name") if isinstance(spec, dict) else None) \
            or metrics.get("model")
        if not (metrics.get("complete") and conf.get("benchmark") == benchmark
                and name == model and conf.get("seed") == seed
                and not conf.get("from_run") and not conf.get("frozen")):
            continue
        if any(_get(conf, k) != overrides.get(k, _get(own, k)) for k in keys):
            continue
        non_default = (conf.get("identity") or {}).get("non_default") or {}
        if set(non_default) - allowed:  # another setting changed (e.g. a --set not given now)
            continue
        key = str(metrics.get("finished", ""))
        if best is None or key > best[0]:
            best = (key, mf.parent)
    return best[1] if best else None
