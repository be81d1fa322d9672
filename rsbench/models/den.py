"""``den``: Deep Elastic Network (Ahn, Kim and Oh, ICCV 2019), the MTLN paper's [39].

An estimator (the benchmark's backbone: ResNet-34 on MSC, WRN-28-4 on mini-MSC) whose residual
blocks have their first convolution split into hierarchical groups of filters (C/4, C/4, C/2;
see ``den_parts``), shared by every task, with one linear head per task; and one selector per
task, a small residual network that picks per image a level (0-3 groups) for every block. The
selector is trained by REINFORCE with the authors' reward (1 - u^2)/rho - CE + 1, where u is the
share of grouped filters the sub-network uses, so accuracy is traded against compute.

Training follows the authors' code (``train_ours_resnet.py``, ``train_ours_wident.py``) in one
loop: for the first ``pretrain_steps`` training batches of a task the estimator alone learns,
75% of the images through the whole network and 25% through random sub-networks (the selector is
idle and the model evaluates the whole network, as theirs does); afterwards the selector draws
each image's sub-network epsilon-greedily (epsilon = ``explore_decay`` ** steps since the
pre-training) and the estimator learns on the drawn sub-networks while the selector learns from
their reward (``auxiliary_loss``). Evaluation uses the selector's most probable sub-network.

Settings the DEN paper and code do not give for these benchmarks, chosen here (README, DEN):
- one selector per task (the authors share its body between tasks and keep per-task stems),
  at ``selector_width`` = 0.78 of the estimator's stage widths, a width that puts both
  totals within 5% of Table III: 30.06M on MSC (-3.9% of 31.29M) and 8.01M on mini-MSC (+3.7%
  of 7.72M); at full width they would be 35.63M and 9.37M;
- one joint loop instead of their separate stages (pre-training, then alternating selector and
  estimator phases), the estimator learning on the drawn sub-networks rather than on a second
  pass through the most probable one; the benchmark's optimiser (Adam, lr 1e-4) for the
  selector too (theirs: Adam, 1e-3);
- ``pretrain_steps``: about a third of the benchmark's default run (mini-MSC: 1000 of 3000
  steps; MSC: 13000 of ~39000), the authors' pre-training share;
- the reward's compute term per image (the authors' code averages it over the batch);
- level 0 skips the block's residual branch exactly (their code passes the zeroed filters on
  through the second convolution's BN, ReLU and convolution, which are then not zero).
From the authors' code: three groups (four levels), rho = 10, 75% whole-network images in
pre-training, epsilon decay 0.99 per step, no reward baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.backbones import build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.den_parts import (
    LEVELS,
    Selector,
    density,
    elastic_blocks,
    elastic_forward,
    random_levels,
    reinforce_loss,
    reward,
    sample_levels,
)
from rsbench.models.parts import check_tasks, count, make_head
from rsbench.models.registry import register_model

# the selector's stem and stage widths at selector_width 1 (the authors' policy networks)
SELECTOR_WIDTHS = {"resnet34": (64, (64, 128, 256, 512)), "wrn28_4": (16, (64, 128, 256))}
PRETRAIN_STEPS = {"resnet34": 13000, "wrn28_4": 1000}


class DEN(MultiTaskModel):
    """Hierarchical estimator + per-task selectors trained by policy gradient."""

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34",
                 in_channels: int = 3, weights: str | None = None, selector_width: float = 0.78,
                 rho: float = 10.0, pretrain_steps: int | None = None,
                 full_fraction: float = 0.75, explore_decay: float = 0.99):
        super().__init__(tasks)
        bad = [t.name for t in tasks if t.type != "classification"]
        if bad:
            raise UsageError(f"den classifies scenes; task {bad[0]!r} is {self.tasks[bad[0]].type}"
                             " (use it on msc or mini-msc)")
        if not 0 < selector_width <= 4 or rho <= 0 or not 0 <= full_fraction <= 1 \
                or not 0 <= explore_decay <= 1:
            raise UsageError("den options: selector_width in (0, 4], rho > 0, full_fraction and "
                             "explore_decay in [0, 1]; fix model_options or --set")
        self.backbone = build_backbone(backbone, in_channels, weights)
        self.num_blocks = len(elastic_blocks(self.backbone))
        self.heads = nn.ModuleDict({t.name: make_head(t, self.backbone) for t in tasks})
        stem, widths = SELECTOR_WIDTHS[backbone]
        scaled = [max(4, round(w * selector_width)) for w in widths]
        self.selectors = nn.ModuleDict({
            t.name: Selector(in_channels, max(4, round(stem * selector_width)), scaled,
                             self.num_blocks) for t in tasks})
        self.rho, self.full_fraction, self.explore_decay = rho, full_fraction, explore_decay
        self.pretrain_steps = (PRETRAIN_STEPS[backbone] if pretrain_steps is None
                               else int(pretrain_steps))
        # training batches seen per task (in the checkpoint, so a resumed run keeps its phase)
        self.register_buffer("steps", torch.zeros(len(tasks), dtype=torch.long))
        self._pending: dict[str, tuple[torch.Tensor, ...]] = {}
        self._usage: dict[str, torch.Tensor] = {}  # eval: [sum of shares used, images]
        self.last_levels: dict[str, torch.Tensor] = {}

    def _task_step(self, task: str) -> int:
        return int(self.steps[list(self.tasks).index(task)])

    def selecting(self, task: str) -> bool:
        """Whether the selector chooses the sub-network (after the estimator's pre-training)."""
        return self._task_step(task) >= self.pretrain_steps

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        return {t: self._forward_task(x, t) for t in tasks}

    def _forward_task(self, x: torch.Tensor, task: str) -> torch.Tensor:
        b = x.shape[0]
        selecting = self.selecting(task)
        log_probs = self.selectors[task](x) if selecting else None
        if self.training:
            step = self._task_step(task)
            self.steps[list(self.tasks).index(task)] += 1
            if log_probs is None:
                levels = random_levels(b, self.num_blocks, self.full_fraction, x.device)
            else:
                epsilon = self.explore_decay ** (step - self.pretrain_steps)
                levels = sample_levels(log_probs.detach(), epsilon)
        else:
            levels = (torch.full((b, self.num_blocks), LEVELS - 1, device=x.device)
                      if log_probs is None else log_probs.argmax(dim=-1))
            used = torch.stack([density(levels).sum().double(), torch.tensor(b, dtype=torch.double,
                                                                             device=x.device)])
            self._usage[task] = self._usage.get(task, torch.zeros_like(used)) + used
        logits = self.heads[task](elastic_forward(self.backbone, x, levels), None, x.shape[-2:])
        self.last_levels[task] = levels.detach()
        if self.training and log_probs is not None:
            self._pending[task] = (log_probs, levels, logits)
            # the selector reaches the loss through auxiliary_loss only; a zero term ties it to
            # the output, so DDP counts its parameters as used by this forward pass
            logits = logits + 0.0 * log_probs.sum().to(logits.dtype)
        else:
            self._pending.pop(task, None)
        return logits

    def auxiliary_loss(self, targets: Mapping[str, torch.Tensor] | None = None
                       ) -> torch.Tensor | None:
        """The selectors' REINFORCE loss for the last training forward pass (None while the
        estimator pre-trains). The reward needs each image's loss, hence the step's targets."""
        if not self._pending:
            return None
        if targets is None:
            raise RuntimeError("den's policy gradient needs the step's targets: call "
                               "model.auxiliary_loss(targets) after the training forward pass")
        terms = []
        for task, (log_probs, levels, logits) in self._pending.items():
            ce = F.cross_entropy(logits.detach().float(), targets[task].long(), reduction="none")
            terms.append(reinforce_loss(log_probs, levels, reward(ce, density(levels), self.rho)))
        self._pending.clear()
        return torch.stack(terms).sum()

    def evaluation_usage(self, reset: bool = False) -> dict[str, torch.Tensor]:
        """Per task, [sum over evaluated images of the share of grouped filters their chosen
        sub-network uses, images] since the last reset (summed over DDP ranks by the caller)."""
        usage = dict(self._usage)
        if reset:
            self._usage.clear()
        return usage

    def shared_parameters(self):
        """The estimator shared by every task (selectors and heads are per task)."""
        return list(self.backbone.parameters())

    def parameter_breakdown(self) -> dict[str, int]:
        return {"shared": count(self.backbone), "scene_classifier": count(self.heads),
                "selectors": count(self.selectors), "total": count(self)}


@register_model("den")
def build_den(tasks: list[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
              weights: str | None = None, selector_width: float = 0.78, rho: float = 10.0,
              pretrain_steps: int | None = None, full_fraction: float = 0.75,
              explore_decay: float = 0.99) -> DEN:
    """DEN (Ahn et al. 2019): hierarchical estimator, per-task selectors, policy gradient."""
    return DEN(tasks, backbone=backbone, in_channels=in_channels, weights=weights,
               selector_width=selector_width, rho=rho, pretrain_steps=pretrain_steps,
               full_fraction=full_fraction, explore_decay=explore_decay)
