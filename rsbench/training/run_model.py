"""The model of one run: its method name, constructor arguments, rebuildable spec, parameter
count, and how it starts (fresh, ImageNet weights, a source run, or a checkpoint's spec)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from rsbench.errors import UsageError
from rsbench.training.run_data import in_channels
from rsbench.training.run_folder import build_from_spec, check_spec


def method_name(cfg: Mapping[str, Any], model: str, *, weights: str | None,
                from_run: str | None, frozen: bool) -> str:
    """The table row a run belongs to: MODEL, MODEL-frozen, MODEL-transfer, MODEL+pretrained,
    plus the weighting's suffix (``+gradnorm``) when it is not the benchmark's."""
    if from_run:
        from rsbench.training.transfer import finished_run_config

        source = finished_run_config(from_run)  # checked: one line for a damaged file
        base = source.model
        check_source_benchmark(cfg, from_run, source.summary.benchmark)
        if base != model:
            raise UsageError(f"--from {from_run} is a {base!r} run, not {model!r}; pass "
                             f"--model {base} (the run's model is the one transferred)")
        return f"{base}-{'frozen' if frozen else 'transfer'}"
    name = f"{model}-frozen" if frozen else model
    from rsbench.models import starts_from_weights

    if weights and not starts_from_weights(model):
        name += "+pretrained"  # not the paper's from-scratch method: its own table row
    return name + cfg.get("method_suffix", "")  # e.g. "+gradnorm" (--weighting)


def check_source_benchmark(cfg: Mapping[str, Any], from_run: str,
                           benchmark: str | None) -> None:
    """A transfer benchmark's ``transfer.from_benchmark`` names what its ``--from`` run was
    trained on (MSC in the paper); a run of that benchmark, or of one extending it (mini-msc),
    is a source, any other one line."""
    from rsbench.training.config import lineage

    want = (cfg.get("transfer") or {}).get("from_benchmark")
    if not want or benchmark is None or want in lineage(benchmark):
        return
    raise UsageError(f"--from {from_run} is a {benchmark} run, but this benchmark transfers "
                     f"the shared branch of a {want} run (its transfer.from_benchmark); pass "
                     f"a run of {want} or of a benchmark that extends it")


def model_unstated(unstated: Mapping[str, str], model: str) -> dict[str, str]:
    """The benchmark's unstated settings that apply to a run of ``model``: a key prefixed by
    another model's name (``den.reward``) belongs to that model's runs only."""
    from rsbench.models import available_models

    others = set(available_models()) - {model}
    return {k: v for k, v in unstated.items() if k.split(".", 1)[0] not in others}


def model_kwargs(cfg: Mapping[str, Any], data, weights: str | None,
                 model: str | None = None) -> dict[str, Any]:
    """Constructor arguments of the model under ``cfg`` (backbone, bands, weights, options).

    The benchmark's ``backbone`` is its choice for the models that take one: it reaches only
    those (a model with its own fixed network, like the README's one-file example, runs on
    every benchmark); ``model_options`` and ``--set`` are the user's and are checked by name.
    """
    from rsbench.models import takes_option

    options: dict[str, Any] = {}
    if cfg.get("backbone") and (model is None or takes_option(model, "backbone")):
        options["backbone"] = cfg["backbone"]
    ch = in_channels(data, cfg.get("image_array", "image"))
    if ch != 3:
        options["in_channels"] = ch
    if weights:
        options["weights"] = weights
    options.update(cfg.get("model_options") or {})
    return options


def model_spec(cfg: Mapping[str, Any], data, model: str, infos: Sequence, *,
               weights: str | None, from_run: str | None, frozen: bool) -> dict[str, Any]:
    """{name, kwargs, tasks, added}: enough to rebuild the model (``rebuild_model``)."""
    if from_run:
        from rsbench.training.transfer import transfer_spec

        return transfer_spec(from_run, infos, frozen=frozen,
                             init_branch=(cfg.get("transfer") or {}).get("init_branch"))
    return {"name": model, "kwargs": model_kwargs(cfg, data, weights, model),
            "tasks": [[i.name, i.type, i.num_outputs] for i in infos], "added": []}


def build_run_model(cfg: Mapping[str, Any], spec: Mapping[str, Any], infos: Sequence, *,
                    from_run: str | None, frozen: bool, resuming: bool) -> nn.Module:
    """The model, initialised as the method starts it (fresh, ImageNet, or a source run);
    when ``resuming``, rebuilt from its spec alone (the checkpoint holds every weight)."""
    from rsbench.models import build_model
    from rsbench.training.transfer import freeze_shared

    if resuming and from_run:
        from rsbench.training.transfer import resumed_transfer_model

        return resumed_transfer_model(from_run, spec, len(infos))
    if resuming:
        model = build_from_spec(spec)
    elif from_run:
        from rsbench.training.transfer import model_from_run

        return model_from_run(from_run, infos, frozen=frozen,
                              init_branch=(cfg.get("transfer") or {}).get("init_branch"))
    else:
        check_spec(spec)  # size and options checked on the meta device before allocation
        model = build_model(spec["name"], infos, **spec["kwargs"])
    if frozen:
        freeze_shared(model)
    return model


def count_parameters(model: nn.Module, weighting: nn.Module | None = None) -> dict[str, Any]:
    """Total and trainable parameters, and the model's own breakdown (shared/task parts), plus
    the weighting's learned ones (``loss_weights``, e.g. uncertainty's) when it has any."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    try:
        breakdown = {k: int(v) for k, v in model.parameter_breakdown().items()}
    except Exception:  # noqa: BLE001 - a model without a breakdown still reports its total
        breakdown = {"total": total}
    extra = sum(p.numel() for p in weighting.parameters()) if weighting is not None else 0
    if extra:
        breakdown["loss_weights"] = int(extra)
        breakdown["total"] = int(breakdown.get("total", total)) + int(extra)
        total, trainable = total + extra, trainable + extra
    return {"total": int(total), "trainable": int(trainable), "breakdown": breakdown}
