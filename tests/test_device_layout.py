"""Channels-last on the GPU path: 2-D convolution weights are laid out channels-last, and a
model with 3-D convolutions (5-D weights, which Module.to(memory_format=channels_last) refuses)
keeps those in their layout instead of failing the run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rsbench.training.device import memory_format_


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.c3 = nn.Conv3d(1, 2, 3, padding=1)
        self.c2 = nn.Conv2d(8, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):  # x: (B, bands, H, W)
        y = self.c3(x.unsqueeze(1)).flatten(1, 2)
        return self.bn(self.c2(y))


def test_mixed_model_goes_channels_last_and_back():
    torch.manual_seed(0)
    m = Mixed()
    with pytest.raises(RuntimeError, match="rank 4"):
        Mixed().to(memory_format=torch.channels_last)  # what the runner used to call
    x = torch.randn(2, 4, 6, 6)
    ref = m(x)
    memory_format_(m, True)
    assert m.c2.weight.is_contiguous(memory_format=torch.channels_last)
    assert not m.c2.weight.is_contiguous()
    assert m.c3.weight.is_contiguous() and m.c3.weight.dim() == 5
    out = m(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref)
    memory_format_(m, False)
    assert m.c2.weight.is_contiguous()
