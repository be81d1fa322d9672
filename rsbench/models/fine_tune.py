"""``fine-tune``: the Baseline's independent networks, each started from ImageNet weights.

As the paper's Fine-tune column (Table III): the same architecture as ``single-task``, every
backbone initialised from ImageNet and then trained on its own dataset. ``weights`` is a local
torchvision state-dict file, or ``"imagenet"`` to let torchvision fetch (or reuse its cached)
file; offline, that fails with a one-line message asking for the local file.
"""

from __future__ import annotations

from rsbench.errors import UsageError
from rsbench.models.base import TaskInfo
from rsbench.models.registry import register_model
from rsbench.models.single_task import SingleTask


@register_model("fine-tune")
def build_fine_tune(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                    weights: str | None = "imagenet") -> SingleTask:
    """Fine-tune: one network per task started from ImageNet weights (--weights FILE|imagenet)."""
    if not weights:
        raise UsageError("fine-tune starts from ImageNet weights: pass --weights PATH (a "
                         f"torchvision {backbone} state-dict file) or --weights imagenet")
    return SingleTask(tasks, backbone=backbone, in_channels=in_channels, weights=weights)


# registered facts the rest of rsbench reads (models.architecture_of / models.starts_from_weights)
build_fine_tune.architecture = "single-task"  # its networks are single-task's
build_fine_tune.starts_from_weights = True  # a run needs --weights; it is no "+pretrained" row
