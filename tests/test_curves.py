"""curves.png: one panel per quantity (task losses, test metrics, task weights, lr), a PNG."""

from __future__ import annotations

from PIL import Image

from rsbench.plots.curves import _panels, write_curves

HISTORY = [
    {"epoch": 1, "loss": 3.0, "loss_a": 2.0, "loss_b": 1.0, "lr": 1e-3, "weight_a": 1.0,
     "weight_b": 1.0},
    {"epoch": 2, "loss": 2.0, "loss_a": 1.5, "loss_b": 0.5, "lr": 1e-3, "weight_a": 0.8,
     "weight_b": 1.2, "test_a_oa": 0.5, "test_b_rmse": 0.3},
    {"epoch": 3, "loss": 1.5, "loss_a": 1.0, "loss_b": 0.5, "lr": 5e-4, "weight_a": 0.7,
     "weight_b": 1.3},
]
FINAL = {"a": {"oa": 0.75, "samples": 10}, "b": {"rmse": 0.25, "r2": 0.5}}


def test_panels_hold_the_history_series() -> None:
    panels = dict(_panels(HISTORY, ["a", "b"], FINAL))
    assert list(panels) == ["training loss", "test oa", "test rmse", "task weight",
                            "learning rate"]
    assert panels["training loss"]["a"][:2] == ([1, 2, 3], [2.0, 1.5, 1.0])
    assert panels["test oa"]["a"][:2] == ([2], [0.5])
    assert panels["test oa"]["a"][3] == panels["training loss"]["a"][3]  # one colour per task
    assert panels["test oa"]["a (final)"][:2] == ([3], [0.75])  # the final evaluation
    assert panels["task weight"]["b"][:2] == ([1, 2, 3], [1.0, 1.2, 1.3])
    # an equal-weighting run without weight columns has no weight panel
    plain = [{k: v for k, v in r.items() if not k.startswith("weight_")} for r in HISTORY]
    assert "task weight" not in dict(_panels(plain, ["a", "b"], {}))


def test_write_curves_makes_a_png(tmp_path) -> None:
    path = write_curves(HISTORY, ["a", "b"], tmp_path / "curves.png", FINAL, title="t")
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] == 700 and im.size[1] > 900  # five panels stacked
    assert not list(tmp_path.glob("*.tmp.png"))
