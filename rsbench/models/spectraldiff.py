"""``spectraldiff``: SpectralDiff (Chen et al., "SpectralDiff: A Generative Framework for
Hyperspectral Image Classification with Diffusion Models", TGRS 2023), after the paper and its
authors' code (chenning0115/spectraldiff_diffusion: stage 1, chenning0115/SpectralDiff: stage 2).

Stage 1, spectral–spatial diffusion: a DDPM (T = 500 steps, linear betas 1e-4..0.02) whose noise
predictor is the code's ``SimpleUnet`` (5 levels of 64-1024 channels, each two 3×3 conv + BN +
ReLU blocks with a learned sinusoidal time embedding, stride-2 4×4 down/transposed-up convs,
skip concatenation) learns to denoise whole windows (L1 loss on the noise, as the code).
Stage 2, attention-based classification: the frozen U-Net's decoder features of the window
noised to t = 5 (the code's ``t5`` features; all four decoder levels upsampled to the window
and concatenated) feed the code's ``HSINet``: 3×3 conv to 64 channels + BN + ReLU, the centre
13×13 pixels as tokens with a class token and a scaled learned positional embedding, a 2-layer
transformer (20 heads of 64 dims, MLP 8, as the code's defaults and its Pavia parameters), and
the class token through the code's classifier MLP (64→128, BN, dropout 0.1, ReLU, →outputs).

Multitask adaptation: the U-Net and the classifier trunk are shared; each TAIGA variable gets its
own classifier MLP on the class token: one prediction per window, the centre pixel (a patch
classifier: benchmark ``taiga-centre``).

Both stages run inside one ``rsbench run``: epochs below ``diffusion_epochs`` train the U-Net
(its loss is the model's auxiliary loss; the classifier's outputs carry no gradient), the later
ones train the classifier on the frozen U-Net's features. The training loop tells the model the
epoch (``set_epoch``), so ``--resume`` continues in the right stage; both networks are in the
checkpoint. Choices the papers do not make for TAIGA: ``diffusion_epochs`` 50 of the benchmark's
150 (the code trains stage 1 for 30 000+ epochs on one small scene); windows are zero-padded to a
multiple of 16 for the U-Net; the stage-2 features are computed without noise at evaluation
(deterministic scores) and with fresh noise in training; no PCA of the features (the code
reduces them to 600 channels).

Sizes on a 45×45×110 window: about 62.5M for the U-Net (the 2-D ``SimpleUnet`` with 110 input
bands; the code's 3-D variant is not public) plus 1.3M for the classifier, against Table VII's
61.94M.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, check_tasks, make
from rsbench.models.registry import register_model


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sinusoidal embedding of the diffusion timestep."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000) / (half - 1)))
        args = t.float()[:, None] * freqs[None]
        return torch.cat([args.sin(), args.cos()], dim=-1)


class UnetBlock(nn.Module):
    """conv3×3-ReLU-BN, + time embedding, conv3×3-ReLU-BN, then a stride-2 down (4×4 conv) or
    up (4×4 transposed conv) step."""

    def __init__(self, cin: int, cout: int, time_dim: int, up: bool):
        super().__init__()
        self.time = nn.Linear(time_dim, cout)
        self.conv1 = nn.Conv2d(2 * cin if up else cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)
        self.step = (nn.ConvTranspose2d(cout, cout, 4, 2, 1) if up
                     else nn.Conv2d(cout, cout, 4, 2, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.bn1(F.relu(self.conv1(x)))
        h = h + F.relu(self.time(t))[..., None, None]
        return self.step(self.bn2(F.relu(self.conv2(h))))


class SimpleUnet(nn.Module):
    """The noise predictor: returns the predicted noise and the decoder's feature maps."""

    def __init__(self, bands: int, channels: Sequence[int] = (64, 128, 256, 512, 1024),
                 time_dim: int = 32):
        super().__init__()
        ch = [int(c) for c in channels]
        self.factor = 2 ** (len(ch) - 1)
        self.time = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim),
                                  nn.ReLU())
        self.conv0 = nn.Conv2d(bands, ch[0], 3, padding=1)
        self.downs = nn.ModuleList([UnetBlock(a, b, time_dim, up=False)
                                    for a, b in zip(ch[:-1], ch[1:])])
        up = ch[::-1]
        self.ups = nn.ModuleList([UnetBlock(a, b, time_dim, up=True)
                                  for a, b in zip(up[:-1], up[1:])])
        self.output = nn.Conv2d(up[-1], bands, 1)
        self.feature_channels = sum(up[1:])

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, list]:
        te = self.time(t)
        x = self.conv0(x)
        skips = []
        for down in self.downs:
            x = down(x, te)
            skips.append(x)
        feats = []
        for up in self.ups:
            x = up(torch.cat([x, skips.pop()], dim=1), te)
            feats.append(x)
        return self.output(x), feats


class Classifier(nn.Module):
    """HSINet's trunk: conv to ``dim`` channels, pixel tokens + class token + positional
    embedding, a pre-norm transformer; returns the class token."""

    def __init__(self, cin: int, dim: int, depth: int, heads: int, dim_head: int, mlp: int,
                 patch: int, dropout: float):
        super().__init__()
        self.patch = patch
        self.conv = nn.Sequential(nn.Conv2d(cin, dim, 3, padding=1), nn.BatchNorm2d(dim),
                                  nn.ReLU())
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, patch * patch + 1, dim))
        self.pos_scale = nn.Parameter(torch.full((1,), 0.01))
        self.layers = nn.ModuleList()
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                nn.LayerNorm(dim), nn.Linear(dim, 3 * heads * dim_head, bias=False),
                nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout)),
                nn.LayerNorm(dim),
                nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Dropout(dropout),
                              nn.Linear(mlp, dim), nn.Dropout(dropout))]))
        self.heads, self.dim_head = heads, dim_head

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        h, w = feats.shape[-2:]
        p = min(self.patch, h, w)
        top, left = (h - p) // 2, (w - p) // 2
        x = self.conv(feats[..., top:top + p, left:left + p]).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos[:, :x.shape[1]] * self.pos_scale
        b, n, _ = x.shape
        for norm1, qkv, out, norm2, mlp in self.layers:
            q, k, v = (t.view(b, n, self.heads, self.dim_head).transpose(1, 2)
                       for t in qkv(norm1(x)).chunk(3, dim=-1))
            a = F.scaled_dot_product_attention(q, k, v)
            x = x + out(a.transpose(1, 2).reshape(b, n, -1))
            x = x + mlp(norm2(x))
        return x[:, 0]


class SpectralDiff(HsiModel):
    """The diffusion U-Net (stage 1) and the attention classifier on its features (stage 2)."""

    model_name = "spectraldiff"
    patch_classifier = True  # one prediction per window: benchmark taiga-centre

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3,
                 channels: Sequence[int] = (64, 128, 256, 512, 1024), steps: int = 500,
                 feature_step: int = 5, diffusion_epochs: int = 50, dim: int = 64,
                 depth: int = 2, heads: int = 20, dim_head: int = 64, mlp: int = 8,
                 patch_size: int = 13, dropout: float = 0.0, per_pixel: bool = False):
        super().__init__(tasks, in_channels, per_pixel=False)
        self.unet = SimpleUnet(in_channels, channels)
        betas = torch.linspace(1e-4, 0.02, int(steps))
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0), persistent=False)
        self.steps, self.feature_step = int(steps), int(feature_step)
        self.diffusion_epochs = int(diffusion_epochs)
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self.classifier = Classifier(self.unet.feature_channels, dim, depth, heads, dim_head,
                                     mlp, patch_size, dropout)
        self.task_heads = nn.ModuleDict({t.name: nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.BatchNorm1d(2 * dim), nn.Dropout(0.1), nn.ReLU(),
            nn.Linear(2 * dim, t.num_outputs)) for t in tasks})
        self._aux: torch.Tensor | None = None

    # -- stages -----------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Called by the training loop at the start of each epoch: picks the stage."""
        self.epoch.fill_(int(epoch))
        self.train(self.training)

    @property
    def stage(self) -> int:
        return 1 if int(self.epoch) < self.diffusion_epochs else 2

    def train(self, mode: bool = True) -> SpectralDiff:
        super().train(mode)
        if mode and self.stage == 2:
            self.unet.eval()  # frozen in stage 2, batch norm included
        return self

    def auxiliary_loss(self, targets: Mapping[str, torch.Tensor] | None = None
                       ) -> torch.Tensor | None:
        """The diffusion loss of the last training forward pass (stage 1), else None; the
        step's ``targets`` (passed by the training loop) are not needed."""
        aux, self._aux = self._aux, None
        return aux

    def noised(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        check_tasks(self, tasks)
        h, w = x.shape[-2:]
        f = self.unet.factor
        x0 = F.pad(x, (0, -w % f, 0, -h % f))
        train1 = self.training and self.stage == 1
        if train1:  # stage 1: the DDPM loss trains the U-Net
            t = torch.randint(0, self.steps, (x.shape[0],), device=x.device)
            noise = torch.randn_like(x0)
            pred, _ = self.unet(self.noised(x0, t, noise), t)
            self._aux = F.l1_loss(pred[..., :h, :w], noise[..., :h, :w])
        t5 = torch.full((x.shape[0],), self.feature_step, device=x.device, dtype=torch.long)
        noise = torch.randn_like(x0) if self.training else torch.zeros_like(x0)
        with torch.no_grad():  # the classifier reads the (frozen) U-Net's features
            _, feats = self.unet(self.noised(x0, t5, noise), t5)
            feats = torch.cat([F.interpolate(m, size=x0.shape[-2:], mode="bilinear",
                                             align_corners=False) for m in feats], dim=1)
        feats = feats[..., :h, :w]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not train1):
            z = self.classifier(feats)
            out = {}
            for name in tasks:
                y = self.task_heads[name](z)
                out[name] = y.squeeze(1) if self.tasks[name].type == "regression" else y
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        module = self.unet if self.stage == 1 else self.classifier
        return list(module.parameters())

    def last_shared_layer(self) -> nn.Module:
        return self.classifier.layers[-1][4][3]

    def parameter_breakdown(self) -> dict[str, int]:
        def count(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())
        return {"diffusion U-Net": count(self.unet), "classifier": count(self.classifier),
                "task heads": count(self.task_heads), "total": count(self)}


@register_model("spectraldiff")
def build(tasks: Sequence[TaskInfo], **options) -> SpectralDiff:
    """SpectralDiff (Chen et al. 2023): diffusion U-Net, then attention classifier (2 stages)."""
    return make(SpectralDiff, tasks, options)
