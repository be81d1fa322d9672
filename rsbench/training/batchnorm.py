"""BatchNorm layers whose parameters are frozen keep fixed statistics: the training loop, the
evaluation and the frozen-transfer methods all put them in eval mode after ``model.train()``."""

from __future__ import annotations

from torch import nn


def keep_frozen_bn_eval(model: nn.Module) -> None:
    """Put BatchNorm layers whose parameters are all frozen in eval mode (fixed statistics)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            ps = list(m.parameters(recurse=False))
            if ps and not any(p.requires_grad for p in ps):
                m.eval()
