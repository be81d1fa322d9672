"""``mtan``: Multi-Task Attention Network (Liu, Johns and Davison, CVPR 2019), the encoder
attention of its authors' code (lorenmt/mtan) on each backbone, with rsbench's heads.

One shared backbone; per task, an attention module per attended block: two 1×1 conv-BN layers
(ReLU between, sigmoid after) computing a mask from the block's intermediate feature z_j and the
task's previous attended feature; the mask multiplies the block's output f_j, and a shared
"attention block" (one per block, shared by the tasks) maps the product to the next block's
channels, max-pooled to its resolution. MTLN (``rsbench.models.mtln``) is derived from this
design; MTAN differs in where it attends on each backbone, following its authors' code:

- ResNet-34 (MSC; the authors' ``resnet_mtan.py`` as LibMTL's MTAN for ResNets): the four layers
  are attended, not the stem; z_j is the output of all but the layer's last residual unit and
  f_j that of the last unit; the shared attention blocks are residual units (torchvision's
  BasicBlock, 1×1 conv + BN shortcut) after layers 1-3, none after layer 4; masks have
  intermediate width c_j (BasicBlock: LibMTL's c_j / expansion with expansion 1).
- VGG-16 (PSC; the authors' ``model_segnet_mtan.py``): all five blocks; z_j is the block's first
  conv-BN-ReLU and f_j the block's output before pooling; attention blocks are one 3×3 conv-BN-ReLU
  (c_j to c_{j+1}, 512 to 512 after the last) followed by max-pooling.
- WRN-28-4 (mini-MSC; the authors' ``model_wrn_mtan.py``): stem and three groups; the mask reads
  the block output itself (z_j = f_j); 3×3 conv-BN-ReLU attention blocks (256 to 256 after the
  last), max-pooled except after the last.

Choices for rsbench (README, Models; the configs' ``mtan.*`` entries): each task owns its masks
(the paper's design; LibMTL's ResNet MTAN repeats one module object per task, so its tasks share
them); heads are rsbench's (avg-pool + linear; a SegNet decoder per segmentation task, so MTAN's
attention on a shared decoder has no place here and only the encoder is attended).

On TAIGA (backbone ``hsi``: its configs name no backbone) the shared network is the HSI paper's
encoder (``rsbench.models.hsi_stages``: ``hsi-mtl``'s shared encoder and attention, three
stages) and each task attends all three stage outputs, as MTAN's VGG-16 and WRN-28-4 code
attends every block: the mask reads the stage output itself (z_j = f_j, as on WRN-28-4) and the
task's previous attended feature, and the shared attention blocks are MTAN's 3×3 conv-BN-ReLU
(c_j to c_{j+1}) max-pooled to the next stage's size, none after the last stage. Task k's three
attended features are the bottleneck and the skips of ``hsi-mtl``'s decoder of its type (then a
1×1 head per task). Chosen here (neither MTAN's paper, its code nor the HSI paper covers it):
the decoder's skips are the task's attended features, not the shared ones (the HSI decoder
concatenates the encoder features the SegNet decoder of MTAN does not have, and MTAN's decoder
attention has no place in a decoder shared by a task type); the masks keep MTAN's widths c_j
(2w, 4w, 8w channels), which at hsi-mtl's width 128 make about 4.1M parameters per task, 53M of
the model's 79M on TAIGA's 13 tasks (``width`` scales them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from rsbench.models.backbones import Features, build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.hsi_stages import HsiArchitecture, hsi_settings, uses_hsi_encoder
from rsbench.models.moe_parts import count, refuse_per_pixel
from rsbench.models.mtln import AttentionModule, Extractor
from rsbench.models.parts import check_tasks, make_head, split_head_counts
from rsbench.models.registry import register_model


class ResidualAttentionBlock(nn.Module):
    """MTAN's shared attention block on ResNets: a BasicBlock c_in -> c_out with a 1×1 conv + BN
    shortcut, max-pooled to the next layer's resolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = BasicBlock(cin, cout, downsample=nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, h: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        h = self.block(h)
        return h if h.shape[-2:] == tuple(size) else F.adaptive_max_pool2d(h, tuple(size))


class MTAN(MultiTaskModel):
    """Shared backbone, per-task attention masks on its blocks, shared attention blocks, heads."""

    task_specific = ("attention", "heads")  # shared: the backbone and the attention blocks

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None):
        super().__init__(tasks)
        self.backbone = build_backbone(backbone, in_channels, weights)
        chans = self.backbone.channels
        self.first = 1 if backbone == "resnet34" else 0  # ResNets: the stem is not attended
        att = list(range(self.first, len(chans)))
        if backbone == "resnet34":
            blocks = [ResidualAttentionBlock(chans[j], chans[j + 1]) for j in att[:-1]]
        else:  # VGG-16 and WRN-28-4: 3×3 conv-BN-ReLU, also after the last attended block
            blocks = [Extractor(chans[j], chans[min(j + 1, len(chans) - 1)]) for j in att]
        self.blocks = nn.ModuleList(blocks)
        self.attention = nn.ModuleDict({t.name: nn.ModuleList(
            [AttentionModule(chans[j] if j == self.first else 2 * chans[j], chans[j])
             for j in att]) for t in tasks})
        self.heads = nn.ModuleDict({t.name: make_head(t, self.backbone) for t in tasks})

    def shared_features(self, x: torch.Tensor) -> Features:
        """The backbone's pass with MTAN's (z_j, f_j) of each block (see the module doc)."""
        b = self.backbone
        if b.name != "resnet34":
            feats = b(x)
            if b.name.startswith("wrn"):
                feats.z = list(feats.f)
            return feats
        f0 = b.relu(b.bn1(b.conv1(x)))
        zs, fs, h = [f0], [f0], b.maxpool(f0)
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            z = layer[:-1](h)
            h = layer[-1](z)
            zs.append(z)
            fs.append(h)
        return Features(z=zs, f=fs, final=h, indices=[None] * len(fs))

    def task_feature(self, feats: Features, task: str) -> torch.Tensor:
        h = None
        for i, module in enumerate(self.attention[task]):
            j = self.first + i
            z = feats.z[j] if h is None else torch.cat([feats.z[j], h], dim=1)
            a = module(z) * feats.f[j]
            if i < len(self.blocks):
                nxt = feats.f[j + 1] if j + 1 < len(feats.f) else feats.final
                a = self.blocks[i](a, nxt.shape[-2:])
            h = a
        return h

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        feats = self.shared_features(x)  # the shared backbone runs once for all tasks
        return {t: self.heads[t](self.task_feature(feats, t), feats, x.shape[-2:])
                for t in tasks}

    def parameter_breakdown(self) -> dict[str, int]:
        per_task = [count(a) for a in self.attention.values()]
        return {"shared": count(self.backbone), **split_head_counts(self.tasks, self.heads),
                "attention_per_task": round(sum(per_task) / len(per_task)),
                "extractors": count(self.blocks), "total": count(self)}


class HsiMTAN(HsiArchitecture):
    """MTAN over the HSI encoder: per-task masks on its three stages, shared 3×3 attention
    blocks between them; each task's attended features feed hsi-mtl's decoder of its type."""

    task_specific = ("attention", "decoders", "heads")  # shared: the encoder, the blocks

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, per_pixel: bool = False,
                 **hsi):
        super().__init__(tasks, in_channels, per_pixel, **hsi)
        self.backbone = self.new_encoder()
        chans = self.backbone.channels
        self.blocks = nn.ModuleList([Extractor(chans[j], chans[j + 1])
                                     for j in range(len(chans) - 1)])
        self.attention = nn.ModuleDict({t.name: nn.ModuleList(
            [AttentionModule(c if j == 0 else 2 * c, c) for j, c in enumerate(chans)])
            for t in tasks})
        self.make_heads()

    def task_features(self, shared: Sequence[torch.Tensor], task: str) -> list[torch.Tensor]:
        """The task's attended feature of every stage: mask(z_j [, previous]) * f_j."""
        out: list[torch.Tensor] = []
        h = None
        for j, module in enumerate(self.attention[task]):
            z = shared[j] if h is None else torch.cat([shared[j], h], dim=1)
            out.append(module(z) * shared[j])
            if j < len(self.blocks):
                h = self.blocks[j](out[-1], shared[j + 1].shape[-2:])
        return out

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        shared = self.backbone(x)  # the shared encoder runs once for all tasks
        feats = {t: self.task_features(shared, t) for t in tasks}
        return self.decode(feats, tasks, x.shape[-2:])

    def parameter_breakdown(self) -> dict[str, int]:
        per_task = [count(a) for a in self.attention.values()]
        return {"shared": count(self.backbone), "attention_per_task":
                round(sum(per_task) / len(per_task)), "extractors": count(self.blocks),
                **self.head_counts(), "total": count(self)}


@register_model("mtan")
def build_mtan(tasks: list[TaskInfo], backbone: str | None = None, in_channels: int = 3,
               weights: str | None = None, per_pixel: bool | None = None,
               width: int | None = None, rates: Sequence[int] | None = None) -> MTAN | HsiMTAN:
    """MTAN (Liu et al. 2019): shared backbone, per-task attention masks, authors' placement.

    ``backbone``: the benchmark's (resnet34, wrn28_4, vgg16); none (TAIGA) or ``hsi``: the HSI
    paper's encoder, whose ``width`` and Dense ASPP ``rates`` are hsi-mtl's options."""
    if uses_hsi_encoder("mtan", backbone, weights=weights, width=width, rates=rates):
        return HsiMTAN(tasks, in_channels, bool(per_pixel), **hsi_settings(width, rates))
    refuse_per_pixel("mtan", per_pixel)
    return MTAN(tasks, backbone=backbone, in_channels=in_channels, weights=weights)


build_mtan.label = "MTAN"  # the reports' name
