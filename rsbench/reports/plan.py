"""The runs a paper table needs, declared by each table module (``TableSpec.runs``) and carried
out by ``rsbench reproduce``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedRun:
    """One ``rsbench run BENCHMARK --model MODEL [options]`` (every seed).

    ``source`` is the (benchmark, model) of a finished run this one starts from (``--from``, the
    same seed); ``weights`` marks a run that needs ImageNet weights for its backbone.
    """

    benchmark: str
    model: str
    options: tuple[str, ...] = ()
    source: tuple[str, str] | None = None
    weights: bool = False

    @property
    def method(self) -> str:
        """The method name the run gets (as `rsbench run` names it)."""
        if self.source:
            return f"{self.model}-{'frozen' if '--frozen' in self.options else 'transfer'}"
        name = f"{self.model}-frozen" if "--frozen" in self.options else self.model
        if "--weighting" in self.options:
            name += "+" + self.options[self.options.index("--weighting") + 1]
        return name

    def describe(self) -> str:
        return " ".join([self.benchmark, self.model, *self.options])


def planned(benchmark: str, method: str) -> PlannedRun:
    """The run behind a method name: ``MODEL`` or ``MODEL+WEIGHTING``; ``fine-tune`` needs
    ImageNet weights (a model that starts from weights, registered with the model)."""
    from rsbench.training.weighting import WEIGHTINGS  # the registry of weightings

    model, _, weighting = method.partition("+")
    options = ("--weighting", weighting) if weighting in WEIGHTINGS else ()
    from rsbench.models import starts_from_weights

    return PlannedRun(benchmark, model, options, weights=starts_from_weights(model))


def plan_rows(benchmarks: Iterable[str], methods: Iterable[str]) -> list[PlannedRun]:
    """Every method on every benchmark (the MTLN paper's single-benchmark tables)."""
    return [planned(b, m) for b in benchmarks for m in methods]
