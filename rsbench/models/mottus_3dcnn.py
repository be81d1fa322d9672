"""``mottus-3dcnn``: the TAIGA paper's 3-D CNN baseline (Mõttus et al. 2022, after Chen 2016).

Three 3-D convolutions over (bands, rows, cols) (kernels 32×4×4, 32×5×5, 32×4×4, max pooling
1×2×2 after the first two, ReLU, dropout 0.5), the last feature map FLATTENED (as the TAIGA
authors' code, aalto-cbir/AIROBEST ``ChenModel``) into a shared fully connected layer of 1024
units, then per task a 200-unit layer and its output layer. Predicts the centre pixel's
variables from the whole patch. Spectral kernels shrink for inputs with few bands.

Filters per conv: the reference code uses 32 (17.96M parameters on a 45×45×110 window); the HSI
paper (Table VII) counts 37.82M without stating the width, so our default is 66 (37.14M, -1.8%),
the width that brings the published design nearest the paper's count (``planes=32`` for the
reference code's).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import HsiModel, check_tasks, make
from rsbench.models.registry import register_model


def spectral_depth(bands: int, kernels: Sequence[int]) -> int:
    """Spectral depth left after unpadded 3-D convolutions with these kernel depths."""
    return bands - sum(k - 1 for k in kernels)


def spectral_kernels(bands: int, reference: Sequence[int], reference_bands: int) -> list[int]:
    """Spectral kernel depths: the reference ones, scaled down when ``bands`` is too small."""
    ks = [int(k) for k in reference]
    if spectral_depth(bands, ks) >= 1 and bands >= reference_bands:
        return ks
    ks = [max(1, k * (bands - 1) // reference_bands) for k in ks]
    while spectral_depth(bands, ks) < 1:
        ks = [max(1, k - 1) for k in ks]
    return ks


def pad_to(x: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Zero-pad the spatial dims of a 5-D tensor up to ``kernel`` (patches smaller than the
    reference 27×27 would otherwise vanish); a no-op for the paper's 45×45 windows."""
    ph, pw = max(kernel[0] - x.shape[-2], 0), max(kernel[1] - x.shape[-1], 0)
    if ph or pw:
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    return x


def fit_side(x: torch.Tensor, side: int) -> torch.Tensor:
    """The last feature map at the ``side``×``side`` the flattened layer was built for: as is
    for windows of the built size, adaptively averaged otherwise (other window sizes)."""
    if x.shape[-2:] == (side, side):
        return x
    return F.adaptive_avg_pool3d(x, (x.shape[2], side, side))


class TaskMLP(nn.Module):
    """Per-task layers after the shared FC layer: hidden layer + ReLU + output layer."""

    def __init__(self, cin: int, hidden: int, cout: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(True), nn.Linear(hidden, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FCTaskModel(HsiModel):
    """Shared trunk → flattened features → shared FC → per-task MLPs (centre-pixel output).

    The preamble both 3-D CNNs share: a subclass names its reference code's spectral kernel
    depths and band count (``reference_kernels``, ``reference_bands``) and the side of its last
    feature map (``feature_side``), whose ``planes`` channels are flattened; this constructor
    derives the kernels it builds with (``self.kernels``, scaled down for few bands) and
    ``self.side``, then creates the shared FC layer, the dropout and the task MLPs. The
    subclass creates its trunk afterwards: that order fixes which random draws initialise
    which layer, so a seeded model's weights depend on it.
    """

    patch_classifier = True  # one prediction per window: benchmark taiga-centre
    task_specific = ("task_layers",)
    reference_kernels: tuple[int, ...] = ()
    reference_bands: int = 0

    @staticmethod
    def feature_side(patch: int) -> int:
        """Spatial side of the last feature map for a ``patch``×``patch`` window."""
        raise NotImplementedError

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, planes: int, patch: int,
                 flatten: bool, *, shared: int, hidden_cls: int, hidden_reg: int,
                 dropout: float):
        kernels = spectral_kernels(in_channels, self.reference_kernels, self.reference_bands)
        side = self.feature_side(int(patch)) if flatten else 1
        features = planes * spectral_depth(in_channels, kernels) * side * side
        super().__init__(tasks, in_channels, per_pixel=False)
        self.kernels, self.side = kernels, side
        self.fc_shared = nn.Linear(features, shared)
        self.dropout = nn.Dropout(dropout)
        self.task_layers = nn.ModuleDict({
            t.name: TaskMLP(shared, hidden_reg if t.type == "regression" else hidden_cls,
                            t.num_outputs) for t in tasks})

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        check_tasks(self, tasks)
        z = self.keep_representation(F.relu(self.fc_shared(self.trunk(x).flatten(1))))
        out = {}
        for name in tasks:
            y = self.task_layers[name](z)
            if self.tasks[name].type == "regression" and y.shape[1] == 1:
                y = y.squeeze(1)
            out[name] = y
        return out

    def last_shared_layer(self) -> nn.Module:
        return self.fc_shared

    def has_shared_representation(self) -> bool:
        """The task MLPs all read the shared FC layer's output."""
        return True


def mottus_side(patch: int) -> int:
    """Spatial side of the last feature map for a ``patch``×``patch`` window (floor pooling,
    as the reference code; small windows are padded up to each kernel)."""
    s = max(max(patch, 4) - 3, 2) // 2
    s = max(max(s, 5) - 4, 2) // 2
    return max(s, 4) - 3


class Mottus3DCNN(FCTaskModel):
    """The TAIGA baseline; ``planes`` filters per 3-D conv (32 in the reference code, 66 by
    default: Table VII's size). ``patch`` is the window side the flattened layer is built for
    (45, the paper's windows); ``flatten=False`` averages the last map instead."""

    model_name = "mottus-3dcnn"
    reference_kernels, reference_bands = (32, 32, 32), 110
    feature_side = staticmethod(mottus_side)

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3, planes: int = 66,
                 dropout: float = 0.5, per_pixel: bool = False, patch: int = 45,
                 flatten: bool = True):
        super().__init__(tasks, in_channels, planes, patch, flatten, shared=1024,
                         hidden_cls=200, hidden_reg=200, dropout=dropout)
        k1, k2, k3 = self.kernels
        self.conv1 = nn.Conv3d(1, planes, (k1, 4, 4))
        self.conv2 = nn.Conv3d(planes, planes, (k2, 5, 5))
        self.conv3 = nn.Conv3d(planes, planes, (k3, 4, 4))
        self.pool = nn.MaxPool3d((1, 2, 2))
        for m in self.modules():  # the reference code initialises with N(0, 0.01)
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        x = self.dropout(self.pool(pad_to(F.relu(self.conv1(pad_to(x, (4, 4)))), (2, 2))))
        x = self.dropout(self.pool(pad_to(F.relu(self.conv2(pad_to(x, (5, 5)))), (2, 2))))
        x = self.dropout(F.relu(self.conv3(pad_to(x, (4, 4)))))
        return fit_side(x, self.side)


@register_model("mottus-3dcnn")
def build(tasks: Sequence[TaskInfo], **options) -> Mottus3DCNN:
    """Mõttus et al. 2022 TAIGA baseline: 3-D CNN, shared FC layer, per-task FC layers (IV-C5)."""
    return make(Mottus3DCNN, tasks, options)
