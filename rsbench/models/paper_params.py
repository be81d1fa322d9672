"""Parameter counts of our models next to the MTLN paper's (Table II, and the "No. parameters"
rows of Tables III-V), for ``rsbench models params`` and the report's params table.

Models are built on PyTorch's meta device: shapes only, no memory, no forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rsbench.errors import UsageError
from rsbench.models.base import TaskInfo

M = 1_000_000


@dataclass(frozen=True)
class Benchmark:
    """What parameter counts depend on: the backbone and the tasks' output sizes."""

    backbone: str
    tasks: tuple[TaskInfo, ...]


def _scenes(classes: dict[str, int]) -> tuple[TaskInfo, ...]:
    return tuple(TaskInfo(n, "classification", c) for n, c in classes.items())


def _psc(classes: int) -> tuple[TaskInfo, ...]:
    # segmentation scores C + 1 classes: class 0 is the unlabelled/unknown class
    return (TaskInfo("scene", "classification", classes),
            TaskInfo("segmentation", "segmentation", classes + 1))


BENCHMARKS: dict[str, Benchmark] = {
    "msc": Benchmark("resnet34", _scenes({"merced": 21, "aid": 30, "nwpu": 45})),
    "mini-msc": Benchmark("wrn28_4", _scenes({"merced": 12, "aid": 12, "nwpu": 12})),
    "psc5": Benchmark("vgg16", _psc(5)),
    "psc15": Benchmark("vgg16", _psc(15)),
}

# Table II (the paper ignores the PSC5/PSC15 difference and the scene classifier, "~0M")
TABLE_II: dict[str, dict[str, float | str]] = {
    "msc": {"shared": 21.29 * M, "scene_classifier": "~0M", "attention_per_task": 1.06 * M,
            "extractors": 1.58 * M, "total": 26.11 * M},
    "mini-msc": {"shared": 5.86 * M, "scene_classifier": "~0M", "attention_per_task": 0.31 * M,
                 "extractors": 0.83 * M, "total": 7.62 * M},
    "psc": {"shared": 15.49 * M, "scene_classifier": "~0M", "pixel_classifier": 9.44 * M,
            "attention_per_task": 1.80 * M, "extractors": 6.27 * M, "total": 34.80 * M},
}

# "No. parameters" of Tables III (a, b), IV and V (a, b)
PAPER_TOTALS: dict[str, dict[str, float]] = {
    "msc": {"single-task": 63.92 * M, "fine-tune": 63.92 * M, "cross-stitch": 63.92 * M,
            "den": 31.29 * M, "uncertainty": 21.34 * M, "shared-specific": 21.34 * M,
            "baseline-attention": 71.85 * M, "mtln": 26.11 * M},
    "mini-msc": {"single-task": 17.58 * M, "fine-tune": 17.58 * M, "cross-stitch": 17.58 * M,
                 "den": 7.72 * M, "uncertainty": 5.87 * M, "shared-specific": 5.87 * M,
                 "baseline-attention": 21.26 * M, "mtln": 7.62 * M},
    "psc": {"single-task": 41.32 * M, "cross-stitch": 41.32 * M, "uncertainty": 24.93 * M,
            "mtln": 34.80 * M},
}

# the MTLN paper's methods, in the order of its tables
SCENE_MODELS = ("single-task", "fine-tune", "cross-stitch", "uncertainty", "shared-specific",
                "baseline-attention", "mtln")
# DEN (Table III only) classifies scenes: it is counted on MSC and mini-MSC, after Cross-Stitch
SCENE_ONLY_MODELS = ("den",)


def table_models(bench: str) -> tuple[str, ...]:
    """The methods whose totals ``rsbench models params --benchmark bench`` lists: the paper's,
    then every other registered model over these backbones (e.g. LibMTL's architectures)."""
    paper = (SCENE_MODELS if bench.startswith("psc")
             else SCENE_MODELS[:3] + SCENE_ONLY_MODELS + SCENE_MODELS[3:])
    return paper + other_models(paper + SCENE_ONLY_MODELS)


def other_models(listed: tuple[str, ...]) -> tuple[str, ...]:
    """Registered models outside ``listed`` built over the MTLN paper's backbones (a factory
    whose ``backbone`` option defaults to ResNet-34, or to the benchmark's: None, as LibMTL's
    architectures, whose default on TAIGA is the HSI encoder), in name order."""
    import inspect

    from rsbench.models import model_factories

    found = []
    for name, factory in sorted(model_factories().items()):
        option = inspect.signature(factory).parameters.get("backbone")
        if name not in listed and option is not None and option.default in ("resnet34", None):
            found.append(name)
    return tuple(found)

COMPONENTS = {
    "shared": "Shared branch", "networks": "Per-task networks",
    "scene_classifier": "Scene classifier", "pixel_classifier": "Pixel classifier",
    "attention_per_task": "Attention modules / task", "extractors": "Extractors",
    "cross_stitch": "Cross-stitch units", "selectors": "Selector networks",
    "experts": "Shared experts", "task_experts": "Task experts", "gates": "Gates",
    "branching": "Branching logits", "loss_weights": "Loss weights", "total": "Total",
}


def paper_key(benchmark: str) -> str:
    return "psc" if benchmark.startswith("psc") else benchmark


def benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def breakdown(model: str, bench: str) -> dict[str, int]:
    """``parameter_breakdown()`` of ``model`` built for benchmark ``bench`` (meta device)."""
    from rsbench.models import architecture_of, build_model

    spec = benchmark(bench)
    with torch.device("meta"):  # fine-tune: single-task's networks, only initialised otherwise
        net = build_model(architecture_of(model), list(spec.tasks), backbone=spec.backbone)
    return net.parameter_breakdown()


def table_ii(bench: str) -> tuple[list[str], list[list[object]]]:
    """Table II for one benchmark: our MTLN's components, the paper's, and the difference."""
    ours = breakdown("mtln", bench)
    paper = TABLE_II[paper_key(bench)]
    keys = [k for k in COMPONENTS if k in ours or k in paper]
    header = ["", *(COMPONENTS[k] for k in keys)]
    diff = ["difference", *(_diff(ours.get(k), paper.get(k)) for k in keys)]
    return header, [["rsbench", *(ours.get(k) for k in keys)],
                    ["paper", *(paper.get(k) for k in keys)], diff]


def totals(bench: str) -> tuple[list[str], list[list[object]]]:
    """Total parameters of every MTLN-paper method next to the paper's "No. parameters"."""
    paper = PAPER_TOTALS[paper_key(bench)]
    rows = []
    for model in table_models(bench):
        ours = breakdown(model, bench)["total"]
        rows.append([model, ours, paper.get(model), _diff(ours, paper.get(model))])
    return ["Method", "rsbench", "paper", "difference"], rows


def _diff(ours: object, paper: object) -> str | None:
    if not isinstance(ours, (int, float)) or not isinstance(paper, (int, float)) or not paper:
        return None
    return f"{100 * (ours - paper) / paper:+.2f}%"
