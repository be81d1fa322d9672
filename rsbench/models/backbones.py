"""The shared branches of the MTLN paper: ResNet-34, VGG-16 (SegNet encoder) and WRN-28-4.

Each backbone is a stack of J convolution blocks (the paper's eq. 1). ``forward`` returns, per
block, the block output ``f`` and an earlier feature ``z`` of the same block (the attention
input of eq. 3), the feature the plain heads read (``final``), and, for VGG-16, the max-pooling
indices the SegNet decoder unpools with. ResNet-34 and VGG-16 are torchvision's definitions
(state-dict keys identical to torchvision's, so ImageNet files load as they are); WRN-28-4 is
written out (Zagoruyko & Komodakis; strides 2-2-2 as the MTAN reference implementation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers as make_vgg_layers

from rsbench.errors import InputError, UsageError

BACKBONES = ("resnet34", "vgg16", "wrn28_4")


@dataclass
class Features:
    """What a backbone pass yields: per block the attention input z_j and the block output f_j."""

    z: list[torch.Tensor]
    f: list[torch.Tensor]
    final: torch.Tensor
    indices: list[torch.Tensor | None] = field(default_factory=list)


class Backbone(nn.Module):
    """J blocks run one after the other; ``stage(j, x)`` gives (z_j, f_j), ``transition`` the
    input of the next block (and pooling indices where the block ends in a max-pool)."""

    name: str = ""
    channels: tuple[int, ...] = ()  # c_1..c_J, the channels of f_j
    decoder_convs: tuple[int, ...] = ()  # convolutions per decoder stage, block 1..J
    # MTLN: an extractor also after the last attention module (see rsbench/models/mtln.py)
    final_extractor: bool = False
    imagenet_weights: str | None = None  # torchvision weights enum name, if any

    @property
    def num_blocks(self) -> int:
        return len(self.channels)

    @property
    def final_channels(self) -> int:
        return self.channels[-1]

    def stage(self, j: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def transition(self, j: int, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return f, None

    def forward(self, x: torch.Tensor) -> Features:
        zs, fs, indices = [], [], []
        for j in range(self.num_blocks):
            z, f = self.stage(j, x)
            x, idx = self.transition(j, f)
            zs.append(z)
            fs.append(f)
            indices.append(idx)
        return Features(z=zs, f=fs, final=x, indices=indices)

    def load_imagenet(self, weights: str, in_channels: int) -> None:
        """Initialise from ImageNet: a local torchvision state-dict file, or ``"imagenet"``."""
        state = _read_imagenet_state(self, weights)
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
        first = _first_conv_key(self)
        w = state.get(first)
        if (isinstance(w, torch.Tensor) and w.ndim == 4 and w.shape[1] != in_channels
                and w.shape[0] == self.state_dict()[first].shape[0]):
            state[first] = _adapt_first_conv(w, in_channels)
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        wrong = sorted(k for k in own if k in state and (not isinstance(state[k], torch.Tensor)
                                                         or state[k].shape != own[k].shape))
        if missing or wrong:
            bad = (missing or wrong)[0]
            source = (f"the file torchvision saves for {self.name} (e.g. from "
                      f"torchvision.models.{self.imagenet_weights})" if self.imagenet_weights
                      else f"a state dict of rsbench's {self.name} backbone")
            raise InputError(f"{weights}: not a torchvision {self.name} ImageNet state dict "
                             f"({'missing' if missing else 'wrong shape for'} {bad!r}); pass "
                             f"{source}")
        self.load_state_dict({k: state[k] for k in own})


def _read_imagenet_state(backbone: Backbone, weights: str) -> dict[str, torch.Tensor]:
    if weights == "imagenet":
        if backbone.imagenet_weights is None:
            raise UsageError(f"torchvision has no ImageNet weights for {backbone.name}; pass a "
                             f"local {backbone.name} state-dict file with --weights PATH (keys "
                             "as rsbench's backbone), or train from scratch (single-task)")
        enum_name, member = backbone.imagenet_weights.split(".")
        try:
            return getattr(torchvision.models, enum_name)[member].get_state_dict(progress=False)
        except Exception as exc:  # noqa: BLE001 - any download failure means: use a local file
            raise UsageError(f"could not download torchvision's ImageNet weights for "
                             f"{backbone.name} ({type(exc).__name__}); download them elsewhere "
                             f"and pass the local file with --weights PATH") from exc
    path = Path(weights)
    if not path.is_file():
        raise UsageError(f"{path}: weights file not found; pass a torchvision {backbone.name} "
                         "ImageNet state-dict file or 'imagenet'")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable file: one plain message
        raise InputError(f"{path}: cannot be read as a PyTorch state dict ({exc}); pass the "
                         f"torchvision {backbone.name} ImageNet weights file") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path}: holds a {type(state).__name__}, not a state dict; pass the "
                         f"torchvision {backbone.name} ImageNet weights file")
    return state


def _first_conv_key(backbone: Backbone) -> str:
    return next(k for k, v in backbone.state_dict().items() if v.ndim == 4)


def _adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB filters for another band count: keep RGB, extra bands get the mean RGB filter."""
    mean = weight.mean(dim=1, keepdim=True)
    extra = mean.expand(-1, max(in_channels - weight.shape[1], 0), -1, -1)
    return torch.cat([weight, extra], dim=1)[:, :in_channels].contiguous()


def _replace_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    if in_channels == conv.in_channels:
        return conv
    return nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     bias=conv.bias is not None)


class ResNet34(Backbone):
    """torchvision ResNet-34 without its ImageNet FC: blocks = stem, layer1..layer4 (J = 5)."""

    name = "resnet34"
    channels = (64, 64, 128, 256, 512)
    decoder_convs = (2, 2, 2, 2, 2)
    final_extractor = False
    imagenet_weights = "ResNet34_Weights.IMAGENET1K_V1"

    def __init__(self, in_channels: int = 3):
        super().__init__()
        net = torchvision.models.resnet34(weights=None)
        self.conv1 = _replace_first_conv(net.conv1, in_channels)
        self.bn1, self.relu, self.maxpool = net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1, net.layer2, net.layer3, net.layer4)

    def stage(self, j, x):
        if j == 0:
            f = self.relu(self.bn1(self.conv1(x)))
            return f, f
        layer = (self.layer1, self.layer2, self.layer3, self.layer4)[j - 1]
        z = layer[0](x)
        return z, layer[1:](z)

    def transition(self, j, f):
        return (self.maxpool(f) if j == 0 else f), None


class VGG16(Backbone):
    """torchvision VGG-16 (with BN, as SegNet) conv layers, J = 5 blocks, each ending in a
    max-pool that keeps its indices for the SegNet decoder."""

    name = "vgg16"
    channels = (64, 128, 256, 512, 512)
    decoder_convs = (2, 2, 3, 3, 3)
    final_extractor = True
    imagenet_weights = "VGG16_BN_Weights.IMAGENET1K_V1"

    def __init__(self, in_channels: int = 3):
        super().__init__()
        # torchvision's VGG-16-BN conv layers (vgg16_bn().features, built without the 120M
        # parameter ImageNet classifier) with torchvision's initialisation
        features = make_vgg_layers(vgg_cfgs["D"], batch_norm=True)
        features[0] = _replace_first_conv(features[0], in_channels)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.blocks: list[tuple[int, int]] = []  # [start, pool) layer ranges of each block
        start = 0
        for i, layer in enumerate(features):
            if isinstance(layer, nn.MaxPool2d):
                features[i] = nn.MaxPool2d(2, 2, return_indices=True)
                self.blocks.append((start, i))
                start = i + 1
        self.features = features

    def stage(self, j, x):
        start, stop = self.blocks[j]
        z = self.features[start:start + 3](x)  # first conv + BN + ReLU of the block
        return z, self.features[start + 3:stop](z)

    def transition(self, j, f):
        return self.features[self.blocks[j][1]](f)


class WideBasic(nn.Module):
    """Pre-activation wide residual unit (BN-ReLU-conv-BN-ReLU-conv, 1×1 shortcut on change)."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=True)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=stride, padding=1, bias=True)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride=stride, bias=True)
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        out = self.dropout(self.conv1(F.relu(self.bn1(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WRN28x4(Backbone):
    """Wide ResNet, depth 28, widen factor 4: stem conv + 3 groups of 4 units (J = 4 blocks)."""

    name = "wrn28_4"
    channels = (16, 64, 128, 256)
    decoder_convs = (2, 2, 2, 2)
    final_extractor = True
    imagenet_weights = None

    def __init__(self, in_channels: int = 3, depth: int = 28, widen: int = 4):
        super().__init__()
        self.name = f"wrn{depth}_{widen}"
        units = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=True)
        groups, cin = [], 16
        for cout in (16 * widen, 32 * widen, 64 * widen):
            groups.append(nn.Sequential(*[WideBasic(cin if u == 0 else cout, cout,
                                                    stride=2 if u == 0 else 1)
                                          for u in range(units)]))
            cin = cout
        self.groups = nn.ModuleList(groups)
        self.bn = nn.BatchNorm2d(cin)
        self.channels = (16, 16 * widen, 32 * widen, 64 * widen)

    def stage(self, j, x):
        if j == 0:
            f = self.conv1(x)
            return f, f
        group = self.groups[j - 1]
        z = group[0](x)
        f = group[1:](z)
        if j == self.num_blocks - 1:
            f = F.relu(self.bn(f))
        return z, f


_CLASSES = {"resnet34": ResNet34, "vgg16": VGG16, "wrn28_4": WRN28x4}


def build_backbone(name: str = "resnet34", in_channels: int = 3,
                   weights: str | None = None) -> Backbone:
    """A backbone by name, optionally initialised from ImageNet (local file or 'imagenet')."""
    wide = re.fullmatch(r"wrn(\d+)_(\d+)", name)
    small = wide and (int(wide[1]) - 4) % 6 == 0 and int(wide[1]) >= 10 and int(wide[2]) >= 1
    if name not in _CLASSES and not small:
        raise UsageError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)} "
                         "(or wrnD_W: a Wide ResNet of depth D = 6n + 4 and widen factor W)")
    if in_channels < 1:
        raise UsageError(f"in_channels must be at least 1, got {in_channels}")
    if name in _CLASSES:
        net = _CLASSES[name](in_channels=in_channels)
    else:  # another Wide ResNet, e.g. wrn10_1 (one unit per group) for quick tests
        net = WRN28x4(in_channels=in_channels, depth=int(wide[1]), widen=int(wide[2]))
    if weights:
        net.load_imagenet(str(weights), in_channels)
    return net
