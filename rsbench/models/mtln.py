"""``mtln``: the multitask learning network of the MTLN paper (Section III, Fig. 1, Table II).

A shared backbone gives per block j the features z_j and f_j (eq. 1). Each task k has its own
branch of attention modules H_k^j (two 1×1 conv layers with BN, ReLU between, sigmoid mask);
the mask multiplies the block's shared feature (eq. 2). From block 2 on, H_k^j also sees the
previous task feature passed through the extractor E^j (3×3 conv + pooling), one extractor per
block shared by all tasks (eq. 3). The last task feature goes to the task's head (eq. 4):
average pooling + linear for scenes, a SegNet decoder for segmentation. Losses are summed (eq. 5:
the ``equal`` weighting, the benchmarks' default).

Counting as the paper's Table II does: the backbone's J blocks are ResNet-34's stem and its four
layers (no ImageNet FC), VGG-16's five conv blocks, WRN-28-4's stem and three groups. With J
attention modules and the J-1 extractors of eq. 3, ResNet-34 on MSC gives 21.28M shared,
1.06M attention per task, 1.59M extractors, 26.10M total (paper: 21.29M, 1.06M, 1.58M,
26.11M). The paper's VGG-16 (PSC: 6.27M extractors) and WRN-28-4 (mini-MSC: 7.62M total,
Baseline+Attention 21.26M) figures are only reached with one more extractor after the last
attention module, as in the MTAN reference code (Liu et al., CVPR 2019, the paper's [29]);
those backbones therefore set ``final_extractor``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.backbones import Features, build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.parts import check_tasks, conv_bn_relu, count, make_head, split_head_counts
from rsbench.models.registry import register_model


class AttentionModule(nn.Sequential):
    """H_k^j: 1×1 conv-BN-ReLU then 1×1 conv-BN and a sigmoid, giving a mask with c_j channels."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__(nn.Conv2d(in_channels, channels, 1), nn.BatchNorm2d(channels),
                         nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1),
                         nn.BatchNorm2d(channels), nn.Sigmoid())


class Extractor(nn.Module):
    """E^j: 3×3 conv-BN-ReLU, then max pooling down to the next block's resolution."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.conv = conv_bn_relu(in_channels, channels)

    def forward(self, h: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        h = self.conv(h)
        size = tuple(size)
        if h.shape[-2:] == size:
            return h
        if (h.shape[-2] // 2, h.shape[-1] // 2) == size:
            return F.max_pool2d(h, 2)
        return F.adaptive_max_pool2d(h, size)


class MTLN(MultiTaskModel):
    """Shared branch + one attention branch per task + shared extractors + one head per task."""

    task_specific = ("attention", "heads")  # shared: the backbone and the extractors

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None, final_extractor: bool | None = None):
        super().__init__(tasks)
        self.backbone = build_backbone(backbone, in_channels, weights)
        chans = self.backbone.channels
        self.final_extractor = (self.backbone.final_extractor if final_extractor is None
                                else final_extractor)
        extractors = [Extractor(chans[j - 1], chans[j]) for j in range(1, len(chans))]
        if self.final_extractor:
            extractors.append(Extractor(chans[-1], chans[-1]))
        self.extractors = nn.ModuleList(extractors)
        self.attention = nn.ModuleDict({t.name: self._new_branch() for t in tasks})
        self.heads = nn.ModuleDict({t.name: make_head(t, self.backbone) for t in tasks})
        self.plain_tasks: set[str] = set()  # tasks added without a branch (shared feature only)

    def _new_branch(self) -> nn.ModuleList:
        chans = self.backbone.channels
        return nn.ModuleList([AttentionModule(chans[0], chans[0])]
                             + [AttentionModule(2 * c, c) for c in chans[1:]])

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        feats = self.backbone(x)  # the shared branch runs once for all requested tasks
        return {t: self.heads[t](self.task_feature(feats, t), feats, x.shape[-2:])
                for t in tasks}

    def task_feature(self, feats: Features, task: str,
                     masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The task-specific feature f~_k^J after the branch's attention modules (eqs. 2-3)."""
        if task in self.plain_tasks:
            return feats.final
        h = feats.f[0]
        for j, module in enumerate(self.attention[task]):
            if j == 0:
                mask = module(feats.z[0])
            else:
                passed = self.extractors[j - 1](h, feats.f[j].shape[-2:])
                mask = module(torch.cat([feats.z[j], passed], dim=1))
            if masks is not None:
                masks.append(mask)
            h = mask * feats.f[j]
        if self.final_extractor:
            h = self.extractors[-1](h, feats.final.shape[-2:])
        return h

    @torch.no_grad()
    def attention_masks(self, x: torch.Tensor, task: str) -> list[torch.Tensor]:
        """The J attention masks m_k^j of ``task`` for images ``x`` (the paper's Fig. 7)."""
        check_tasks(self.tasks, [task])
        masks: list[torch.Tensor] = []
        self.task_feature(self.backbone(x), task, masks)
        return masks

    def feature_parameters(self):
        """The shared branch F (frozen when transferring to a new dataset, Table VI)."""
        return self.backbone.parameters()

    def add_task(self, task: TaskInfo, init_from: str | None = None,
                 attention: bool = True) -> None:
        """Add a task: a new attention branch (copied from ``init_from``'s branch, as the paper
        starts the new branch from the Merced one) and a new head. ``attention=False`` puts the
        head straight on the shared branch (Table VI's "pre-trained shared branch" column)."""
        if task.name in self.tasks:
            raise UsageError(f"the model already has a task {task.name!r}")
        if init_from is not None and init_from not in self.attention:
            raise UsageError(f"cannot copy the branch of {init_from!r}: the model's branches "
                             f"are {', '.join(self.attention)}")
        device = next(self.parameters()).device
        if attention:
            branch = (copy.deepcopy(self.attention[init_from]) if init_from
                      else self._new_branch())
            self.attention[task.name] = branch.to(device)
        else:
            self.plain_tasks.add(task.name)
        self.heads[task.name] = make_head(task, self.backbone).to(device)
        self.tasks[task.name] = task

    def parameter_breakdown(self) -> dict[str, int]:
        """Table II: shared branch, heads, attention modules per task, extractors, total."""
        per_task = [count(b) for b in self.attention.values()]
        out = {"shared": count(self.backbone), **split_head_counts(self.tasks, self.heads),
               "attention_per_task": round(sum(per_task) / len(per_task)) if per_task else 0,
               "extractors": count(self.extractors)}
        out["total"] = count(self)
        return out


@register_model("mtln")
def build_mtln(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
               weights: str | None = None) -> MTLN:
    """MTLN (Zheng et al. 2021): shared backbone, per-task attention branches, shared extractors.

    Trained from scratch as in the paper unless ``weights`` initialises the backbone.
    """
    return MTLN(tasks, backbone=backbone, in_channels=in_channels, weights=weights)
