"""Metrics against hand-computed confusion matrices (OA, per-class accuracy, PA, mIoU over C+1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rsbench.training.metrics import (
    ClassificationMeter,
    RegressionMeter,
    SegmentationMeter,
    mean_iou,
    overall_accuracy,
    per_class_iou,
    pixel_accuracy,
)


def _logits(pred: list[int] | np.ndarray, n: int) -> torch.Tensor:
    """One-hot 'logits' that make argmax return ``pred`` (classes on dim 1)."""
    p = torch.as_tensor(np.asarray(pred))
    out = torch.nn.functional.one_hot(p, n).float()
    return out.movedim(-1, 1) if out.ndim > 2 else out


def test_classification_meter_matches_hand_confusion():
    target = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = [0, 1, 1, 1, 2, 0]
    m = ClassificationMeter(["a", "b", "c"])
    m.update(_logits(pred[:3], 3), target[:3])  # two batches accumulate
    m.update(_logits(pred[3:], 3), target[3:])
    r = m.compute()
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["oa"] == pytest.approx(4 / 6)
    assert r["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.5}
    assert r["mean_class_accuracy"] == pytest.approx(2 / 3)
    assert r["samples"] == 6


def test_segmentation_meter_pa_and_miou_over_c_plus_1_classes():
    # hand-made confusion (rows truth, cols prediction), class 0 = unknown:
    cm = np.array([[3, 1, 0], [0, 4, 2], [1, 0, 5]])
    truth, pred = [], []
    for i in range(3):
        for j in range(3):
            truth += [i] * cm[i, j]
            pred += [j] * cm[i, j]
    t = torch.tensor(truth).view(1, 4, 4)  # 16 pixels as one 4×4 image
    m = SegmentationMeter(["unknown", "x", "y"])
    m.update(_logits(torch.tensor(pred).view(1, 4, 4), 3), t)
    r = m.compute()
    assert np.array_equal(np.array(r["confusion"]), cm)
    # PA = (3 + 4 + 5) / 16; IoU_i = p_ii / (row_i + col_i - p_ii), unknown class included
    assert r["pa"] == pytest.approx(12 / 16)
    ious = [3 / (4 + 4 - 3), 4 / (6 + 5 - 4), 5 / (6 + 7 - 5)]
    assert r["miou"] == pytest.approx(sum(ious) / 3)
    assert list(r["per_class_iou"].values()) == pytest.approx(ious)
    assert pixel_accuracy(cm) == overall_accuracy(cm) == pytest.approx(0.75)


def test_miou_per_image_and_dataset_level_differ_on_hand_made_masks():
    # image 1 perfect (classes 0 and 1: IoU 1, 1 -> 1.0); image 2 all class 2, one pixel
    # predicted 1 (IoU_2 = 3/4, IoU_1 = 0/1, classes present in label or prediction -> 0.375)
    t1, p1 = [[0, 0], [1, 1]], [[0, 0], [1, 1]]
    t2, p2 = [[2, 2], [2, 2]], [[2, 2], [2, 1]]
    # a third image whose pixels are all outside the class range is not scored at all
    t3, p3 = [[255, 255], [255, 255]], [[0, 1], [2, 0]]
    m = SegmentationMeter(["unknown", "x", "y"])
    m.update(_logits(torch.tensor([p1]), 3), torch.tensor([t1]))  # two batches accumulate
    m.update(_logits(torch.tensor([p2, p3]), 3), torch.tensor([t2, t3]))
    r = m.compute()
    assert r["miou_per_image"] == pytest.approx((1.0 + 0.375) / 2)
    # pooled confusion: IoU_0 = 2/2, IoU_1 = 2/(2 + 3 - 2), IoU_2 = 3/(4 + 3 - 3)
    assert r["miou"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert r["images"] == 2 and r["pixels"] == 8
    assert r["pa"] == pytest.approx(7 / 8)
    assert r["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 1, 3]]


def test_miou_skips_classes_absent_from_truth_and_prediction():
    cm = np.array([[2, 0, 0], [0, 0, 0], [1, 0, 1]])
    iou = per_class_iou(cm)
    assert iou[0] == pytest.approx(2 / 3) and math.isnan(iou[1]) and iou[2] == pytest.approx(0.5)
    assert mean_iou(cm) == pytest.approx((2 / 3 + 0.5) / 2)


def test_labels_outside_the_class_range_are_not_counted():
    m = ClassificationMeter(["a", "b"])
    m.update(_logits([0, 1, 1], 2), torch.tensor([0, 1, 255]))
    assert m.compute()["samples"] == 2


def test_regression_meter_rmse_mae_r2():
    y = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    out = torch.tensor([[1.5], [2.0], [2.0], [4.0]])
    m = RegressionMeter(["h"])
    m.update(out, y)
    r = m.compute()
    assert r["rmse"] == pytest.approx(math.sqrt((0.25 + 1.0) / 4))
    assert r["mae"] == pytest.approx(1.5 / 4)
    assert r["r2"] == pytest.approx(1 - 1.25 / 5.0)


def test_confusion_png_is_written(tmp_path):
    m = ClassificationMeter(["a", "b", "c"])
    m.update(_logits([0, 1, 2], 3), torch.tensor([0, 2, 2]))
    m.plot(tmp_path / "cm.png", "test")
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
