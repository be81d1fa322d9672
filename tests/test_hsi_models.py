"""HSI multitask models: forward + backward on tiny cubes, output shapes per task."""

from __future__ import annotations

import pytest
import torch

from rsbench.errors import UsageError
from rsbench.models import build_model
from rsbench.models.base import TaskInfo
from rsbench.models.hsi_blocks import DenseASPP, ResidualAttention, centre_features

torch.set_num_threads(1)

TASKS = [TaskInfo("fertility_class", "classification", 4),
         TaskInfo("soil_class", "classification", 2),
         TaskInfo("main_tree_species_class", "classification", 3)] + [
    TaskInfo(f"var{i}", "regression", 1) for i in range(10)]
NAMES = [t.name for t in TASKS]
BANDS = 8

SMALL = {
    "hsi-mtl": {"width": 8}, "hsi-mtl-baseline": {"width": 8}, "hsi-mtl-r": {"width": 8},
    "hsi-mtl-rd": {"width": 8}, "hsi-mtl-rda": {"width": 8}, "hsi-mtl-dac": {"width": 8},
    "hsi-single-task": {"width": 4}, "unet": {"width": 4, "depth": 3},
    "segnet": {"width": 4, "stages": 3}, "res-unet": {"width": 4, "depth": 3},
    "deeplabv3plus": {"backbone": "resnet18"}, "mottus-3dcnn": {"planes": 4},
    "pham-cnn": {"planes": 4},
}
PIXEL_MODELS = [m for m in SMALL if m not in ("mottus-3dcnn", "pham-cnn")]


def expected_shape(task: TaskInfo, batch: int, size: int, per_pixel: bool) -> tuple:
    lead = (batch,) if task.num_outputs == 1 and task.type == "regression" else \
        (batch, task.num_outputs)
    return lead + ((size, size) if per_pixel else ())


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("size", [15, 17])
def test_forward_backward_centre(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, TASKS, in_channels=BANDS, **SMALL[name])
    x = torch.randn(3, BANDS, size, size)
    out = model(x, NAMES)
    assert list(out) == NAMES
    for t in TASKS:
        assert tuple(out[t.name].shape) == expected_shape(t, 3, size, False), t.name
        assert torch.isfinite(out[t.name]).all()
    loss = sum(o.float().pow(2).mean() for o in out.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > 0.8 * len(grads)


@pytest.mark.parametrize("name", PIXEL_MODELS)
def test_per_pixel_shapes_and_subset_of_tasks(name: str) -> None:
    model = build_model(name, TASKS, in_channels=BANDS, per_pixel=True, **SMALL[name])
    out = model(torch.randn(2, BANDS, 15, 15), ["soil_class", "var3"])
    assert set(out) == {"soil_class", "var3"}
    assert out["soil_class"].shape == (2, 2, 15, 15)
    assert out["var3"].shape == (2, 15, 15)


def test_centre_prediction_equals_centre_of_per_pixel_map() -> None:
    torch.manual_seed(1)
    model = build_model("hsi-mtl", TASKS, in_channels=BANDS, width=8, per_pixel=True).eval()
    x = torch.randn(2, BANDS, 17, 17)
    maps = model(x, NAMES)
    model.heads.per_pixel = False
    centre = model(x, NAMES)
    for name in NAMES:
        torch.testing.assert_close(centre[name], maps[name][..., 8, 8])


def test_centre_features_match_bilinear_upsampling() -> None:
    feat = torch.randn(2, 5, 4, 4)
    up = torch.nn.functional.interpolate(feat, size=(15, 15), mode="bilinear",
                                         align_corners=False)
    torch.testing.assert_close(centre_features(feat, (15, 15)), up[:, :, 7, 7])


def test_hsi_mtl_structure_follows_the_paper() -> None:
    model = build_model("hsi-mtl", TASKS, in_channels=BANDS, width=8)
    # two decoder paths (classification, regression), one head per variable
    assert set(model.decoders) == {"classification", "regression"}
    assert len(model.heads.heads) == 13
    # skip layer doubles the channels after the ASPP (4w -> 8w)
    assert model.skip_layer[0].in_channels == 32 and model.skip_layer[0].out_channels == 64
    # projection shortcuts where the channel count changes
    assert isinstance(model.stage1.shortcut[0], torch.nn.Conv2d)
    assert model.last_shared_layer() is model.skip_layer[0]
    ablated = build_model("hsi-mtl-baseline", TASKS, in_channels=BANDS, width=8)
    assert ablated.stage1.shortcut is None
    assert sum(p.numel() for p in ablated.parameters()) < sum(p.numel()
                                                               for p in model.parameters())


def test_dense_aspp_gated_sum_and_dense_inputs() -> None:
    torch.manual_seed(0)
    aspp = DenseASPP(6, rates=(1, 2, 3), batch_norm=False).eval()
    # branch i sees the input and all earlier outputs
    assert [b[0].in_channels for b in aspp.branches] == [6, 12, 18]
    assert [b[0].dilation for b in aspp.branches] == [(1, 1), (2, 2), (3, 3)]
    f = torch.randn(1, 6, 9, 9)
    with torch.no_grad():
        aspp.gate_logits.fill_(-1e4)  # gates closed: output is the input
        torch.testing.assert_close(aspp(f), f)
        aspp.gate_logits.copy_(torch.tensor([0.0, -1e4, -1e4]))  # only branch 1, half weight
        torch.testing.assert_close(aspp(f), f + 0.5 * aspp.branches[0](f))


def test_residual_attention_is_residual_and_bounded() -> None:
    torch.manual_seed(0)
    att = ResidualAttention(16, reduction=4)
    f = torch.rand(2, 16, 5, 5)
    out = att(f)
    # F + F·Mc·Ms with 0 < Mc, Ms < 1 and F >= 0: F <= out <= 2F
    assert (out >= f - 1e-6).all() and (out <= 2 * f + 1e-6).all()


def test_single_task_has_one_network_per_variable() -> None:
    multi = build_model("hsi-mtl", TASKS, in_channels=BANDS, width=4)
    single = build_model("hsi-single-task", TASKS, in_channels=BANDS, width=4,
                         split="variable")
    assert len(single.nets) == 13
    n_multi = sum(p.numel() for p in multi.parameters())
    assert single.parameter_breakdown()["total"] > 5 * n_multi


def test_single_task_default_is_one_network_per_task_type() -> None:
    single = build_model("hsi-single-task", TASKS, in_channels=BANDS, width=4)
    assert sorted(single.nets) == ["classification", "regression"]
    out = single(torch.randn(2, BANDS, 15, 15), ["var3", "soil_class"])
    assert list(out) == ["var3", "soil_class"] and out["soil_class"].shape == (2, 2)
    with pytest.raises(UsageError, match="split"):
        build_model("hsi-single-task", TASKS, in_channels=BANDS, width=4, split="task")


def test_wrong_band_count_is_a_clear_error() -> None:
    model = build_model("hsi-mtl", TASKS, in_channels=BANDS, width=4)
    with pytest.raises(UsageError, match="in_channels"):
        model(torch.randn(1, BANDS + 1, 15, 15), NAMES)
    with pytest.raises(UsageError, match="no task"):
        model(torch.randn(1, BANDS, 15, 15), ["nope"])


@pytest.mark.parametrize("name, options, bad", [
    ("hsi-mtl", {"widht": 8}, "widht"),                       # a typo
    ("hsi-single-task", {"width": 4, "depth": 3}, "depth"),   # passed on to hsi-mtl
    ("mottus-3dcnn", {"width": 8}, "width"),                  # another model's option
    ("mtln", {"weighting": "uncertainty"}, "weighting"),      # a scene model on taiga
])
def test_unknown_model_options_are_a_one_line_error(name: str, options: dict, bad: str) -> None:
    with pytest.raises(UsageError, match=f"takes no option '{bad}'"):
        build_model(name, TASKS, in_channels=BANDS, **options)


def _reference(parts: list) -> torch.nn.Module:
    """A module holding ``parts`` ((name, constructor) pairs), created in that order."""
    m = torch.nn.Module()
    for name, make in parts:
        setattr(m, name, make())
    return m


@pytest.mark.parametrize("bands, patch, flatten", [(8, 9, True), (110, 45, True), (20, 7, False)])
def test_patch_cnns_draw_their_seeded_weights_in_the_published_layer_order(
        bands: int, patch: int, flatten: bool) -> None:
    """A seeded mottus-3dcnn / pham-cnn equals plain torch layers created in this order: the
    shared FC layer, the task MLPs (in task order), then the trunk (conv by conv), with
    Mõttus's N(0, 0.01) initialisation applied in that order. The order decides which random
    draws initialise which layer, so a refactor that moves one layer's creation changes every
    layer after it (the constructors' shared preamble, FCTaskModel, keeps it)."""
    from torch import nn

    from rsbench.models.mottus_3dcnn import (
        TaskMLP,
        mottus_side,
        spectral_depth,
        spectral_kernels,
    )
    from rsbench.models.pham_cnn import pham_side

    tasks = [TaskInfo("a", "classification", 3), TaskInfo("b", "regression", 1),
             TaskInfo("c", "classification", 5)]
    p = 3

    def head(shared: int, cls: int, reg: int):
        return lambda: nn.ModuleDict({t.name: TaskMLP(shared, reg if t.type == "regression"
                                                      else cls, t.num_outputs) for t in tasks})

    k = spectral_kernels(bands, (32, 32, 32), 110)
    side = mottus_side(patch) if flatten else 1
    mottus = [("fc_shared", lambda: nn.Linear(p * spectral_depth(bands, k) * side ** 2, 1024)),
              ("task_layers", head(1024, 200, 200)),
              ("conv1", lambda: nn.Conv3d(1, p, (k[0], 4, 4))),
              ("conv2", lambda: nn.Conv3d(p, p, (k[1], 5, 5))),
              ("conv3", lambda: nn.Conv3d(p, p, (k[2], 4, 4)))]
    kp = spectral_kernels(bands, (54, 32, 32), 118)
    side_p = pham_side(patch) if flatten else 1
    pham = [("fc_shared", lambda: nn.Linear(p * spectral_depth(bands, kp) * side_p ** 2, 512)),
            ("task_layers", head(512, 300, 200)),
            ("conv1", lambda: nn.Conv3d(1, 4 * p, (kp[0], 4, 4))),
            ("bn1", lambda: nn.BatchNorm3d(4 * p)),
            ("chain", lambda: nn.ModuleList([nn.Conv3d(4 * p, 4 * p, (j, 3, 3),
                                                       padding=(j // 2, 1, 1))
                                             for j in (1, 3, 5, 11)])),
            ("bn_chain", lambda: nn.BatchNorm3d(4 * p)),
            ("conv2", lambda: nn.Conv3d(4 * p, 2 * p, (kp[1], 3, 3))),
            ("bn2", lambda: nn.BatchNorm3d(2 * p)),
            ("conv3", lambda: nn.Conv3d(2 * p, p, (kp[2], 3, 3))),
            ("bn3", lambda: nn.BatchNorm3d(p))]
    for name, parts in (("mottus-3dcnn", mottus), ("pham-cnn", pham)):
        torch.manual_seed(0)
        expected = _reference(parts)
        if name == "mottus-3dcnn":
            for m in expected.modules():
                if isinstance(m, (nn.Conv3d, nn.Linear)):
                    nn.init.normal_(m.weight, std=0.01)
                    nn.init.zeros_(m.bias)
        torch.manual_seed(0)
        model = build_model(name, tasks, in_channels=bands, planes=p, patch=patch,
                            flatten=flatten)
        got, want = model.state_dict(), expected.state_dict()
        assert list(got) == list(want), name
        for key in want:
            assert torch.equal(got[key], want[key]), (name, key)
