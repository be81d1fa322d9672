"""``gsc-vit``: GSC-ViT (Zhao et al., "Groupwise Separable Convolutional Vision Transformer for
Hyperspectral Image Classification", TGRS 2024), after the paper and its authors' code
(flyzzie/TGRS-GSC-VIT, ``models/gscvit.py``), for TAIGA's 13 tasks.

Spectral calibration (1×1 conv to 256 channels, BN, ReLU), then per stage (256→128→64): a
groupwise separable convolution (grouped 1×1 then grouped 3×3 conv, BN, ReLU), one groupwise
separable self-attention layer (multi-head attention inside each g×g window with one learned
group token per window, then attention between the windows' group tokens that mixes the
windows' maps) behind a channel layer norm, a point-wise conv with the residual, BN, ReLU;
global average pooling. The authors' defaults: dims 256/128/64, 16 groups, 4×4 windows, 1 head
of 16 dims, dropout 0.1.

Multitask adaptation (as the HSI paper's other patch baselines): the network above is shared
and each TAIGA variable gets the code's classifier head (layer norm + linear) on the pooled
features; it predicts the window's centre pixel (a patch classifier: benchmark
``taiga-centre``, the TAIGA baseline's centre-pixel protocol). Inputs are zero-padded to a multiple of the
window size and the padding is dropped before pooling. The code's ``conv_last`` is never used
in its forward pass and is left out. The published design has about 0.1M parameters on TAIGA;
Table VII's 39.19M cannot come from it (the HSI paper gives no other configuration).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, check_tasks, make
from rsbench.models.registry import register_model


class ChanLayerNorm(nn.Module):
    """Layer norm over the channels of a B×C×H×W map."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)
        return (x - mean) / (var + self.eps).sqrt() * self.g + self.b


class GroupwiseSeparableConv(nn.Sequential):
    """Grouped 1×1 conv, grouped 3×3 conv, BN, ReLU (the paper's GSC)."""

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__(nn.Conv2d(cin, cout, 1, groups=groups),
                         nn.Conv2d(cout, cout, 3, padding=1, groups=groups),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class GroupwiseSelfAttention(nn.Module):
    """GSSA: attention inside each ``window``×``window`` group (with a learned group token),
    then attention between the groups' tokens that mixes whole groups' maps."""

    def __init__(self, dim: int, heads: int = 1, dim_head: int = 16, window: int = 4,
                 dropout: float = 0.1):
        super().__init__()
        self.heads, self.dim_head, self.window = heads, dim_head, window
        inner = heads * dim_head
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Conv1d(dim, inner * 3, 1, bias=False)
        self.group_token = nn.Parameter(torch.randn(dim))
        self.token_norm = nn.LayerNorm(dim_head)
        self.token_to_qk = nn.Conv1d(inner, inner * 2, 1)
        self.drop = nn.Dropout(dropout)
        self.to_out = nn.Sequential(nn.Conv2d(inner, dim, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g, hd, d = self.window, self.heads, self.dim_head
        gy, gx = h // g, w // g
        n = gy * gx
        # (b, c, h, w) -> (b*n, c, g*g): one sequence per window
        seq = x.view(b, c, gy, g, gx, g).permute(0, 2, 4, 1, 3, 5).reshape(b * n, c, g * g)
        seq = torch.cat([self.group_token.view(1, c, 1).expand(b * n, c, 1), seq], dim=-1)
        q, k, v = (t.reshape(b * n, hd, d, -1).transpose(-1, -2)
                   for t in self.to_qkv(seq).chunk(3, dim=1))
        out = self.drop(torch.softmax(q * self.scale @ k.transpose(-1, -2), dim=-1)) @ v
        tokens, maps = out[:, :, 0], out[:, :, 1:]  # (b*n, hd, d), (b*n, hd, g*g, d)
        if n > 1:
            tokens = tokens.reshape(b, n, hd, d).permute(0, 2, 1, 3)  # (b, hd, n, d)
            t = F.gelu(self.token_norm(tokens)).permute(0, 1, 3, 2).reshape(b, hd * d, n)
            wq, wk = (u.view(b, hd, d, n).transpose(-1, -2)
                      for u in self.token_to_qk(t).chunk(2, dim=1))
            attn = self.drop(torch.softmax(wq * self.scale @ wk.transpose(-1, -2), dim=-1))
            maps = maps.reshape(b, n, hd, g * g * d).transpose(1, 2)  # (b, hd, n, g*g*d)
            maps = (attn @ maps).transpose(1, 2).reshape(b * n, hd, g * g, d)
        fmap = maps.reshape(b, gy, gx, hd, g, g, d).permute(0, 3, 6, 1, 4, 2, 5)
        return self.to_out(fmap.reshape(b, hd * d, h, w))


class Stage(nn.Module):
    """GSC, then GSSA behind a channel layer norm, a point-wise conv plus the GSC output as
    residual, BN and ReLU."""

    def __init__(self, cin: int, cout: int, groups: int, heads: int, window: int,
                 dropout: float, norm_output: bool):
        super().__init__()
        self.gsc = GroupwiseSeparableConv(cin, cout, groups)
        self.norm = ChanLayerNorm(cout)
        self.attn = GroupwiseSelfAttention(cout, heads=heads, window=window, dropout=dropout)
        self.out_norm = ChanLayerNorm(cout) if norm_output else nn.Identity()
        self.pw = nn.Conv2d(cout, cout, 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gsc(x)
        x = self.out_norm(self.attn(self.norm(y)))
        return F.relu(self.bn(self.pw(x) + y))


class GscViT(HsiModel):
    """GSC-ViT trunk shared by all tasks; a layer norm + linear head per task (centre pixel)."""

    model_name = "gsc-vit"
    patch_classifier = True  # one prediction per window: benchmark taiga-centre

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3,
                 dims: Sequence[int] = (256, 128, 64), groups: int = 16, heads: int = 1,
                 window: int = 4, dropout: float = 0.1, per_pixel: bool = False):
        super().__init__(tasks, in_channels, per_pixel=False)
        dims = [int(d) for d in dims]
        self.window = int(window)
        self.calibrate = nn.Sequential(nn.Conv2d(in_channels, dims[0], 1),
                                       nn.BatchNorm2d(dims[0]), nn.ReLU(inplace=True),
                                       nn.BatchNorm2d(dims[0]), nn.ReLU(inplace=True))
        pairs = list(zip(dims[:-1], dims[1:]))
        self.stages = nn.ModuleList([
            Stage(a, b, groups, heads, self.window, dropout, norm_output=i < len(pairs) - 1)
            for i, (a, b) in enumerate(pairs)])
        self.heads = nn.ModuleDict({t.name: nn.Sequential(nn.LayerNorm(dims[-1]),
                                                          nn.Linear(dims[-1], t.num_outputs))
                                    for t in tasks})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled trunk features (B, dims[-1]) of the window."""
        h, w = x.shape[-2:]
        g = self.window
        x = F.pad(x, (0, -w % g, 0, -h % g))
        x = self.calibrate(x)
        for stage in self.stages:
            x = stage(x)
        return x[..., :h, :w].mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        check_tasks(self, tasks)
        z = self.features(x)
        out = {}
        for name in tasks:
            y = self.heads[name](z)
            out[name] = y.squeeze(1) if self.tasks[name].type == "regression" else y
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("heads.")]

    def last_shared_layer(self) -> nn.Module:
        return self.stages[-1].pw


@register_model("gsc-vit")
def build(tasks: Sequence[TaskInfo], **options) -> GscViT:
    """GSC-ViT (Zhao et al. 2024): groupwise separable conv + attention, a head per variable."""
    return make(GscViT, tasks, options)
