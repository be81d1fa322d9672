"""The layers import one way, lazy imports (inside functions) included.

cli -> launch -> reports -> training -> datasets / models / plots -> core (the modules at the top of
``rsbench/``: errors, progress, locking, diskspace, separability). Inside ``rsbench.datasets``:
builders -> format, sources, previews; previews -> format; synth -> sources; sources and format
-> core. Every ``import`` statement of every module is read with :mod:`ast`, wherever it stands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DATASET_ROOMS = ("format", "sources", "builders", "synth", "previews")
DATASETS = {"datasets", *(f"datasets.{r}" for r in DATASET_ROOMS)}
# room -> rooms it may import (besides itself and core); above datasets, any of its rooms
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "plots": set(),
    "models": set(),
    "datasets.format": set(),
    "datasets.sources": set(),
    "datasets.previews": {"datasets.format"},
    "datasets.synth": {"datasets.sources"},
    "datasets.builders": {"datasets.format", "datasets.sources", "datasets.previews"},
    "datasets": {"datasets.format", "datasets.previews"},  # __init__, torch_dataset, export
    "training": {*DATASETS, "models", "plots"},
    "reports": {*DATASETS, "models", "training", "plots"},
    "launch": {*DATASETS, "models", "training", "reports", "plots"},  # launchers, run status
    "cli": {"*"},
}


def room(module: str) -> str:
    """The layer a dotted module name belongs to."""
    parts = module.split(".")
    if parts[0] != "rsbench" or len(parts) == 1:
        return "core"
    top = parts[1]
    if top == "datasets":
        return f"datasets.{parts[2]}" if len(parts) > 2 and parts[2] in DATASET_ROOMS \
            else "datasets"
    if top in ("plots", "models", "training", "reports", "launch", "cli"):
        return top
    return "core"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "cli":
        parts = ["rsbench", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[:2] == ["rsbench", "cli"]:
        base = ROOT / "cli" / Path(*parts[2:]) if len(parts) > 2 else ROOT / "cli"
    else:
        base = ROOT / Path(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported rsbench module) for every import in ``source``, anywhere in the file."""
    out = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("rsbench")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("rsbench"):
                continue
            # `from rsbench.datasets import gid` imports the module rsbench.datasets.sources.gid
            subs = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")]
            out += [(node.lineno, s) for s in subs] or [(node.lineno, target)]
    return out


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    mine = room(module)
    allowed = ALLOWED[mine]
    bad = []
    for line, target in imports(source, module, is_package):
        theirs = room(target)
        if not (theirs in (mine, "core") or theirs in allowed or "*" in allowed):
            bad.append(f"{module}:{line} ({mine}) imports {target} ({theirs})")
    return bad


def project_modules() -> list[Path]:
    files = [*sorted((ROOT / "rsbench").rglob("*.py")), *sorted((ROOT / "cli").glob("*.py"))]
    # rsbench/cli is a symlink to ../cli in worktrees; read each file once
    return [f for f in files if "cli" not in f.relative_to(ROOT).parts[1:2]
            and f.name != "__main__.py"]  # __main__ is the entry point: it runs the CLI


def test_every_module_imports_only_downwards() -> None:
    bad = []
    for f in project_modules():
        bad += violations(f.read_text(), module_name(f), f.name == "__init__.py")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


@pytest.mark.parametrize("module, source", [
    ("rsbench.models.newnet", "def f():\n    from rsbench.training.loop import Loop\n"),
    ("rsbench.datasets.format.reader", "from rsbench.datasets.builders import psc\n"),
    ("rsbench.datasets.previews.psc", "import rsbench.datasets.sources.gid\n"),
    ("rsbench.datasets.sources.gid", "from ..format.manifest import TaskSpec\n"),
    ("rsbench.datasets.builders.psc", "from rsbench.reports import table\n"),
    ("rsbench.errors", "from rsbench.datasets import open_dataset\n"),
    ("rsbench.training.loop", "from rsbench.reports.table import Table\n"),
    ("rsbench.plots.curves", "from rsbench.cli.main import main\n"),
])
def test_a_wrong_import_is_caught(module, source) -> None:
    """The checker itself: each of these, lazy or relative, breaks a layer."""
    assert violations(source, module)


def test_allowed_imports_pass() -> None:
    assert not violations("from rsbench.datasets.format.reader import Dataset\n"
                          "from rsbench.errors import InputError\n",
                          "rsbench.datasets.builders.psc")
    assert not violations("def f():\n    from rsbench.plots.confusion import plot_confusion\n",
                          "rsbench.training.metrics")


def test_format_modules_import_without_a_circle() -> None:
    """manifest <- staging <- summary <- reader <- finalize <- writer: no format module reaches
    back to one that imports it, at module top or inside a function (type-checking-only imports
    excepted: they never run)."""
    folder = ROOT / "rsbench" / "datasets" / "format"
    graph: dict[str, set[str]] = {}
    for f in folder.glob("*.py"):
        tree = ast.parse(f.read_text())
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and getattr(node.test, "id", "") == "TYPE_CHECKING"
                       for n in ast.walk(node)}
        graph[f.stem] = {a.module.rpartition(".")[2] for a in ast.walk(tree)
                         if isinstance(a, ast.ImportFrom) and id(a) not in typing_only
                         and (a.module or "").startswith("rsbench.datasets.format.")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph.get(start, ()))

    circles = sorted(m for m in graph if reaches(m, m, {m}))
    assert not circles, f"format modules in an import circle: {circles}"
