"""``mstnet``: MSTNet (Yu et al., "MSTNet: A Multilevel Spectral–Spatial Transformer Network for
Hyperspectral Image Classification", TGRS 2022), from the paper's description (no public code:
the authors' repository, Welcome-to-LISA/MSTNet, holds only a README).

Image-based framework: the window is cut into non-overlapping p×p patches, each linearly embedded
(a p×p conv with stride p over all bands) into a sequence, a learned positional embedding is
added, and a pure transformer encoder (pre-norm, GELU MLP) learns the features. Multilevel
decoder: the outputs of ``levels`` evenly spaced encoder layers are each reshaped to the patch
grid and reduced by a 1×1 conv and two 3×3 convs (BN, ReLU), concatenated, fused by a 3×3 conv,
and bilinearly upsampled to the window's size.

Multitask adaptation (as the HSI paper's other dense baselines): the network is shared and each
TAIGA variable gets a 1×1 head on the fused map (``hsi-mtl``'s heads: the centre pixel, or every
pixel with ``per_pixel``). Widths the paper does not give for TAIGA are chosen to bring the
model to Table VII's 54.28M on 45×45×110 windows: ViT-Base layers (dim 768, 12 heads, MLP 3072),
7 layers, 3×3 patches, 4 levels, decoder 256/128 channels (ours: 55.48M, +2.2%).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, TaskHeads, make
from rsbench.models.registry import register_model


def conv_bn(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MstNet(HsiModel):
    """Patch embedding + learned PE + transformer encoder + multilevel conv decoder."""

    model_name = "mstnet"

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3, dim: int = 768,
                 depth: int = 7, heads: int = 12, mlp_ratio: float = 4.0, patch_size: int = 3,
                 patch: int = 45, levels: int = 4, decoder: int = 256, dropout: float = 0.1,
                 per_pixel: bool = False):
        super().__init__(tasks, in_channels, per_pixel)
        self.p = int(patch_size)
        self.grid = -(-int(patch) // self.p)  # patches per side of the window built for
        self.embed = nn.Conv2d(in_channels, dim, self.p, stride=self.p)
        self.pos = nn.Parameter(torch.zeros(1, dim, self.grid, self.grid))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(depth)])
        n = max(1, min(int(levels), depth))
        self.taps = sorted({round(depth * (i + 1) / n) - 1 for i in range(n)})
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in self.taps])
        self.reduce = nn.ModuleList([
            nn.Sequential(conv_bn(dim, decoder, 1), conv_bn(decoder, decoder, 3),
                          conv_bn(decoder, decoder // 2, 3)) for _ in self.taps])
        self.fuse = conv_bn(len(self.taps) * (decoder // 2), decoder // 2, 3)
        self.task_heads = TaskHeads(tasks, decoder // 2, per_pixel=per_pixel)

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        size = x.shape[-2:]
        h, w = size
        x = F.pad(x, (0, -w % self.p, 0, -h % self.p))
        z = self.embed(x)
        gh, gw = z.shape[-2:]
        pos = self.pos if (gh, gw) == (self.grid, self.grid) else F.interpolate(
            self.pos, size=(gh, gw), mode="bilinear", align_corners=False)
        seq = self.drop((z + pos).flatten(2).transpose(1, 2))  # (B, gh*gw, dim)
        levels = []
        for i, layer in enumerate(self.layers):
            seq = layer(seq)
            if i in self.taps:
                levels.append(seq)
        maps = []
        for feat, norm, reduce in zip(levels, self.norms, self.reduce):
            fmap = norm(feat).transpose(1, 2).reshape(feat.shape[0], -1, gh, gw)
            maps.append(reduce(fmap))
        fused = self.fuse(torch.cat(maps, dim=1))
        # the patch grid covers the padded window: resample it onto the window's pixels
        fused = F.interpolate(fused, size=(gh * self.p, gw * self.p), mode="bilinear",
                              align_corners=False)[..., :h, :w]
        return self.task_heads(fused, tasks, size)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("task_heads.")]

    def last_shared_layer(self) -> nn.Module:
        return self.fuse[0]


@register_model("mstnet")
def build(tasks: Sequence[TaskInfo], **options) -> MstNet:
    """MSTNet (Yu et al. 2022): transformer encoder, multilevel decoder, a head per variable."""
    return make(MstNet, tasks, options)
