"""``deeplabv3plus``: DeepLab v3+ (Chen et al. 2018) with the multitask heads of ``hsi-mtl``.

A torchvision ResNet backbone (first conv taking the hyperspectral bands, dilated last stages
for output stride 8), torchvision's ASPP, and the v3+ decoder that fuses the ASPP output with
48-channel low-level features at stride 4; heads are upsampled bilinearly to the input (IV-C4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.segmentation.deeplabv3 import ASPP

from rsbench.errors import UsageError
from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, TaskHeads, make
from rsbench.models.registry import register_model

BACKBONES = {"resnet50": (resnet50, 2048, 256), "resnet18": (resnet18, 512, 64)}


class DeepLabV3Plus(HsiModel):
    """DeepLab v3+ with a ResNet-50 (default) or ResNet-18 backbone, no pretrained weights."""

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3,
                 backbone: str = "resnet50", rates: Sequence[int] = (6, 12, 18),
                 aspp_channels: int = 256, per_pixel: bool = False):
        super().__init__(tasks, in_channels, per_pixel)
        if backbone not in BACKBONES:
            raise UsageError(f"deeplabv3plus backbone {backbone!r} unknown; choose one of "
                             f"{', '.join(BACKBONES)}")
        factory, high, low = BACKBONES[backbone]
        dilate = [False, True, True] if backbone == "resnet50" else None
        net = factory(weights=None, replace_stride_with_dilation=dilate) if dilate else \
            factory(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (net.layer1, net.layer2,
                                                              net.layer3, net.layer4)
        self.aspp = ASPP(high, list(rates), aspp_channels)
        self.low_proj = nn.Sequential(nn.Conv2d(low, 48, 1, bias=False), nn.BatchNorm2d(48),
                                      nn.ReLU(True))
        self.fuse = nn.Sequential(
            nn.Conv2d(aspp_channels + 48, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256),
            nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
        )
        self.heads = TaskHeads(tasks, 256, per_pixel=per_pixel)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        low = self.layer1(self.stem(x))
        high = self.aspp(self.layer4(self.layer3(self.layer2(low))))
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([high, self.low_proj(low)], dim=1))

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        return self.heads(self.features(x), tasks, x.shape[-2:])

    def last_shared_layer(self) -> nn.Module:
        return self.fuse[3]


@register_model("deeplabv3plus")
def build(tasks: Sequence[TaskInfo], **options) -> DeepLabV3Plus:
    """DeepLab v3+ (Chen et al. 2018), ResNet-50 + ASPP + decoder, one head per variable (IV-C4)."""
    return make(DeepLabV3Plus, tasks, options)
