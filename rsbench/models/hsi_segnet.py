"""``segnet``: SegNet (Badrinarayanan et al. 2017) with the multitask heads of ``hsi-mtl``.

VGG-16-style encoder (2, 2, 3, 3, 3 conv layers per stage); the decoder upsamples with the
encoder's max-pooling indices (no learned upsampling, no skip concatenation) (IV-C2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, TaskHeads, make
from rsbench.models.registry import register_model

VGG_LAYERS = (2, 2, 3, 3, 3)


def conv_stack(cin: int, cout: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU(True)]
    return nn.Sequential(*layers)


class SegNet(HsiModel):
    """SegNet with ``stages`` encoder stages (5 as VGG-16; fewer suit small patches)."""

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3, width: int = 64,
                 stages: int = 5, per_pixel: bool = False):
        super().__init__(tasks, in_channels, per_pixel)
        widths = [min(width * 2 ** i, width * 8) for i in range(stages)]
        self.enc = nn.ModuleList()
        c = in_channels
        for i in range(stages):
            self.enc.append(conv_stack(c, widths[i], VGG_LAYERS[i % len(VGG_LAYERS)]))
            c = widths[i]
        self.dec = nn.ModuleList()
        for i in range(stages - 1, -1, -1):
            cout = widths[i - 1] if i > 0 else widths[0]
            n = VGG_LAYERS[i % len(VGG_LAYERS)]
            self.dec.append(nn.Sequential(conv_stack(widths[i], widths[i], n - 1),
                                          conv_stack(widths[i], cout, 1)))
        self.pool = nn.MaxPool2d(2, return_indices=True, ceil_mode=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.heads = TaskHeads(tasks, widths[0], per_pixel=per_pixel)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        memo = []
        for stage in self.enc:
            x = stage(x)
            size = x.shape[-2:]
            x, idx = self.pool(x)
            memo.append((idx, size))
        for stage in self.dec:
            idx, size = memo.pop()
            x = stage(self.unpool(x, idx, output_size=size))
        return x

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        return self.heads(self.features(x), tasks, x.shape[-2:])

    def last_shared_layer(self) -> nn.Module:
        return self.dec[-1][-1][0]


@register_model("segnet")
def build(tasks: Sequence[TaskInfo], **options) -> SegNet:
    """SegNet (Badrinarayanan et al. 2017), pooling-index decoder, one head per variable (IV-C2)."""
    return make(SegNet, tasks, options)
