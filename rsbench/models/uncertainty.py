"""``uncertainty``: the MTLN paper's "Uncer. Weig." row (its [48], Kendall, Gal & Cipolla 2018).

Hard parameter sharing (the ``shared-specific`` network: one backbone, one head per task) trained
with the ``uncertainty`` task weighting (``rsbench/training/weighting/uncertainty.py``): one
learned s_k = log sigma_k^2 per task. The model is the shared pieces; the runner uses this
weighting for it by default (``default_weighting``), so the run keeps the paper's name.
"""

from __future__ import annotations

from rsbench.models.base import TaskInfo
from rsbench.models.registry import register_model
from rsbench.models.shared_specific import SharedSpecific


@register_model("uncertainty")
def build_uncertainty(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                      weights: str | None = None) -> SharedSpecific:
    """Uncertainty weighting (Kendall et al. 2018): shared backbone + heads, learned loss weights
    (the weighting is the run's, ``"uncertainty"`` by default for this model)."""
    return SharedSpecific(tasks, backbone=backbone, in_channels=in_channels, weights=weights)


build_uncertainty.default_weighting = "uncertainty"
