"""``gradvac``: Gradient Vaccine (Wang et al., ICLR 2021, Algorithm 1), as LibMTL implements it.

For each task i and, in a random order, every other task j: with ρ_ij the cosine of (the
adjusted) g_i and g_j and ρ̂_ij an exponential moving average of it, when ρ_ij < ρ̂_ij the
gradient is moved towards g_j so that the cosine reaches the target:
``g_i ← g_i + g_j ||g_i|| (ρ̂ √(1−ρ²) − ρ √(1−ρ̂²)) / (||g_j|| √(1−ρ̂²))``; then
``ρ̂_ij ← (1−β) ρ̂_ij + β ρ_ij``. The update is the sum of the adjusted gradients.

Choices the paper leaves open, taken from LibMTL: β = 0.5 (``GradVac_beta``), ρ̂ starting at
0, one group for the whole model (``GradVac_group_type=0``; the per-layer groups are not
offered), the 1e-8 guards in the cosine and the step, and a fresh random order per task i.
Every adjustment adds a multiple of some g_j, so the update is Σ_t c_t g_t and the c are found
on the Gram matrix (divided by the AMP loss scale squared, so the guards act on unscaled
gradients), which also gives the shared-representation mode (``rep_grad``; LibMTL has none).
The moving averages (plain tensor buffer) and the order generator's state are checkpointed.
"""

from __future__ import annotations

import torch

from rsbench.training.weighting.base import GradientWeighting, gram, register_weighting


@register_weighting("gradvac")
class GradVac(GradientWeighting):
    """Cosine-target gradient adjustment. DDP: each task's shared-parameter gradient is averaged
    over processes before the adjustment (the order generator is seeded alike everywhere, so the
    moving averages and the update are identical on every process); task-specific gradients by
    DDP's reducer."""

    def __init__(self, task_names, task_types, beta: float = 0.5, rep_grad: bool = False):
        super().__init__(task_names, task_types, rep_grad)
        self.beta = float(beta)
        t = len(self.task_names)
        self.register_buffer("rho", torch.zeros(t, t, dtype=torch.float64))
        self.generator = torch.Generator().manual_seed(0)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def coefficients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        G = gram(grads).cpu() / self._loss_scale ** 2
        n = G.shape[0]
        ids = self._present.tolist() if n != len(self.task_names) else list(range(n))
        rho_hat = self.rho.detach().cpu().clone()
        coef = torch.eye(n, dtype=G.dtype)  # row i: the adjusted g_i = coef[i] @ g
        for i in range(n):
            others = [j for j in range(n) if j != i]
            for k in torch.randperm(len(others), generator=self.generator).tolist():
                j = others[k]
                norm_i = (coef[i] @ G @ coef[i]).clamp_min(0).sqrt()
                norm_j = G[j, j].clamp_min(0).sqrt()
                rho = (coef[i] @ G[:, j]) / (norm_i * norm_j + 1e-8)
                target = rho_hat[ids[i], ids[j]]
                if rho < target:
                    w = norm_i * (target * (1 - rho ** 2).clamp_min(0).sqrt()
                                  - rho * (1 - target ** 2).clamp_min(0).sqrt()) \
                        / (norm_j * (1 - target ** 2).clamp_min(0).sqrt() + 1e-8)
                    coef[i, j] += w
                rho_hat[ids[i], ids[j]] = (1 - self.beta) * target + self.beta * rho
        if torch.isfinite(G).all():  # an AMP overflow step (skipped) leaves the averages
            self.rho.copy_(rho_hat.to(self.rho))
        c = coef.sum(0)
        self._record(c)
        return c

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        if state and state.get("generator") is not None:
            self.generator.set_state(state["generator"])
