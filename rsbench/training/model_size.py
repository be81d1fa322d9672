"""A model's size, known before any of it is allocated.

The model is first built on PyTorch's meta device (shapes only, no memory, no weights read):
its parameters and buffers are counted and compared with a limit, so a width of 200,000 or a
head of 10⁹ outputs, whether from a received run folder's ``model_spec`` or a ``--set``, is
one line instead of a machine out of memory. While the meta build runs, a registration hook
stops it as soon as the count passes twice the limit, so even a depth of 10⁹ layers ends
quickly. The limit (:data:`DEFAULT_MAX_PARAMETERS`, about 8× the largest shipped model) is
raised with the environment variable ``RSBENCH_MAX_PARAMETERS``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn.modules import module as _module

from rsbench.errors import UsageError

LIMIT_ENV = "RSBENCH_MAX_PARAMETERS"
DEFAULT_MAX_PARAMETERS = 500_000_000  # 2 GB of float32 weights (8 GB with Adam's state)


class TooLarge(Exception):
    """The meta build passed the limit while it ran (raised from a registration hook)."""

    def __init__(self, count: int):
        super().__init__(f"more than {count:,} parameters")
        self.count = count


def max_parameters() -> int:
    """The largest model (parameters + buffers) rsbench builds: ``RSBENCH_MAX_PARAMETERS`` or
    :data:`DEFAULT_MAX_PARAMETERS`."""
    raw = os.environ.get(LIMIT_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PARAMETERS
    if not raw.isdigit():
        raise UsageError(f"{LIMIT_ENV}={os.environ[LIMIT_ENV]!r} is not a whole number of "
                         "parameters; set it like RSBENCH_MAX_PARAMETERS=2000000000")
    return int(raw)


@contextlib.contextmanager
def _stop_above(limit: int) -> Iterator[None]:
    """Raise :class:`TooLarge` from inside the build once its tensors pass ``limit`` elements."""
    total = 0

    def hook(_module_, _name, tensor):
        nonlocal total
        if tensor is not None:
            total += tensor.numel()
            if total > limit:
                raise TooLarge(total)

    handles = [_module.register_module_parameter_registration_hook(hook),
               _module.register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def meta_model(build: Callable[[], nn.Module], limit: int | None = None) -> nn.Module:
    """``build()`` run on the meta device (nothing allocated); :class:`TooLarge` when it
    registers more than twice ``limit`` elements on the way (a model that creates and discards
    modules while it is built counts them too, hence the margin)."""
    limit = max_parameters() if limit is None else limit
    with torch.device("meta"), _stop_above(2 * limit):
        return build()


def size_of(model: nn.Module) -> int:
    """Elements of the model's parameters and buffers (shared tensors counted once)."""
    seen = {id(t): t.numel() for t in (*model.parameters(), *model.buffers())}
    return int(sum(seen.values()))


def too_large(count: int, what: str, *, at_least: bool = False) -> str:
    """The sentence for a model of ``count`` elements (``at_least``: the meta build was stopped
    there) that ``what`` describes."""
    limit = max_parameters()
    more = "more than " if at_least else ""
    return (f"{what} describes a model of {more}{count:,} parameters ({more}"
            f"{count * 4 / 2**30:,.1f} GiB as float32), above rsbench's limit of {limit:,}; if "
            f"that is intended, raise the limit: "
            + (f"{LIMIT_ENV}=N rsbench ..., N above {count:,}" if at_least
               else f"{LIMIT_ENV}={count} rsbench ..."))
