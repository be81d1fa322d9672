"""Task heads shared by the MTLN and its baselines, and the parameter counting they report.

Scene classification (and regression): average pooling + one linear layer (the paper's scene
classifier). Segmentation: a SegNet decoder symmetric to the backbone (the paper's pixel
classifier), unpooling with the encoder's max-pooling indices where the backbone keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.backbones import Backbone, Features
from rsbench.models.base import TaskInfo


def count(modules: nn.Module | Iterable[nn.Module] | Iterable[nn.Parameter]) -> int:
    """Number of parameters in a module, a list of modules or a list of parameters."""
    if isinstance(modules, nn.Module):
        modules = [modules]
    total = 0
    for m in modules:
        total += m.numel() if isinstance(m, nn.Parameter) else sum(p.numel()
                                                                   for p in m.parameters())
    return total


def conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LinearHead(nn.Module):
    """Scene classifier: global average pooling, then one fully connected layer."""

    def __init__(self, in_channels: int, outputs: int):
        super().__init__()
        self.fc = nn.Linear(in_channels, outputs)

    def forward(self, h: torch.Tensor, feats: Features, size: tuple[int, int]) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


class SegNetDecoder(nn.Module):
    """Pixel classifier symmetric to the backbone, from block J back to block 1.

    Stage j upsamples to block j's resolution (max-unpooling with the encoder's indices, as
    SegNet, where the backbone keeps them; bilinear otherwise), then runs ``decoder_convs[j]``
    conv-BN-ReLU layers, the first one going from c_j to c_{j-1} channels, as the SegNet decoder
    of the MTAN reference implementation; a 1×1 convolution then gives the class scores at the
    input resolution.
    """

    def __init__(self, backbone: Backbone, classes: int):
        super().__init__()
        chans = list(backbone.channels)
        self.stages = nn.ModuleList()
        for j in reversed(range(len(chans))):
            cin, cout = chans[j], chans[max(j - 1, 0)]
            layers = [conv_bn_relu(cin, cout)]
            layers += [conv_bn_relu(cout, cout) for _ in range(backbone.decoder_convs[j] - 1)]
            self.stages.append(nn.Sequential(*layers))
        self.classify = nn.Conv2d(chans[0], classes, 1)

    def forward(self, h: torch.Tensor, feats: Features, size: tuple[int, int]) -> torch.Tensor:
        blocks = len(feats.f)
        for step, stage in enumerate(self.stages):
            j = blocks - 1 - step
            target = feats.f[j].shape[-2:]
            idx = feats.indices[j] if feats.indices else None
            if h.shape[-2:] != target:
                if idx is not None and idx.shape[-2:] == h.shape[-2:]:
                    h = F.max_unpool2d(h, idx, kernel_size=2, stride=2, output_size=target)
                else:
                    h = F.interpolate(h, size=target, mode="bilinear", align_corners=False)
            h = stage(h)
        h = self.classify(h)
        if h.shape[-2:] != tuple(size):
            h = F.interpolate(h, size=size, mode="bilinear", align_corners=False)
        return h


def make_head(task: TaskInfo, backbone: Backbone) -> nn.Module:
    """The paper's head for a task: linear for scenes (and regression), SegNet for pixels."""
    if task.type in ("classification", "regression"):
        return LinearHead(backbone.final_channels, task.num_outputs)
    if task.type == "segmentation":
        return SegNetDecoder(backbone, task.num_outputs)
    raise UsageError(f"task {task.name!r} has type {task.type!r}; these models handle "
                     "classification, segmentation and regression")


def split_head_counts(tasks: dict[str, TaskInfo], heads: nn.ModuleDict) -> dict[str, int]:
    """Table II's classifier columns: linear scene heads vs segmentation decoders."""
    scene = sum(count(heads[n]) for n, t in tasks.items() if n in heads
                and t.type != "segmentation")
    pixel = sum(count(heads[n]) for n, t in tasks.items() if n in heads
                and t.type == "segmentation")
    out = {"scene_classifier": scene}
    if pixel:
        out["pixel_classifier"] = pixel
    return out


def check_tasks(tasks: Iterable[str], requested: Iterable[str]) -> None:
    """Fail clearly when the runner asks for a task the model was not built with."""
    tasks = list(tasks)
    unknown = [t for t in requested if t not in tasks]
    if unknown:
        raise UsageError(f"the model has no task {unknown[0]!r}; it was built for: "
                         f"{', '.join(tasks)}")
