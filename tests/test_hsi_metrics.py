"""HSI metrics against scikit-learn, physical-unit round trip, and the figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from rsbench.training.hsi_metrics import (
    HsiClassificationMeter,
    HsiRegressionMeter,
    auc_from_histograms,
    classification_scores,
    to_physical,
    to_scaled,
)


def _stream(meter, out, y, chunks=3):
    for o, t in zip(torch.chunk(out, chunks), torch.chunk(y, chunks)):
        meter.update(o, t)


def test_classification_meter_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    n, k = 600, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]  # informative but imperfect
    y_t = torch.tensor(y)
    y_t[:10] = 255  # ignore labels
    meter = HsiClassificationMeter(["a", "b", "c", "d"], spec={"ignore_index": 255})
    _stream(meter, torch.tensor(logits), y_t)
    m = meter.compute()
    keep = np.arange(n) >= 10
    yt, lg = y[keep], logits[keep]
    pred = lg.argmax(1)
    prob = torch.softmax(torch.tensor(lg), 1).numpy()
    assert m["samples"] == keep.sum()
    assert m["oa"] == pytest.approx(skm.accuracy_score(yt, pred))
    assert m["mean_class_accuracy"] == pytest.approx(skm.balanced_accuracy_score(yt, pred))
    for name in ("precision", "recall", "f1"):
        fn = getattr(skm, f"{name}_score")
        assert m[name] == pytest.approx(fn(yt, pred, average="macro", zero_division=0))
    assert m["roc_auc"] == pytest.approx(
        skm.roc_auc_score(yt, prob, multi_class="ovr", average="macro"), abs=2e-3)
    np.testing.assert_array_equal(m["confusion"], skm.confusion_matrix(yt, pred))
    np.testing.assert_allclose(m["confusion_normalised"],
                               skm.confusion_matrix(yt, pred, normalize="true"), atol=1e-6)


def test_per_pixel_outputs_and_binary_auc() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (5, 7, 7))
    logits = rng.normal(size=(5, 2, 7, 7)) + 2.0 * np.moveaxis(np.eye(2)[y], -1, 1)
    meter = HsiClassificationMeter(["mineral", "organic"])
    meter.update(torch.tensor(logits), torch.tensor(y))
    m = meter.compute()
    yt = y.reshape(-1)
    lg = np.moveaxis(logits, 1, -1).reshape(-1, 2)
    p1 = torch.softmax(torch.tensor(lg), 1).numpy()[:, 1]
    assert m["oa"] == pytest.approx(skm.accuracy_score(yt, lg.argmax(1)))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(yt, p1), abs=2e-3)


def test_precision_with_a_never_predicted_class_follows_sklearn() -> None:
    cm = np.array([[5, 0, 1], [2, 0, 0], [0, 0, 4]])  # class 1 never predicted
    yt = np.repeat([0, 0, 1, 2, 2], [5, 1, 2, 0, 4])
    yp = np.repeat([0, 2, 0, 1, 2], [5, 1, 2, 0, 4])
    s = classification_scores(cm)
    assert s["precision"] == pytest.approx(skm.precision_score(yt, yp, average="macro",
                                                               zero_division=0))
    assert s["f1"] == pytest.approx(skm.f1_score(yt, yp, average="macro", zero_division=0))


def test_auc_from_histograms_exact_without_ties() -> None:
    pos = np.array([0, 0, 1, 2])  # positives in bins 2, 3, 3
    neg = np.array([1, 1, 1, 0])  # negatives in bins 0, 1, 2
    # pairs: pos@2 vs negs: beats 2, ties 1 -> 2.5; each pos@3 beats 3 -> 6; total 8.5 / 9
    assert auc_from_histograms(pos, neg) == pytest.approx(8.5 / 9)
    assert np.isnan(auc_from_histograms(pos, np.zeros(4)))


def test_regression_meter_matches_sklearn_in_both_units() -> None:
    rng = np.random.default_rng(2)
    y = rng.uniform(0, 1, 500)
    p = np.clip(y + rng.normal(0, 0.1, 500), 0, 1)
    y_t = torch.tensor(y)
    y_t[::50] = float("nan")  # missing targets skipped
    spec = {"min": 2.0, "max": 42.0, "unit": "m2/ha"}
    meter = HsiRegressionMeter(spec=spec)
    _stream(meter, torch.tensor(p, dtype=torch.float32), y_t.float())
    m = meter.compute()
    keep = np.isfinite(y_t.numpy())
    yt, pt = y[keep], p[keep].astype(np.float32).astype(float)
    assert m["n"] == keep.sum()
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(yt, pt)), rel=1e-5)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(yt, pt), rel=1e-5)
    assert m["r2"] == pytest.approx(skm.r2_score(yt, pt), rel=1e-5)
    assert m["pearson"] == pytest.approx(np.corrcoef(yt, pt)[0, 1], rel=1e-5)
    yp, pp = to_physical(yt, spec), to_physical(pt, spec)
    phys = m["physical"]
    assert phys["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(yp, pp)), rel=1e-5)
    assert phys["mae"] == pytest.approx(skm.mean_absolute_error(yp, pp), rel=1e-5)
    assert phys["r2"] == pytest.approx(skm.r2_score(yp, pp), rel=1e-5)
    assert phys["unit"] == "m2/ha"


def test_physical_unit_round_trip() -> None:
    spec = {"min": -3.5, "max": 120.0}
    values = np.array([-3.5, 0.0, 17.25, 120.0])
    np.testing.assert_allclose(to_physical(to_scaled(values, spec), spec), values)
    np.testing.assert_allclose(to_scaled(values, spec)[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(to_physical(0.5, {}), 0.5)  # no statistics: identity


def test_meters_write_the_papers_figures(tmp_path) -> None:
    rng = np.random.default_rng(3)
    cls = HsiClassificationMeter(["pine", "spruce", "broadleaf"])
    cls.update(torch.tensor(rng.normal(size=(50, 3))), torch.tensor(rng.integers(0, 3, 50)))
    cls.plot(tmp_path / "confusion_species.png", "test")
    reg = HsiRegressionMeter(spec={"min": 0, "max": 30, "unit": "m"})
    y = rng.uniform(0, 1, 300)
    reg.update(torch.tensor(y + rng.normal(0, 0.05, 300)), torch.tensor(y))
    reg.plot(tmp_path / "confusion_mean_height.png", "test")
    for name in ("confusion_species.png", "scatter_mean_height.png",
                 "error_hist_mean_height.png"):
        assert (tmp_path / name).stat().st_size > 5000, name
