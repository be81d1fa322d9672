"""The pieces of DEN (Ahn, Kim and Oh, ICCV 2019): the hierarchical estimator pass, the selector
network, and the policy-gradient arithmetic. ``rsbench/models/den.py`` puts them together.

Hierarchy (the authors' ``residual_block``, ``lv=3``): the first convolution of every residual
block is split into three groups of C/4, C/4 and C/2 filters. A block's level k in {0, 1, 2, 3}
keeps the first k groups: none (the block adds nothing to its shortcut), C/4, C/2 or all C
filters. A sub-network is one level per block; the selector chooses it per input image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from rsbench.errors import UsageError
from rsbench.models.backbones import Backbone, ResNet34, WideBasic, WRN28x4

LEVELS = 4  # 0, 1, 2 or 3 groups of filters in use
FRACTION = (0.0, 0.25, 0.5, 1.0)  # share of a block's grouped filters each level uses


def elastic_blocks(backbone: Backbone) -> list[nn.Module]:
    """The residual blocks whose first convolution is grouped, in forward order."""
    if isinstance(backbone, ResNet34):
        return [b for layer in (backbone.layer1, backbone.layer2, backbone.layer3,
                                backbone.layer4) for b in layer]
    if isinstance(backbone, WRN28x4):
        return [u for group in backbone.groups for u in group]
    raise UsageError(f"den runs on the resnet34 (MSC) or wrn28_4 (mini-MSC) backbone, not "
                     f"{backbone.name!r}; set --backbone resnet34 or wrn28_4")


def group_mask(levels: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    """(B,) levels -> (B, C, 1, 1) mask keeping the first C/4, C/2 or C filters (level 1-3)."""
    kept = torch.tensor([0, channels // 4, channels // 2, channels], device=levels.device)
    idx = torch.arange(channels, device=levels.device)
    return (idx[None, :] < kept[levels][:, None]).to(dtype)[:, :, None, None]


def _resnet_block(block: BasicBlock, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    identity = block.downsample(x) if block.downsample is not None else x
    h = block.relu(block.bn1(block.conv1(x)))
    h = h * group_mask(level, h.shape[1], h.dtype)
    h = block.bn2(block.conv2(h)) * (level > 0).to(h.dtype)[:, None, None, None]
    return block.relu(identity + h)


def _wide_block(unit: WideBasic, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    h = unit.dropout(unit.conv1(F.relu(unit.bn1(x))))
    h = F.relu(unit.bn2(h))
    h = h * group_mask(level, h.shape[1], h.dtype)
    h = unit.conv2(h) * (level > 0).to(h.dtype)[:, None, None, None]
    return h + unit.shortcut(x)


def elastic_forward(backbone: Backbone, x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """The estimator's last feature map for per-image levels ``levels`` (B × blocks).

    Masking the grouped filters after their BN and ReLU equals dropping them (their BN
    statistics still see every image, so they do not depend on the selection).
    """
    if isinstance(backbone, ResNet34):
        h = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(x))))
        for i, block in enumerate(elastic_blocks(backbone)):
            h = _resnet_block(block, h, levels[:, i])
        return h
    h = backbone.conv1(x)
    for i, unit in enumerate(elastic_blocks(backbone)):
        h = _wide_block(unit, h, levels[:, i])
    return F.relu(backbone.bn(h))


class PreActBlock(nn.Module):
    """The selector's residual block (the authors' pre-activation block; its shortcut
    average-pools and zero-pads channels, so it has no parameters)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        short = F.avg_pool2d(x, self.stride) if self.stride > 1 else x
        if self.pad:
            short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return h + short


class Selector(nn.Module):
    """One task's selector: a 7×7 stem, one residual block per stage, global pooling and a
    linear layer giving, per estimator block, scores over the four levels.

    As the authors' ``policy_inference``, the stem's stride brings the image to 32 px
    (stride = side // 32, at least 1): for 224 px inputs, stride 7.
    """

    def __init__(self, in_channels: int, stem: int, widths: list[int], blocks: int):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, stem, 7, padding=3, bias=False)
        self.stem_bn = nn.BatchNorm2d(stem)
        stages, cin = [], stem
        for s, w in enumerate(widths):
            stages.append(PreActBlock(cin, w, 1 if s == 0 else 2))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, blocks * LEVELS)
        self.blocks = blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, blocks, LEVELS) log-probabilities of each block's level."""
        stride = max(1, min(x.shape[-2:]) // 32)
        h = F.conv2d(x, self.stem.weight, stride=stride, padding=3)
        h = self.stages(F.relu(self.stem_bn(h)))
        h = torch.flatten(F.adaptive_avg_pool2d(F.relu(self.bn(h)), 1), 1)
        logits = self.fc(h).float().view(-1, self.blocks, LEVELS)
        return F.log_softmax(logits, dim=-1)


def sample_levels(log_probs: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Epsilon-greedy draw: each image's levels come from the policy, or with probability
    ``epsilon`` uniformly at random (the authors draw from softmax(U(0,1)), nearly uniform)."""
    policy = torch.distributions.Categorical(logits=log_probs).sample()
    uniform = torch.randint_like(policy, LEVELS)
    explore = torch.rand(policy.shape[0], 1, device=policy.device) < epsilon
    return torch.where(explore, uniform, policy)


def random_levels(batch: int, blocks: int, full_fraction: float,
                  device: torch.device) -> torch.Tensor:
    """The estimator's pre-training draw: the first ``full_fraction`` of the images use every
    filter (level 3), the rest a uniformly random level per block (authors: 75% / 25%)."""
    levels = torch.randint(0, LEVELS, (batch, blocks), device=device)
    levels[:round(batch * full_fraction)] = LEVELS - 1
    return levels


def density(levels: torch.Tensor) -> torch.Tensor:
    """(B,) share of the grouped filters an image's sub-network uses (0 to 1)."""
    return torch.tensor(FRACTION, device=levels.device)[levels].mean(dim=1)


def reward(ce: torch.Tensor, used: torch.Tensor, rho: float) -> torch.Tensor:
    """The authors' reward: (1 - used^2) / rho - cross-entropy + 1; fewer filters and a lower
    loss both pay, rho trading one against the other."""
    return (1.0 - used ** 2) / rho - ce + 1.0


def reinforce_loss(log_probs: torch.Tensor, levels: torch.Tensor,
                   rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE: -mean over images of log pi(levels | x) * reward (no baseline, as the
    authors); gradients reach the selector only."""
    chosen = log_probs.gather(-1, levels.unsqueeze(-1)).squeeze(-1).sum(dim=1)
    return -(chosen * rewards.detach()).mean()
