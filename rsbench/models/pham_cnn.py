"""``pham-cnn``: Pham's 7-layer multitask CNN for TAIGA (Pham 2019; HSI paper IV-C6).

Seven 3-D convolutions: a spectral–spatial entry conv and max pooling, a residual chain of four
convs with growing spectral extent (1, 3, 5, 11 × 3×3) whose first and last outputs are summed,
then two more convs with stride-1 pooling; one shared fully connected layer (512 units) and two
fully connected layers per task (300 hidden units for categories, 200 for continuous values).
The last feature map is FLATTENED into the shared layer, as in the Pham models of the TAIGA
authors' code (aalto-cbir/AIROBEST ``PhamModel3layers*``).

``planes``: 32 in the reference code; the HSI paper (Table VII: 41.37M) does not state it, so our
default is 42 (40.34M, -2.5%), the even width nearest that count on a 45×45×110 window.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import make
from rsbench.models.mottus_3dcnn import FCTaskModel, fit_side, pad_to
from rsbench.models.registry import register_model


def pham_side(patch: int) -> int:
    """Spatial side of the last feature map for a ``patch``×``patch`` window."""
    s = -(-(max(patch, 4) - 3) // 2)  # conv 4×4, max pooling 2×2 (ceil)
    for kernel in (3, 2, 3, 2):  # conv 3×3, pooling 2×2 stride 1, conv 3×3, pooling
        s = max(s, kernel) - kernel + 1
    return s


class PhamCNN(FCTaskModel):
    """Filters ``4p, 4p×4, 2p, p`` with ``planes`` = p (32 in the reference code, 42 by default:
    Table VII's size). ``patch``: the window side the flattened layer is built for (45);
    ``flatten=False`` averages the last map instead."""

    model_name = "pham-cnn"
    reference_kernels, reference_bands = (54, 32, 32), 118
    feature_side = staticmethod(pham_side)

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int = 3, planes: int = 42,
                 dropout: float = 0.5, per_pixel: bool = False, patch: int = 45,
                 flatten: bool = True):
        super().__init__(tasks, in_channels, planes, patch, flatten, shared=512,
                         hidden_cls=300, hidden_reg=200, dropout=dropout)
        k1, k2, k3 = self.kernels
        p4 = planes * 4
        self.conv1 = nn.Conv3d(1, p4, (k1, 4, 4))
        self.bn1 = nn.BatchNorm3d(p4)
        self.chain = nn.ModuleList([
            nn.Conv3d(p4, p4, (k, 3, 3), padding=(k // 2, 1, 1)) for k in (1, 3, 5, 11)])
        self.bn_chain = nn.BatchNorm3d(p4)
        self.conv2 = nn.Conv3d(p4, planes * 2, (k2, 3, 3))
        self.bn2 = nn.BatchNorm3d(planes * 2)
        self.conv3 = nn.Conv3d(planes * 2, planes, (k3, 3, 3))
        self.bn3 = nn.BatchNorm3d(planes)
        self.pool1 = nn.MaxPool3d((1, 2, 2), ceil_mode=True)
        self.pool = nn.MaxPool3d((1, 2, 2), stride=1)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        x = self.dropout(self.pool1(F.relu(self.bn1(self.conv1(pad_to(x, (4, 4)))))))
        first = y = F.relu(self.chain[0](x))
        for i, conv in enumerate(self.chain[1:], start=1):
            y = conv(y)
            if i < len(self.chain) - 1:
                y = F.relu(y)
        x = F.relu(self.bn_chain(first + y))
        x = F.relu(self.bn2(self.conv2(pad_to(x, (3, 3)))))
        x = self.dropout(self.pool(pad_to(x, (2, 2))))
        x = F.relu(self.bn3(self.conv3(pad_to(x, (3, 3)))))
        x = self.dropout(self.pool(pad_to(x, (2, 2))))
        return fit_side(x, self.side)


@register_model("pham-cnn")
def build(tasks: Sequence[TaskInfo], **options) -> PhamCNN:
    """Pham 2019: 7-layer 3-D CNN, one shared FC layer, two FC layers per task (IV-C6)."""
    return make(PhamCNN, tasks, options)
