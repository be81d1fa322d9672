"""The HSI paper's encoder split into stages, and its dense heads: the pieces LibMTL's
architectures (``mtan``, ``mmoe``, ``cgc``, ``ple``, ``dselect-k``, ``ltb``) are built from on
TAIGA (backbone ``hsi``), where each of them puts its experts, gates, attention or branching
over the encoder's stages and decodes every task's own features with ``hsi-mtl``'s decoders.

The encoder is ``hsi-mtl``'s shared encoder (Fig. 1 and Section III-C of the HSI paper, at its
default options), module for module, in three stages:

- stage 0: the conv block and the first residual block, w -> 2w channels, the window's size;
- stage 1: average pooling /2 and the second residual block, 2w -> 4w channels;
- stage 2: the gated Dense ASPP, average pooling /2, the 1×1 skip layer doubling the channels
  (4w -> 8w) and the spectral–spatial residual attention (Section III-D).

``hsi-mtl`` decodes the output of stage 2 with the outputs of stages 1 and 0 as skips, so a
task's features here are one map per stage: the architecture's (mixed, attended or branched)
stage outputs for that task. The dense heads are ``hsi-mtl``'s: one decoder per task type
present (classification, regression; Section III-E) and a 1×1 head per task, in centre-pixel
or per-pixel mode. A decoder serves several tasks that here bring different features: they go
through it as one batch (so its batch norm sees the same statistics in training as in
evaluation), and each task's head reads its own rows of the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.hsi_blocks import (
    ConvBlock,
    DenseASPP,
    ResidualAttention,
    ResidualBlock,
    TaskHeads,
    check_tasks,
    norm,
    path_of,
)
from rsbench.models.hsi_mtl import Decoder
from rsbench.models.moe_parts import count

HSI = "hsi"  # the backbone name of the HSI paper's encoder
WIDTH = 128  # hsi-mtl's default width (encoder w, 2w, 4w, 8w)
RATES = (3, 6, 12)  # hsi-mtl's Dense ASPP rates


def uses_hsi_encoder(model: str, backbone: str | None, *, weights: str | None = None,
                     width: int | None = None, rates: Sequence[int] | None = None) -> bool:
    """Whether ``model`` is built over the HSI paper's encoder: backbone ``hsi``, or no backbone
    at all (TAIGA's benchmark configs name none; MSC's, mini-MSC's and PSC's name theirs).
    ImageNet weights with the HSI encoder, and its options with an image backbone, are refused
    in one line."""
    if backbone is None or backbone == HSI:
        if weights:
            raise UsageError(f"{model}: there are no ImageNet weights for the HSI encoder; "
                             "drop --weights (or give an image backbone with --backbone)")
        return True
    given = [k for k, v in (("width", width), ("rates", rates)) if v is not None]
    if given:
        raise UsageError(f"{model}: model option {given[0]!r} sets the HSI encoder, not "
                         f"backbone {backbone!r}; drop model_options.{given[0]} or --backbone")
    return False


class HsiEncoder(nn.Module):
    """``hsi-mtl``'s shared encoder and attention as three stages (see the module doc);
    ``stage(j, x)`` runs stage j on the previous stage's output (or the window)."""

    name = HSI

    def __init__(self, in_channels: int, width: int = WIDTH, rates: Sequence[int] = RATES):
        super().__init__()
        w = int(width)
        if w < 1:
            raise UsageError(f"width must be at least 1, got {width}; fix model_options.width")
        # the modules of HsiMtl, in its order (the same parameters, initialised alike)
        self.stem = ConvBlock(in_channels, w)
        self.stage1 = ResidualBlock(w, 2 * w)
        self.down1 = nn.AvgPool2d(2, ceil_mode=True)
        self.stage2 = ResidualBlock(2 * w, 4 * w)
        self.aspp = DenseASPP(4 * w, rates)
        self.down2 = nn.AvgPool2d(2, ceil_mode=True)
        self.skip_layer = nn.Sequential(nn.Conv2d(4 * w, 8 * w, 1, bias=False), norm(8 * w),
                                        nn.LeakyReLU(0.01, inplace=True))
        self.attention = ResidualAttention(8 * w)
        self.channels = (2 * w, 4 * w, 8 * w)  # of each stage's output

    @property
    def num_blocks(self) -> int:
        return len(self.channels)

    def stage_modules(self, j: int) -> list[nn.Module]:
        """The modules of stage ``j`` (its parameters: PLE's task-owned last level)."""
        return [[self.stem, self.stage1], [self.down1, self.stage2],
                [self.aspp, self.down2, self.skip_layer, self.attention]][j]

    def stage(self, j: int, x: torch.Tensor) -> torch.Tensor:
        for module in self.stage_modules(j):
            x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output, first to last (the decoder's skips and its input)."""
        out = []
        for j in range(self.num_blocks):
            x = self.stage(j, x)
            out.append(x)
        return out


class HsiArchitecture(MultiTaskModel):
    """Base of LibMTL's architectures over the HSI encoder: input bands, centre/per-pixel mode,
    the encoder's options, and ``hsi-mtl``'s decoders and task heads (``decode``).

    Subclasses build their encoder-level parts (``new_encoder`` gives one HSI encoder), then
    call ``make_heads``; ``forward`` hands ``decode`` one list of stage features per task.
    """

    # shared: the encoder-level parts; each decoder path serves the tasks of its type (hsi-mtl)
    task_specific: tuple[str, ...] = ("decoders", "heads")

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, per_pixel: bool,
                 width: int, rates: Sequence[int]):
        super().__init__(tasks)
        if in_channels < 1:
            raise UsageError(f"in_channels must be positive, got {in_channels}")
        self.in_channels, self.per_pixel = int(in_channels), bool(per_pixel)
        self.width, self.rates = int(width), tuple(int(r) for r in rates)

    def new_encoder(self) -> HsiEncoder:
        return HsiEncoder(self.in_channels, self.width, self.rates)

    def make_heads(self) -> None:
        """hsi-mtl's decoder per task type present and its 1×1 head per task."""
        w = self.width
        paths = sorted({path_of(t) for t in self.tasks.values()})
        self.decoders = nn.ModuleDict({
            p: Decoder(8 * w, skips=(4 * w, 2 * w), widths=(2 * w, w), pooled=2 * w,
                       channel_pool=True, residual=True, batch_norm=True) for p in paths})
        self.heads = TaskHeads(list(self.tasks.values()),
                               {p: d.out_channels for p, d in self.decoders.items()},
                               per_pixel=self.per_pixel)

    def check_input(self, x: torch.Tensor, tasks: Sequence[str]) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise UsageError(f"{type(self).__name__} expects (batch, {self.in_channels}, H, W) "
                             f"input, got {tuple(x.shape)}; set in_channels to the band count")
        check_tasks(self, tasks)

    def decode(self, feats: Mapping[str, Sequence[torch.Tensor]], tasks: Sequence[str],
               size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Each task's output from its stage features (first to last): the tasks of one decoder
        path go through it as one batch, then each through its own head."""
        out: dict[str, torch.Tensor] = {}
        for path, decoder in self.decoders.items():
            names = [t for t in tasks if path_of(self.tasks[t]) == path]
            if not names:
                continue
            stages = [torch.cat([feats[t][j] for t in names]) for j in range(len(feats[names[0]]))]
            decoded = decoder(stages[-1], stages[-2::-1]).chunk(len(names))
            for t, d in zip(names, decoded):
                out.update(self.heads(d, [t], size))
        return {t: out[t] for t in tasks}

    def head_counts(self) -> dict[str, int]:
        """hsi-mtl's breakdown of the heads: each decoder path and the task heads."""
        out = {f"{p} decoder": count(d) for p, d in self.decoders.items()}
        out["task heads"] = count(self.heads)
        return out


def hsi_settings(width: int | None, rates: Sequence[int] | None) -> dict[str, object]:
    """The HSI encoder's options with hsi-mtl's defaults filled in."""
    return {"width": WIDTH if width is None else int(width),
            "rates": RATES if rates is None else tuple(rates)}
