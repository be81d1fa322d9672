"""``unet``: U-Net (Ronneberger et al. 2015) with the multitask heads of ``hsi-mtl``.

Encoder of double 3×3 conv blocks with max pooling, decoder with bilinear upsampling and
skip concatenation; one 1×1 head per task on the last decoder features (HSI paper, IV-C1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, ResidualBlock, TaskHeads, make
from rsbench.models.registry import register_model


def double_conv(cin: int, cout: int) -> nn.Module:
    """U-Net's (3×3 conv, BN, ReLU) × 2."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
    )


class UNet(HsiModel):
    """U-Net with ``depth`` poolings; ``width`` channels at full resolution, doubling per level.

    ``residual=True`` swaps the double convs for residual blocks (that is ``res-unet``).
    """

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3, width: int = 64,
                 depth: int = 4, per_pixel: bool = False, residual: bool = False):
        super().__init__(tasks, in_channels, per_pixel)
        block = (lambda a, b: ResidualBlock(a, b)) if residual else double_conv
        widths = [width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([block(in_channels, widths[0])])
        for i in range(1, depth + 1):
            self.down.append(block(widths[i - 1], widths[i]))
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.up = nn.ModuleList()
        for i in range(depth, 0, -1):
            self.up.append(block(widths[i] + widths[i - 1], widths[i - 1]))
        self.heads = TaskHeads(tasks, widths[0], per_pixel=per_pixel)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, stage in enumerate(self.down):
            x = stage(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for stage in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))
        return x

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        return self.heads(self.features(x), tasks, x.shape[-2:])

    def last_shared_layer(self) -> nn.Module:
        last = self.up[-1]
        return last.body[3] if isinstance(last, ResidualBlock) else last[3]


@register_model("unet")
def build(tasks: Sequence[TaskInfo], **options) -> UNet:
    """U-Net (Ronneberger et al. 2015) with one head per TAIGA variable (HSI paper IV-C1)."""
    return make(UNet, tasks, options)
