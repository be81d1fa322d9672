"""``hsi-mtl``: the multitask classification + regression network of the HSI paper (Fig. 1).

Shared encoder (conv block, residual cascade, gated Dense ASPP, average pooling and a skip layer
doubling the channels), spectral–spatial residual attention, then two task-specific decoders
(classification path, regression path), each symmetric to the encoder with skip connections
from it, ending in one 1×1 head per task. Ablation switches (Table V, Fig. 13) turn parts off.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import (
    ConvBlock,
    DenseASPP,
    HsiModel,
    ResidualAttention,
    ResidualBlock,
    TaskHeads,
    make,
    norm,
    path_of,
)
from rsbench.models.registry import register_model


class Decoder(nn.Module):
    """One decoder path: channel pooling (1×1 compression), then two upsampling stages that
    concatenate the matching encoder features (symmetric to the encoder)."""

    def __init__(self, cin: int, skips: Sequence[int], widths: Sequence[int], pooled: int,
                 channel_pool: bool, residual: bool, batch_norm: bool):
        super().__init__()
        self.pool = (nn.Sequential(nn.Conv2d(cin, pooled, 1, bias=not batch_norm),
                                   norm(pooled, batch_norm), nn.LeakyReLU(0.01, inplace=True))
                     if channel_pool else nn.Identity())
        c = pooled if channel_pool else cin
        self.stages = nn.ModuleList()
        for skip, width in zip(skips, widths):
            self.stages.append(ResidualBlock(c + skip, width, residual=residual,
                                             batch_norm=batch_norm))
            c = width
        self.out_channels = c

    def forward(self, x: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.pool(x)
        for stage, skip in zip(self.stages, skips):
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))
        return x


class HsiMtl(HsiModel):
    """The proposed model. ``width`` sets the first block's channels (encoder: w, 2w, 4w, 8w);
    the paper does not state it: 128 by default, which gives Table VII's size (20.10M against
    19.68M on 45×45×110 windows). ``pooled``: channels of each decoder's 1×1 compression (2w
    by default: the 256 that Section III-D states at the default width).

    Switches (all on = the paper's model): ``residual`` (projection-shortcut ResNet blocks),
    ``aspp`` (Dense ASPP), ``attention`` (residual attention), ``channel_pool`` (1×1 compression
    at the start of each decoder path), ``batch_norm``, ``gap`` (the average pooling after the
    ASPP) and ``skip`` (the 1×1 skip layer doubling the channels).
    """

    # shared: the encoder and the attention; each decoder path serves the tasks of its type
    task_specific = ("decoders", "heads")

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3, width: int = 128,
                 rates: Sequence[int] = (3, 6, 12), first_kernel: int = 3,
                 per_pixel: bool = False, residual: bool = True, aspp: bool = True,
                 attention: bool = True, channel_pool: bool = True, batch_norm: bool = True,
                 gap: bool = True, skip: bool = True, reduction: int = 16,
                 pooled: int | None = None):
        super().__init__(tasks, in_channels, per_pixel)
        w = int(width)
        pooled = int(pooled or 2 * w)
        self.options = dict(width=w, rates=list(rates), residual=residual, aspp=aspp,
                            attention=attention, channel_pool=channel_pool,
                            batch_norm=batch_norm, gap=gap, skip=skip, pooled=pooled)
        # shared encoder
        self.stem = ConvBlock(in_channels, w, kernel=first_kernel, batch_norm=batch_norm)
        self.stage1 = ResidualBlock(w, 2 * w, residual=residual, batch_norm=batch_norm)
        self.down1 = nn.AvgPool2d(2, ceil_mode=True)
        self.stage2 = ResidualBlock(2 * w, 4 * w, residual=residual, batch_norm=batch_norm)
        self.aspp = DenseASPP(4 * w, rates, batch_norm=batch_norm) if aspp else nn.Identity()
        self.down2 = nn.AvgPool2d(2, ceil_mode=True) if gap else nn.Identity()
        bottleneck = 8 * w if skip else 4 * w
        self.skip_layer = (nn.Sequential(nn.Conv2d(4 * w, bottleneck, 1, bias=not batch_norm),
                                         norm(bottleneck, batch_norm),
                                         nn.LeakyReLU(0.01, inplace=True))
                           if skip else nn.Identity())
        self.attention = ResidualAttention(bottleneck, reduction) if attention else nn.Identity()
        # task-specific decoders: one path per task type that is present
        paths = sorted({path_of(t) for t in tasks})
        self.decoders = nn.ModuleDict({
            p: Decoder(bottleneck, skips=(4 * w, 2 * w), widths=(2 * w, w), pooled=pooled,
                       channel_pool=channel_pool, residual=residual, batch_norm=batch_norm)
            for p in paths
        })
        self.heads = TaskHeads(tasks, {p: d.out_channels for p, d in self.decoders.items()},
                               per_pixel=per_pixel)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Shared features and the encoder skips (coarse to fine) for the decoders."""
        e1 = self.stage1(self.stem(x))
        e2 = self.stage2(self.down1(e1))
        z = self.skip_layer(self.down2(self.aspp(e2)))
        return self.attention(z), [e2, e1]

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        z, skips = self.encode(x)
        needed = {path_of(self.tasks[t]) for t in tasks}
        feats = {p: self.decoders[p](z, skips) for p in needed}
        return self.heads(feats, tasks, x.shape[-2:])

    def last_shared_layer(self) -> nn.Module:
        if isinstance(self.skip_layer, nn.Sequential):
            return self.skip_layer[0]
        return self.stage2.body[3]

    def parameter_breakdown(self) -> dict[str, int]:
        def count(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())
        shared = (count(self.stem) + count(self.stage1) + count(self.stage2) + count(self.aspp)
                  + count(self.skip_layer) + count(self.attention))
        out = {"shared encoder + attention": shared}
        for p, d in self.decoders.items():
            out[f"{p} decoder"] = count(d)
        out["task heads"] = count(self.heads)
        out["total"] = sum(p.numel() for p in self.parameters())
        return out


@register_model("hsi-mtl")
def build(tasks: Sequence[TaskInfo], **options) -> HsiMtl:
    """HSI paper's multitask model: residual encoder, Dense ASPP, attention, 2 decoders."""
    return make(HsiMtl, tasks, options)


@register_model("hsi-mtl-baseline")
def build_baseline(tasks: Sequence[TaskInfo], **options) -> HsiMtl:
    """Table V 'Baseline': plain encoder-decoder, no shortcuts, ASPP, attention or pooling."""
    return make(HsiMtl, tasks, options, residual=False, aspp=False, attention=False,
                channel_pool=False)


@register_model("hsi-mtl-r")
def build_r(tasks: Sequence[TaskInfo], **options) -> HsiMtl:
    """Table V 'Baseline + R': residual blocks."""
    return make(HsiMtl, tasks, options, aspp=False, attention=False, channel_pool=False)


@register_model("hsi-mtl-rd")
def build_rd(tasks: Sequence[TaskInfo], **options) -> HsiMtl:
    """Table V 'Baseline + RD': residual blocks and Dense ASPP."""
    return make(HsiMtl, tasks, options, attention=False, channel_pool=False)


@register_model("hsi-mtl-rda")
def build_rda(tasks: Sequence[TaskInfo], **options) -> HsiMtl:
    """Table V 'Baseline + RDA' (and '+ RDAM' with a multitask --weighting)."""
    return make(HsiMtl, tasks, options, channel_pool=False)


@register_model("hsi-mtl-dac")
def build_dac(tasks: Sequence[TaskInfo], **options) -> HsiMtl:
    """Table V 'Baseline + DAC': Dense ASPP, attention and channel pooling without shortcuts."""
    return make(HsiMtl, tasks, options, residual=False)
