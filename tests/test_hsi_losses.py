"""HSI losses and task weighting against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rsbench.errors import UsageError
from rsbench.models import build_model
from rsbench.models.base import TaskInfo
from rsbench.training.hsi_losses import (
    focal_loss,
    hsi_classification,
    hsi_regression,
    inverse_median_frequency,
    regression_loss,
)
from rsbench.training.weighting import GradNorm, UncertaintyWeighting, attach

torch.set_num_threads(1)


def test_inverse_median_frequency_by_hand() -> None:
    # frequencies 0.1, 0.2, 0.7 -> median 0.2 -> weights 2, 1, 2/7; absent class -> 0
    w = inverse_median_frequency([10, 20, 70, 0])
    np.testing.assert_allclose(w, [2.0, 1.0, 2 / 7, 0.0])
    with pytest.raises(UsageError):
        inverse_median_frequency([0, 0])


def test_focal_at_gamma_zero_is_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(40, 4)
    y = torch.randint(0, 4, (40,))
    w = torch.tensor([0.5, 2.0, 1.0, 3.0])
    torch.testing.assert_close(focal_loss(logits, y, gamma=0.0), F.cross_entropy(logits, y))
    torch.testing.assert_close(focal_loss(logits, y, gamma=0.0, weight=w),
                               F.cross_entropy(logits, y, weight=w))


def test_focal_loss_hand_value() -> None:
    # two samples, p_y = 0.8 and 0.5 (logits chosen so), gamma 2, alpha 0.25, weights 1 and 3
    logits = torch.tensor([[math.log(0.8), math.log(0.2)], [0.0, 0.0]])
    y = torch.tensor([0, 1])
    w = torch.tensor([1.0, 3.0])
    l0 = -0.25 * (0.2 ** 2) * math.log(0.8)
    l1 = -0.25 * (0.5 ** 2) * math.log(0.5)
    expected = (1 * l0 + 3 * l1) / (1 + 3)
    got = focal_loss(logits, y, gamma=2.0, alpha=0.25, weight=w)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_class_weights_change_the_loss_as_expected() -> None:
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    y = torch.tensor([0, 1])  # first right, second wrong
    plain = focal_loss(logits, y, gamma=0.0)
    up = focal_loss(logits, y, gamma=0.0, weight=[1.0, 10.0])  # the mistake costs more
    assert up > plain


def test_ignore_labels_are_excluded() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, -1, 255, 1])
    keep = torch.tensor([0, 1, 2, 5])
    ref = F.cross_entropy(logits[keep], y[keep])
    torch.testing.assert_close(focal_loss(logits, y, gamma=0.0, ignore_index=255), ref)
    # ignore_index inside the class range is excluded too
    y2 = torch.tensor([0, 1, 2, 2, 2, 1])
    ref2 = F.cross_entropy(logits, y2, ignore_index=2)
    torch.testing.assert_close(focal_loss(logits, y2, gamma=0.0, ignore_index=2), ref2)
    # every label ignored: zero loss, still differentiable
    out = focal_loss(logits.requires_grad_(), torch.full((6,), -1), gamma=2.0)
    assert out.item() == 0.0
    out.backward()


def test_per_pixel_outputs_flatten_like_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 5)
    y = torch.randint(0, 3, (2, 5, 5))
    y[0, 0, 0] = -1
    torch.testing.assert_close(focal_loss(logits, y, gamma=0.0, ignore_index=-1),
                               F.cross_entropy(logits, y, ignore_index=-1))


def test_factories_read_manifest_class_weights() -> None:
    spec = {"class_weights": [1.0, 4.0], "ignore_index": -1}
    logits = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 1, -1])
    cs = hsi_classification(loss="ce", class_weights=True, spec=spec)(logits, y)
    ref = F.cross_entropy(logits[:2], y[:2], weight=torch.tensor([1.0, 4.0]))
    torch.testing.assert_close(cs, ref)
    with pytest.raises(UsageError, match="class weights"):
        hsi_classification(loss="focal", class_weights=True, spec={})
    with pytest.raises(UsageError):
        hsi_classification(loss="hinge")


def test_regression_losses_skip_missing_targets() -> None:
    out = torch.tensor([0.5, 0.2, 0.9, 0.0])
    y = torch.tensor([0.7, float("nan"), 0.6, -1.0])
    assert regression_loss(out, y, "mae").item() == pytest.approx((0.2 + 0.3 + 1.0) / 3)
    assert regression_loss(out, y, "mse", ignore_value=-1.0).item() == pytest.approx(
        (0.04 + 0.09) / 2)
    assert hsi_regression("mae")(out, y).item() == pytest.approx(0.5)


def test_uncertainty_weighting_formula() -> None:
    u = UncertaintyWeighting({"c": "classification", "r": "regression"})
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([0.5, -1.0]))
    lc, lr = torch.tensor(2.0), torch.tensor(3.0)
    expected = (math.exp(-0.5) * 2.0 + 0.25) + (0.5 * math.exp(1.0) * 3.0 - 0.5)
    assert u({"c": lc, "r": lr}).item() == pytest.approx(expected, rel=1e-6)
    # the optimum of e^-s L + s/2 is s = log(2L): gradient zero there
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([math.log(2 * 2.0), math.log(3.0)]))
    u({"c": lc, "r": lr}).backward()
    torch.testing.assert_close(u.log_vars.grad, torch.zeros(2), atol=1e-6, rtol=0)


def _toy():
    """Shared linear layer, two heads; task 'big' has 20x larger targets -> its gradients dominate."""
    torch.manual_seed(0)
    shared = torch.nn.Linear(4, 8)
    heads = torch.nn.ModuleDict({"big": torch.nn.Linear(8, 1), "small": torch.nn.Linear(8, 1)})
    x = torch.randn(64, 4)
    targets = {"big": 20 * x.sum(1), "small": 0.05 * x[:, 0]}
    return shared, heads, x, targets


def test_gradnorm_lowers_the_weight_of_the_dominant_task() -> None:
    shared, heads, x, targets = _toy()
    gn = GradNorm(["big", "small"], list(shared.parameters()), alpha=1.5, lr=0.05)
    opt = torch.optim.SGD(list(shared.parameters()) + list(heads.parameters()), lr=1e-3)
    _gradnorm_steps(shared, heads, gn, opt, x, targets, 20)
    w = gn.weights()
    assert w["big"] < 1.0 < w["small"]
    assert w["big"] + w["small"] == pytest.approx(2.0)
    # GradNorm's weights never leak into the network's parameters
    assert not any(p is gn._param for p in gn.parameters())


def _gradnorm_steps(shared, heads, gn, opt, x, targets, steps: int) -> None:
    for _ in range(steps):
        z = torch.relu(shared(x))
        losses = {n: F.mse_loss(h(z).squeeze(1), targets[n]) for n, h in heads.items()}
        total = gn(losses)
        opt.zero_grad()
        total.backward()
        opt.step()


def test_gradnorm_resumes_exactly_from_a_checkpoint(tmp_path) -> None:
    def fresh():
        torch.manual_seed(0)
        shared, heads, x, targets = _toy()
        gn = GradNorm(["big", "small"], list(shared.parameters()), alpha=1.5, lr=0.05)
        net = torch.nn.ModuleDict({"shared": shared, "heads": heads, "gn": gn})
        opt = torch.optim.Adam(list(shared.parameters()) + list(heads.parameters()), lr=1e-2)
        return net, opt, x, targets

    a, opt_a, x, targets = fresh()
    _gradnorm_steps(a["shared"], a["heads"], a["gn"], opt_a, x, targets, 8)
    b, opt_b, _, _ = fresh()
    _gradnorm_steps(b["shared"], b["heads"], b["gn"], opt_b, x, targets, 4)
    torch.save({"model": b.state_dict(), "opt": opt_b.state_dict()}, tmp_path / "ck.pt")
    c, opt_c, _, _ = fresh()
    state = torch.load(tmp_path / "ck.pt", weights_only=False)
    c.load_state_dict(state["model"])
    opt_c.load_state_dict(state["opt"])
    _gradnorm_steps(c["shared"], c["heads"], c["gn"], opt_c, x, targets, 4)
    assert torch.equal(a["gn"].w, c["gn"].w)
    for (name, pa), pc in zip(a.state_dict().items(), c.state_dict().values()):
        if torch.is_tensor(pa):
            assert torch.equal(pa, pc), name


def test_attach_routes_combine_losses_and_checkpoints_the_weighting() -> None:
    tasks = [TaskInfo("c", "classification", 3), TaskInfo("r", "regression", 1)]
    model = build_model("hsi-mtl", tasks, in_channels=4, width=4, weighting="uncertainty")
    assert isinstance(model.loss_weighting, UncertaintyWeighting)
    assert any(k.startswith("loss_weighting.") for k in model.state_dict())
    assert not any(k.startswith("combine_losses.") for k in model.state_dict())
    total = model.combine_losses({"c": torch.tensor(1.0), "r": torch.tensor(1.0)})
    assert total.item() == pytest.approx(1.0 + 0.5)  # s = 0: 1·L_c + ½·L_r
    gn = build_model("hsi-mtl", tasks, in_channels=4, width=4, weighting="gradnorm")
    x = torch.randn(2, 4, 9, 9)
    out = gn(x, ["c", "r"])
    losses = {"c": F.cross_entropy(out["c"], torch.tensor([0, 1])),
              "r": F.mse_loss(out["r"], torch.zeros(2))}
    gn.combine_losses(losses).backward()
    assert gn.skip_layer[0].weight.grad is not None
    with pytest.raises(UsageError):
        attach(build_model("hsi-mtl", tasks, in_channels=4, width=4), "magic")


def test_centre_outputs_against_pixel_targets_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="taiga-centre"):
        focal_loss(torch.randn(2, 3), torch.zeros(2, 5, 5, dtype=torch.long))
    with pytest.raises(UsageError, match="taiga-centre"):
        regression_loss(torch.randn(2), torch.zeros(2, 5, 5))
