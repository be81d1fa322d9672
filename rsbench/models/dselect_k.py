"""``dselect-k``: DSelect-k gates over shared experts (Hazimeh et al., NeurIPS 2021), as LibMTL's
``DSelect_k`` (itself from the authors' TensorFlow ``dselect_k_moe``).

The experts are MMoE's (``rsbench.models.mmoe``: E whole backbones shared by every task). Each
task's gate is k single-expert selectors: selector i reads log2(E) logits z_i(x), passes them
through the cubic smooth-step S_gamma (0 below -gamma/2, 1 above gamma/2) and gives expert e the
weight prod_b S(z_ib) or 1 - S(z_ib) by the bits of e's binary code; the k selectors are mixed
by softmax(w(x)). Selectors reach exact zeros, so training ends with at most k experts per task.
Each training pass adds LibMTL's regulariser (``auxiliary_loss``): ``entropy_reg`` times the
selectors' entropy (summed over images, as LibMTL), plus, when E is not a power of two, the sum
of 1 / (mass the selectors give to real experts) that keeps them off the non-existent codes.

From LibMTL: k = 2 (``num_nonzeros``), gamma = 1 (``kgamma``), entropy weight 1e-6, per-image
gates (z and w linear in the gate input), z initialised uniform in ±gamma/100 and w in ±0.05.
Chosen here (README, Models; the configs' ``dselect-k.*`` entries): ``num_experts`` = 4 (LibMTL
requires it; a power of two, so every binary code is an expert), gates reading the image pooled
to 8×8 (``gate_pool``), and the regulariser of every task's gate (LibMTL's adds only the last
task's).

On TAIGA (backbone ``hsi``: its configs name no backbone) the experts are MMoE's there
(``rsbench.models.mmoe.HsiMMoE``: 4 whole HSI paper's encoders, every stage's output mixed with
the task's gate weights, hsi-mtl's decoders and heads); the gates read the window pooled to 8×8.
Neither DSelect-k's paper nor LibMTL says anything about dense outputs: the selection is per
window (one expert mixture for all its pixels), as the per-image gate of the images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from rsbench.errors import UsageError
from rsbench.models.base import TaskInfo
from rsbench.models.hsi_stages import hsi_settings, uses_hsi_encoder
from rsbench.models.mmoe import HsiMMoE, MMoE
from rsbench.models.moe_parts import GATE_POOL, gate_input, refuse_per_pixel
from rsbench.models.registry import register_model


def smooth_step(t: torch.Tensor, gamma: float) -> torch.Tensor:
    """The cubic smooth-step of DSelect-k: 0 for t <= -gamma/2, 1 for t >= gamma/2."""
    cubic = -2.0 / gamma ** 3 * t ** 3 + 3.0 / (2.0 * gamma) * t + 0.5
    return torch.where(t <= -gamma / 2, torch.zeros_like(t),
                       torch.where(t >= gamma / 2, torch.ones_like(t), cubic))


class DSelectGate(nn.Module):
    """k differentiable single-expert selectors mixed by a softmax; returns B × E weights."""

    def __init__(self, channels: int, experts: int, k: int, gamma: float,
                 pool: int = GATE_POOL):
        super().__init__()
        self.experts, self.k, self.gamma, self.pool = experts, k, float(gamma), int(pool)
        self.bits = max(1, math.ceil(math.log2(experts)))
        features = channels * self.pool * self.pool
        self.z_logits = nn.Linear(features, k * self.bits)
        self.w_logits = nn.Linear(features, k)
        with torch.no_grad():
            for p in self.z_logits.parameters():
                p.uniform_(-self.gamma / 100, self.gamma / 100)
            for p in self.w_logits.parameters():
                p.uniform_(-0.05, 0.05)
        codes = [[(e >> (self.bits - 1 - b)) & 1 for b in range(self.bits)]
                 for e in range(experts)]
        self.register_buffer("codes", torch.tensor(codes, dtype=torch.bool), persistent=False)
        self.last_selectors: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = gate_input(x, self.pool)
        z = self.z_logits(g).float().reshape(-1, self.k, 1, self.bits)
        s = smooth_step(z, self.gamma)
        selectors = torch.where(self.codes, s, 1 - s).prod(dim=-1)  # B × k × E
        self.last_selectors = selectors
        w = torch.softmax(self.w_logits(g).float(), dim=-1)  # B × k
        return torch.einsum("bk,bke->be", w, selectors)

    def regulariser(self, entropy_reg: float) -> torch.Tensor:
        s = self.last_selectors
        loss = -(s * torch.log(s + 1e-6)).sum() * entropy_reg
        if self.experts != 2 ** self.bits:
            loss = loss + (1 / s.sum(dim=-1)).sum()
        return loss


class DSelectRouting:
    """What DSelect-k changes in MMoE, over either kind of expert: the gates, and the selector
    regulariser of the last training pass (``auxiliary_loss``)."""

    num_nonzeros: int
    kgamma: float
    entropy_reg: float
    gates: nn.ModuleDict

    def set_routing(self, num_experts: int, num_nonzeros: int, kgamma: float,
                    entropy_reg: float) -> None:
        """Check and keep the gate's options (before the experts and gates are built)."""
        if not 1 <= int(num_nonzeros) <= int(num_experts) or kgamma <= 0 or entropy_reg < 0:
            raise UsageError("dselect-k options: 1 <= num_nonzeros <= num_experts, kgamma > 0, "
                             "entropy_reg >= 0; fix model_options (--set model_options.NAME=V)")
        self.num_nonzeros, self.kgamma = int(num_nonzeros), float(kgamma)
        self.entropy_reg = float(entropy_reg)

    def make_gate(self, channels: int, experts: int, pool: int) -> nn.Module:
        return DSelectGate(channels, experts, self.num_nonzeros, self.kgamma, pool)

    def forward(self, x: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        out = super().forward(x, tasks)
        if self.training:
            self._pending.update(tasks)
        return out

    def auxiliary_loss(self, targets: Mapping[str, torch.Tensor] | None = None
                       ) -> torch.Tensor | None:
        """DSelect-k's selector regulariser of the last training pass (None when there was
        none); added unweighted to the task losses by the training loop."""
        if not self._pending:
            return None
        terms = [self.gates[t].regulariser(self.entropy_reg) for t in sorted(self._pending)]
        self._pending.clear()
        return torch.stack(terms).sum()


class DSelectK(DSelectRouting, MMoE):
    """MMoE's shared experts with a DSelect-k gate per task."""

    def __init__(self, tasks: Sequence[TaskInfo], backbone: str = "resnet34", in_channels: int = 3,
                 weights: str | None = None, num_experts: int = 4, num_nonzeros: int = 2,
                 kgamma: float = 1.0, entropy_reg: float = 1e-6, gate_pool: int = GATE_POOL):
        self.set_routing(num_experts, num_nonzeros, kgamma, entropy_reg)
        super().__init__(tasks, backbone=backbone, in_channels=in_channels, weights=weights,
                         num_experts=num_experts, gate_pool=gate_pool)
        self._pending: set[str] = set()


class HsiDSelectK(DSelectRouting, HsiMMoE):
    """MMoE's experts over the HSI encoder (``rsbench.models.mmoe.HsiMMoE``) with a DSelect-k
    gate per task, mixing every stage's output."""

    model_name = "dselect-k"

    def __init__(self, tasks: Sequence[TaskInfo], in_channels: int, per_pixel: bool = False,
                 num_experts: int = 4, num_nonzeros: int = 2, kgamma: float = 1.0,
                 entropy_reg: float = 1e-6, gate_pool: int = GATE_POOL, **hsi):
        self.set_routing(num_experts, num_nonzeros, kgamma, entropy_reg)
        super().__init__(tasks, in_channels, per_pixel, num_experts=num_experts,
                         gate_pool=gate_pool, **hsi)
        self._pending: set[str] = set()


@register_model("dselect-k")
def build_dselect_k(tasks: list[TaskInfo], backbone: str | None = None, in_channels: int = 3,
                    weights: str | None = None, num_experts: int = 4, num_nonzeros: int = 2,
                    kgamma: float = 1.0, entropy_reg: float = 1e-6, gate_pool: int = GATE_POOL,
                    per_pixel: bool | None = None, width: int | None = None,
                    rates: Sequence[int] | None = None) -> DSelectK | HsiDSelectK:
    """DSelect-k (Hazimeh et al. 2021): shared whole-backbone experts, k-sparse learned gates.

    ``backbone``: the benchmark's (resnet34, wrn28_4, vgg16); none (TAIGA) or ``hsi``: the HSI
    paper's encoder, whose ``width`` and Dense ASPP ``rates`` are hsi-mtl's options."""
    routing = dict(num_experts=num_experts, num_nonzeros=num_nonzeros, kgamma=kgamma,
                   entropy_reg=entropy_reg, gate_pool=gate_pool)
    if uses_hsi_encoder("dselect-k", backbone, weights=weights, width=width, rates=rates):
        return HsiDSelectK(tasks, in_channels, bool(per_pixel), **routing,
                           **hsi_settings(width, rates))
    refuse_per_pixel("dselect-k", per_pixel)
    return DSelectK(tasks, backbone=backbone, in_channels=in_channels, weights=weights,
                    **routing)


build_dselect_k.label = "DSelect-k"  # the reports' name
