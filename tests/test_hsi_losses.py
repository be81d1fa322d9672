"""HSI losses against hand-computed values (task weightings: test_weighting.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rsbench.errors import UsageError
from rsbench.training.hsi_losses import (
    focal_loss,
    hsi_classification,
    hsi_regression,
    inverse_median_frequency,
    regression_loss,
)

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


def test_centre_outputs_against_pixel_targets_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="taiga-centre"):
        focal_loss(torch.randn(2, 3), torch.zeros(2, 5, 5, dtype=torch.long))
    with pytest.raises(UsageError, match="taiga-centre"):
        regression_loss(torch.randn(2), torch.zeros(2, 5, 5))
