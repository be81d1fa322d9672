"""``res-unet``: U-Net whose conv blocks are residual blocks (HSI paper, IV-C3)."""

from __future__ import annotations

from collections.abc import Sequence

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import make
from rsbench.models.hsi_unet import UNet
from rsbench.models.registry import register_model


@register_model("res-unet")
def build(tasks: Sequence[TaskInfo], **options) -> UNet:
    """Res-U-Net: U-Net with projection-shortcut residual blocks, one head per variable (IV-C3)."""
    return make(UNet, tasks, options, residual=True)
