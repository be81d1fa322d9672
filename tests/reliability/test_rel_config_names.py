"""A benchmark config (or --set) naming an optimiser or schedule that does not exist is one
line listing the registered names, not an unexpected error from the import machinery."""

from __future__ import annotations

import pytest
import torch

from rsbench.errors import UsageError
from rsbench.training.factories import make_optimizer, make_scheduler


def _params():
    return [torch.nn.Parameter(torch.zeros(2))]


def test_unknown_optimizer_names_the_choices() -> None:
    with pytest.raises(UsageError, match=r"unknown optimizer 'nope'.*adam, adamw, sgd"):
        make_optimizer({"optimizer": {"name": "nope", "lr": 1e-3}}, _params())


def test_unknown_scheduler_names_the_choices() -> None:
    opt = make_optimizer({"optimizer": {"name": "adam", "lr": 1e-3}}, _params())
    with pytest.raises(UsageError, match=r"unknown scheduler 'warp'.*constant, cosine, step"):
        make_scheduler({"scheduler": "warp"}, opt, epochs=2)


def test_a_dotted_path_that_does_not_import_is_one_line() -> None:
    with pytest.raises(UsageError, match="cannot import 'no_such_pkg:Opt'"):
        make_optimizer({"optimizer": {"name": "no_such_pkg:Opt", "lr": 1e-3}}, _params())
    with pytest.raises(UsageError, match="neither a registered name"):
        make_optimizer({"optimizer": {"name": ":Opt", "lr": 1e-3}}, _params())


def test_a_dotted_path_keeps_its_case() -> None:
    opt = make_optimizer({"optimizer": {"name": "torch.optim:RMSprop", "lr": 1e-3}}, _params())
    assert isinstance(opt, torch.optim.RMSprop)
