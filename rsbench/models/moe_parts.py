"""Pieces the architectures of LibMTL's family share (``mtan``, ``mmoe``, ``cgc``, ``ple``,
``dselect-k``, ``ltb``): the softmax gate that weighs experts per image, the mixing of expert
outputs, the modules of one backbone block, and the refusal of TAIGA's per-pixel protocol over
an image backbone (over the HSI paper's encoder they run there: ``rsbench.models.hsi_stages``).

Gates read their input average-pooled to ``pool`` × ``pool`` (8 by default) and flattened:
LibMTL flattens the whole input image (``img_size``), which for a 224×224 image is a 150,528-wide
linear layer per task and per level; the pooled image keeps the gate a per-image linear map at a
size that does not grow with the image (``gate_pool`` = the input size gives LibMTL's gate).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.backbones import Backbone, Features

GATE_POOL = 8
IMAGE_BENCHMARKS = "msc, mini-msc, psc5 or psc15"


def gate_input(x: torch.Tensor, pool: int) -> torch.Tensor:
    """The gate's view of ``x``: average-pooled to pool × pool, flattened per image."""
    return torch.flatten(F.adaptive_avg_pool2d(x, pool), 1)


class SoftmaxGate(nn.Module):
    """g(x) = softmax(W x): one non-negative weight per expert for each image, summing to 1
    (MMoE's gate, eq. 5 of Ma et al. 2018; CGC's and PLE's gates, Tang et al. 2020)."""

    def __init__(self, channels: int, experts: int, pool: int = GATE_POOL):
        super().__init__()
        self.pool = int(pool)
        self.linear = nn.Linear(channels * self.pool * self.pool, experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(gate_input(x, self.pool)).float(), dim=-1)


def mix(outputs: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """sum_e weights[:, e] * outputs[e]: the gated combination of same-shaped expert outputs."""
    stacked = torch.stack(list(outputs), dim=1)  # B × E × ...
    w = weights.to(stacked.dtype).reshape(*weights.shape, *([1] * (stacked.ndim - 2)))
    return (stacked * w).sum(dim=1)


def mixed_features(template: Features, final: torch.Tensor) -> Features:
    """Features for the heads of a mixture of whole networks: the mixed last feature, block
    shapes from one expert and no pooling indices (every expert pools at its own positions, so
    the SegNet decoder upsamples bilinearly)."""
    return Features(z=[], f=list(template.f), final=final, indices=[])


def block_modules(backbone: Backbone, j: int) -> list[nn.Module]:
    """The modules holding block ``j``'s parameters (``stage(j)`` of rsbench's backbones)."""
    name = backbone.name
    last = j == backbone.num_blocks - 1
    if name == "resnet34":
        return [backbone.conv1, backbone.bn1] if j == 0 else [
            (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4)[j - 1]]
    if name == "vgg16":
        start, stop = backbone.blocks[j]
        return [backbone.features[start:stop]]
    if name.startswith("wrn"):
        if j == 0:
            return [backbone.conv1]
        return [backbone.groups[j - 1], *([backbone.bn] if last else [])]
    raise UsageError(f"no block layout known for backbone {name!r}")


def check_experts(model: str, **counts: int) -> None:
    """A one-line UsageError for an expert count below 1 (or below what the gate selects)."""
    for key, value in counts.items():
        if int(value) < 1:
            raise UsageError(f"{model}: {key} must be at least 1, got {value}; fix "
                             f"model_options.{key} (--set model_options.{key}=N)")


def refuse_per_pixel(model: str, per_pixel: bool | None) -> None:
    """Over the MTLN paper's backbones these models predict one output per image: TAIGA's
    per-pixel protocol is refused in one line (over the HSI encoder they are dense)."""
    if per_pixel:
        raise UsageError(f"{model} predicts one output per image over the MTLN paper's "
                         f"backbones (resnet34, wrn28_4, vgg16): run those on "
                         f"{IMAGE_BENCHMARKS}; on TAIGA's per-pixel protocol drop --backbone "
                         "(its default is the HSI paper's encoder, backbone hsi)")


def count(module: nn.Module | Sequence[nn.Module]) -> int:
    mods = [module] if isinstance(module, nn.Module) else list(module)
    return sum(p.numel() for m in mods for p in m.parameters())
