"""``ltb``: Learning to Branch (Guo, Lee and Ulbricht, ICML 2020), as LibMTL's ``LTB``.

A tree searched by gradient: every block j of the benchmark's backbone (ResNet-34: stem and four
layers; VGG-16: five conv blocks; WRN-28-4: stem and three groups) has K nodes, one copy of the
block per task. Child node k of block j reads one parent node of block j-1, chosen by a
Gumbel-softmax sample over learned logits alpha[j, k, :] (hard one-hot forward,
straight-through gradient, so alpha learns from the task losses); task k's head reads node k of
the last block. Nodes that pick the same parents compute the same thing: the tree's branches.

Schedule (LibMTL's, in epochs of the run's ``epochs``): a warm-up while epoch < epochs/100 in
which every child reads the sum of all its parents (alpha all ones, not learned), then
temperature tau = (epochs/20) / sqrt(epoch + 1). The epoch comes from the training loop
(``set_epoch``), so a resumed run continues the schedule; the Gumbel noise comes from a
generator seeded from the run's seed and a draw counter kept in the checkpoint, so every DDP
process samples the same tree and a resumed run the same trees as an uninterrupted one.

Choices neither the paper nor LibMTL fixes for these benchmarks (README, Models; the configs'
``ltb.*`` entries): K = the number of tasks (LibMTL's one network per task); ``epochs`` of the
schedule = the benchmark's default run (MSC 50, mini-MSC 100, PSC 30: set
``model_options.epochs`` with ``--epochs``); evaluation uses the most probable tree (argmax of
alpha; LibMTL samples at evaluation too, the paper derives its final tree by argmax); weights and
branching learn together in one run with the benchmark's optimiser (LibMTL's; the paper does not
retrain the found tree here). Task k's SegNet decoder unpools with the indices of the nodes on
its own path.

On TAIGA (backbone ``hsi``: its configs name no backbone) the blocks are the three stages of the
HSI paper's encoder (``rsbench.models.hsi_stages``: ``hsi-mtl``'s shared encoder and attention),
K = 13 copies of each, and the stage outputs on task k's path are the bottleneck and the skips
of ``hsi-mtl``'s decoder of its type (then a 1×1 head per task). Chosen here (neither LTB's
paper, LibMTL nor the HSI paper covers it): a block is a stage of that encoder; the schedule
runs over TAIGA's 150 epochs (warm-up in epochs 0 and 1, then temperature 7.5/sqrt(epoch + 1));
in the warm-up a task's skips are its own copies' outputs; the copies keep hsi-mtl's width 128
(``width``): 13 encoders, about 167M of the model's 174M parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.backbones import Features, build_backbone
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.models.hsi_stages import HsiArchitecture, hsi_settings, uses_hsi_encoder
from rsbench.models.moe_parts import count, refuse_per_pixel
from rsbench.models.parts import check_tasks, make_head, split_head_counts
from rsbench.models.registry import register_model

# the benchmarks' default runs (MSC, mini-MSC, PSC, TAIGA); 50 for another backbone
SCHEDULE_EPOCHS = {"resnet34": 50, "wrn28_4": 100, "vgg16": 30, "hsi": 150}


class BranchingSchedule:
    """LTB's learned tree and its schedule, over either kind of network: the branching logits
    ``alpha`` [block j+1, child, parent], the epoch, and the checkpointed Gumbel seed and draw
    counter (``init_branching`` registers them)."""

    alpha: nn.Parameter
    epoch: torch.Tensor
    draws: torch.Tensor
    gumbel_seed: torch.Tensor
    schedule_epochs: int
    training: bool

    def init_branching(self, levels: int, k: int, epochs: int | None, default: int) -> None:
        """The logits (all ones) and the schedule's length; call ``init_noise`` after the
        heads (the seed is drawn from the run's generator)."""
        self.alpha = nn.Parameter(torch.ones(levels - 1, k, k))  # [block j+1, child, parent]
        self.schedule_epochs = int(epochs if epochs is not None else default)
        if self.schedule_epochs < 1:
            raise UsageError(f"ltb: epochs must be at least 1, got {epochs}; fix "
                             "model_options.epochs (--set model_options.epochs=N)")

    def init_noise(self) -> None:
        seed = int(torch.randint(2 ** 31 - 1, (), device="cpu"))  # from the run's seed
        self.register_buffer("gumbel_seed", torch.tensor(seed, dtype=torch.long))
        self.register_buffer("draws", torch.zeros((), dtype=torch.long))
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def set_epoch(self, epoch: int) -> None:
        """Called by the training loop at each epoch's start: the schedule's position."""
        self.epoch.fill_(int(epoch))

    def warming_up(self) -> bool:
        """Whether every child reads all parents (also on the meta device: a shape-only pass
        costs what a branching one does)."""
        return self.alpha.is_meta or int(self.epoch) < self.schedule_epochs / 100

    def temperature(self) -> float:
        return self.schedule_epochs / 20 / math.sqrt(int(self.epoch) + 1)

    def choices(self) -> torch.Tensor:
        """Parent weights [block, child, parent]: ones in the warm-up, else a hard Gumbel-softmax
        sample (training) or the argmax of alpha (evaluation)."""
        alpha = self.alpha
        if self.warming_up():
            return torch.ones_like(alpha).detach()
        if not self.training:
            return F.one_hot(alpha.argmax(-1), alpha.shape[-1]).to(alpha.dtype).detach()
        gen = torch.Generator().manual_seed(int(self.gumbel_seed) * 1_000_003 + int(self.draws))
        self.draws += 1
        u = torch.rand(alpha.shape, generator=gen, dtype=torch.float64)
        gumbel = (-torch.log(-torch.log(u.clamp(1e-20, 1 - 1e-12)))).to(alpha.device, alpha.dtype)
        soft = torch.softmax((alpha + gumbel) / self.temperature(), dim=-1)
        hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
        return hard - soft.detach() + soft

    def tree(self) -> list[list[int]]:
        """The most probable tree: for each block after the first, each child's parent."""
        return self.alpha.detach().argmax(-1).tolist()

    def path(self, weights: torch.Tensor, child: int) -> list[int]:
        """The nodes, block by block, on the path to node ``child`` of the last block (in the
        warm-up there is no single path: the child's own copies)."""
        warm = self.warming_up()
        parents = weights.detach().argmax(-1)
        out = [child]
        for j in range(weights.shape[0], 0, -1):
            out.insert(0, child if warm else int(parents[j - 1, out[0]]))
        return out


class LTB(BranchingSchedule, MultiTaskModel):
    """K copies of every block, Gumbel-softmax parent choices between blocks, one head per task."""

    task_specific = ("heads",)  # any node can end up on any task's path: all else is shared

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None, epochs: int | None = None):
        super().__init__(tasks)
        k = len(tasks)
        self.nodes = nn.ModuleList([build_backbone(backbone, in_channels, weights)
                                    for _ in range(k)])
        self.init_branching(self.nodes[0].num_blocks, k, epochs,
                            SCHEDULE_EPOCHS.get(backbone, 50))
        self.heads = nn.ModuleDict({t.name: make_head(t, self.nodes[0]) for t in tasks})
        self.init_noise()

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        check_tasks(self.tasks, tasks)
        names = list(self.tasks)
        weights = self.choices()
        k = len(self.nodes)
        inputs, outs = [x] * k, [x] * k
        fs: list[list[torch.Tensor]] = []
        idxs: list[list[torch.Tensor | None]] = []
        for j in range(weights.shape[0] + 1):
            if j > 0:
                w = weights[j - 1]
                inputs = [sum(w[c, p].to(outs[p].dtype) * outs[p] for p in range(k))
                          for c in range(k)]
            level_f, level_idx, outs = [], [], []
            for node, inp in zip(self.nodes, inputs):
                f = node.stage(j, inp)[1]
                nxt, idx = node.transition(j, f)
                level_f.append(f)
                level_idx.append(idx)
                outs.append(nxt)
            fs.append(level_f)
            idxs.append(level_idx)
        out = {}
        for t in tasks:
            c = names.index(t)
            path = self.path(weights, c)  # warm-up: the task's own copies' pooling indices
            feats = Features(z=[], f=[fs[j][n] for j, n in enumerate(path)], final=outs[c],
                             indices=[idxs[j][n] for j, n in enumerate(path)])
            out[t] = self.heads[t](outs[c], feats, x.shape[-2:])
        return out

    def parameter_breakdown(self) -> dict[str, int]:
        return {"networks": count(self.nodes), "branching": self.alpha.numel(),
                **split_head_counts(self.tasks, self.heads), "total": count(self)}


class HsiLTB(BranchingSchedule, HsiArchitecture):
    """LTB over the HSI encoder's three stages: a stage copy per task, Gumbel-softmax parent
    choices between stages; each task's path of stage outputs feeds hsi-mtl's decoder."""

    task_specific = ("decoders", "heads")  # any node can end up on any task's path

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, per_pixel: bool = False,
                 epochs: int | None = None, **hsi):
        super().__init__(tasks, in_channels, per_pixel, **hsi)
        k = len(tasks)
        self.nodes = nn.ModuleList([self.new_encoder() for _ in range(k)])
        self.init_branching(self.nodes[0].num_blocks, k, epochs, SCHEDULE_EPOCHS["hsi"])
        self.make_heads()
        self.init_noise()

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_input(x, tasks)
        names = list(self.tasks)
        weights = self.choices()
        outs = [node.stage(0, x) for node in self.nodes]
        levels = [outs]
        for j in range(1, weights.shape[0] + 1):
            # child c reads sum_p w[c, p] · parent p (one parent after the warm-up)
            inputs = torch.einsum("cp,p...->c...", weights[j - 1].to(outs[0].dtype),
                                  torch.stack(outs))
            outs = [node.stage(j, inp) for node, inp in zip(self.nodes, inputs)]
            levels.append(outs)
        feats = {t: [levels[j][n] for j, n in enumerate(self.path(weights, names.index(t)))]
                 for t in tasks}
        return self.decode(feats, tasks, x.shape[-2:])

    def parameter_breakdown(self) -> dict[str, int]:
        return {"networks": count(self.nodes), "branching": self.alpha.numel(),
                **self.head_counts(), "total": count(self)}


@register_model("ltb")
def build_ltb(tasks: list[TaskInfo], backbone: str | None = None, in_channels: int = 3,
              weights: str | None = None, epochs: int | None = None,
              per_pixel: bool | None = None, width: int | None = None,
              rates: Sequence[int] | None = None) -> LTB | HsiLTB:
    """Learning to Branch (Guo et al. 2020): a block copy per task, Gumbel-softmax branching.

    ``backbone``: the benchmark's (resnet34, wrn28_4, vgg16); none (TAIGA) or ``hsi``: the HSI
    paper's encoder, whose ``width`` and Dense ASPP ``rates`` are hsi-mtl's options."""
    if uses_hsi_encoder("ltb", backbone, weights=weights, width=width, rates=rates):
        return HsiLTB(tasks, in_channels, bool(per_pixel), epochs=epochs,
                      **hsi_settings(width, rates))
    refuse_per_pixel("ltb", per_pixel)
    return LTB(tasks, backbone=backbone, in_channels=in_channels, weights=weights, epochs=epochs)


build_ltb.label = "LTB"  # the reports' name
