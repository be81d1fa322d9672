"""Building blocks of the hyperspectral multitask models (HSI paper, Sections III-C..E).

Shared by ``hsi-mtl`` and its baselines: conv/BN/LeakyReLU blocks, residual blocks with
projection shortcuts, the gated Dense ASPP, the spectral–spatial residual attention, and the
per-task heads that predict the centre pixel (default) or every pixel of a patch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.base import MultiTaskModel, TaskInfo

LEAK = 0.01  # LeakyReLU negative slope (PyTorch default)


def norm(channels: int, batch_norm: bool = True) -> nn.Module:
    """Batch norm, or identity when the ablation switches it off."""
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class ConvBlock(nn.Sequential):
    """Convolution + batch norm + LeakyReLU (the encoder's first block, the paper's Fig. 6a)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, dilation: int = 1,
                 batch_norm: bool = True):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                      bias=not batch_norm),
            norm(cout, batch_norm),
            nn.LeakyReLU(LEAK, inplace=True),
        )


class ResidualBlock(nn.Module):
    """Two 3×3 conv + BN layers with a 1×1 conv projection shortcut (Fig. 6b, eq. 2).

    ``residual=False`` drops the shortcut: the plain two-conv block of the ablation baseline.
    """

    def __init__(self, cin: int, cout: int, residual: bool = True, batch_norm: bool = True):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm), norm(cout, batch_norm),
            nn.LeakyReLU(LEAK, inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=not batch_norm), norm(cout, batch_norm),
        )
        self.shortcut: nn.Module | None = None
        if residual:
            self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, bias=not batch_norm),
                                           norm(cout, batch_norm))
                             if cin != cout else nn.Identity())
        self.act = nn.LeakyReLU(LEAK, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.act(y)


class DenseASPP(nn.Module):
    """Dense atrous pyramid with gated summation (Section III-C2, the equation after eq. 4).

    Branch i applies a dilated 3×3 conv (rate d_i) to the concatenation of the input and all
    earlier branch outputs, then BN, LeakyReLU, a 1×1 conv back to ``c`` channels and BN. The
    output is ``f + Σ_i sigmoid(λ_i) · branch_i``, with one learned scalar λ_i per branch.
    """

    def __init__(self, channels: int, rates: Sequence[int] = (3, 6, 12), mid: int | None = None,
                 batch_norm: bool = True):
        super().__init__()
        mid = mid or max(channels // 2, 1)
        self.rates = tuple(int(r) for r in rates)
        self.branches = nn.ModuleList()
        for i, r in enumerate(self.rates):
            cin = channels * (i + 1)
            self.branches.append(nn.Sequential(
                nn.Conv2d(cin, mid, 3, padding=r, dilation=r, bias=not batch_norm),
                norm(mid, batch_norm), nn.LeakyReLU(LEAK, inplace=True),
                nn.Conv2d(mid, channels, 1, bias=not batch_norm), norm(channels, batch_norm),
            ))
        self.gate_logits = nn.Parameter(torch.zeros(len(self.rates)))  # λ_i; sigmoid(0) = 0.5

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        feats = [f]
        out = f
        gates = torch.sigmoid(self.gate_logits)
        for i, branch in enumerate(self.branches):
            y = branch(torch.cat(feats, dim=1) if len(feats) > 1 else f)
            feats.append(y)
            out = out + gates[i] * y
        return out


class ResidualAttention(nn.Module):
    """Spectral (channel) then spatial attention with a residual connection (Section III-D).

    Channel map: sigmoid(MLP(avgpool F) + MLP(maxpool F)) with a shared bottleneck MLP; spatial
    map: sigmoid(conv([max_c F', mean_c F'])). Output ``F + F' · M_s`` (eq. 7).
    """

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        avg = F.adaptive_avg_pool2d(f, 1)
        mx = F.adaptive_max_pool2d(f, 1)
        fc = f * torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        desc = torch.cat([fc.amax(dim=1, keepdim=True), fc.mean(dim=1, keepdim=True)], dim=1)
        return f + fc * torch.sigmoid(self.spatial(desc))


def centre_features(feat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Features (B, C) at the input's centre pixel, bilinearly sampled from a coarser map.

    Equivalent to upsampling ``feat`` to ``size`` with ``F.interpolate(bilinear,
    align_corners=False)`` and taking the centre pixel, without computing the full map.
    """
    h, w = size
    fh, fw = feat.shape[-2:]
    if (fh, fw) == (h, w):
        return feat[:, :, h // 2, w // 2]
    # normalised coordinates of the centre pixel's centre (align_corners=False convention)
    gy = (h // 2 + 0.5) / h * 2 - 1
    gx = (w // 2 + 0.5) / w * 2 - 1
    grid = feat.new_tensor([gx, gy]).view(1, 1, 1, 2).expand(feat.shape[0], 1, 1, 2)
    return F.grid_sample(feat, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)[:, :, 0, 0]


class TaskHeads(nn.Module):
    """One small head per task: a single fully connected layer (1×1 conv on feature maps).

    Features come as one map for all tasks or one map per task type ("classification",
    "regression"). Centre mode returns (B, K) logits / (B,) values; per-pixel mode returns
    maps bilinearly upsampled to the input size. Segmentation tasks are always per pixel.
    """

    def __init__(self, tasks: Sequence[TaskInfo], channels: int | Mapping[str, int],
                 per_pixel: bool = False):
        super().__init__()
        self.per_pixel = per_pixel
        self.infos = {t.name: t for t in tasks}
        self.heads = nn.ModuleDict()
        for t in tasks:
            cin = channels[path_of(t)] if isinstance(channels, Mapping) else channels
            self.heads[t.name] = nn.Conv2d(cin, t.num_outputs, 1)

    def forward(self, feats: torch.Tensor | Mapping[str, torch.Tensor], tasks: Sequence[str],
                size: tuple[int, int]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        centres: dict[str, torch.Tensor] = {}
        for name in tasks:
            info = self.infos[name]
            feat = feats[path_of(info)] if isinstance(feats, Mapping) else feats
            head = self.heads[name]
            if self.per_pixel or info.type == "segmentation":
                y = head(feat)
                if y.shape[-2:] != tuple(size):
                    y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            else:
                key = path_of(info) if isinstance(feats, Mapping) else "all"
                if key not in centres:
                    centres[key] = centre_features(feat, size)
                y = F.linear(centres[key], head.weight.flatten(1), head.bias)
            if info.type == "regression" and info.num_outputs == 1:
                y = y.squeeze(1)
            out[name] = y
        return out


def path_of(info: TaskInfo) -> str:
    """Decoder path of a task: regression tasks share one, the others share the other."""
    return "regression" if info.type == "regression" else "classification"


def make(cls: type, tasks: Sequence[TaskInfo], options: Mapping, **preset) -> MultiTaskModel:
    """Build ``cls(tasks, **preset, **options)`` after checking the options it takes."""
    from rsbench.models import check_options

    opts = {**preset, **options}
    if opts.get("per_pixel") and getattr(cls, "patch_classifier", False):
        name = getattr(cls, "model_name", cls.__name__)
        raise UsageError(f"{name} is a patch classifier (one prediction per window), so it "
                         "cannot be trained or scored per pixel; run it on benchmark "
                         "taiga-centre, the TAIGA baseline's centre-pixel protocol")
    # a model passing **options on (hsi-single-task) names the class that takes them
    check_options(getattr(cls, "model_name", cls.__name__),
                  getattr(cls, "options_of", cls), opts)
    return cls(tasks, **opts)


def check_tasks(model: nn.Module, tasks: Sequence[str]) -> None:
    unknown = [t for t in tasks if t not in model.tasks]
    if unknown:
        raise UsageError(f"model has no task {unknown[0]!r}; it was built for: "
                         f"{', '.join(model.tasks)}")


class HsiModel(MultiTaskModel):
    """Base of the hyperspectral models: input bands, centre/per-pixel mode, the last shared
    layer (where the ``gradnorm`` weighting measures gradient norms).

    ``patch_classifier = True`` marks a model that predicts one value per window and so has
    no per-pixel mode (``make`` refuses ``per_pixel: true`` for it with the benchmark to use).
    """

    patch_classifier = False

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, per_pixel: bool = False):
        super().__init__(tasks)
        if in_channels < 1:
            raise UsageError(f"in_channels must be positive, got {in_channels}")
        self.in_channels = int(in_channels)
        self.per_pixel = bool(per_pixel)

    def last_shared_layer(self) -> nn.Module:
        """The last layer whose weights every task shares (GradNorm measures gradients there)."""
        raise NotImplementedError

    def check_input(self, x: torch.Tensor, tasks: Sequence[str]) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise UsageError(f"{type(self).__name__} expects (batch, {self.in_channels}, H, W) "
                             f"input, got {tuple(x.shape)}; set in_channels to the band count")
        check_tasks(self, tasks)
