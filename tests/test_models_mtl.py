"""The uncertainty row, cross-stitch mixing, adding a task for transfer (Table VI) and ImageNet weight
files, on tiny inputs."""

from __future__ import annotations

import pytest
import torch
import torchvision

from rsbench.errors import InputError, UsageError
from rsbench.models import build_model
from rsbench.models.backbones import build_backbone
from rsbench.models.base import TaskInfo
from rsbench.models.cross_stitch import CrossStitchUnit

torch.set_num_threads(1)

MSC = [TaskInfo("merced", "classification", 21), TaskInfo("aid", "classification", 30)]
NEW = TaskInfo("eurosat", "classification", 10)


def test_uncertainty_model_is_shared_specific_with_uncertainty_weighting():
    from rsbench.models import default_weighting
    from rsbench.models.shared_specific import SharedSpecific

    net = build_model("uncertainty", MSC, backbone="wrn28_4")
    assert type(net) is SharedSpecific
    assert default_weighting("uncertainty") == "uncertainty"
    assert default_weighting("mtln") is None and default_weighting("shared-specific") is None


def test_cross_stitch_unit_mixes_features():
    unit = CrossStitchUnit(3)
    alpha = unit.alpha.detach()
    assert torch.allclose(alpha.diagonal(), torch.full((3,), 0.9))
    assert torch.allclose(alpha.sum(1), torch.ones(3))
    xs = [torch.full((1, 2, 2, 2), float(v)) for v in (1.0, 10.0, 100.0)]
    out = unit(xs)
    assert out[0][0, 0, 0, 0].item() == pytest.approx(0.9 * 1 + 0.05 * 10 + 0.05 * 100)
    assert out[2][0, 0, 0, 0].item() == pytest.approx(0.05 * 1 + 0.05 * 10 + 0.9 * 100)
    # Adam moves alpha lr_scale times faster: the stored parameter is alpha / lr_scale
    assert unit.scaled_alpha.detach().max().item() == pytest.approx(0.9 / unit.lr_scale)


def test_cross_stitch_with_identity_units_equals_independent_networks():
    net = build_model("cross-stitch", MSC, backbone="wrn28_4").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        mixed = net(x, ["aid"])["aid"]
        for u in net.units:
            u.scaled_alpha.copy_(torch.eye(2) / u.lr_scale)
        alone = net(x, ["aid"])["aid"]
        backbone, head = net.networks["aid"], net.heads["aid"]
        feats = backbone(x)
        expected = head(feats.final, feats, x.shape[-2:])
    assert torch.allclose(alone, expected, atol=1e-5)
    assert not torch.allclose(mixed, expected, atol=1e-3)  # the default units do mix


def test_mtln_add_task_copies_branch_and_trains_only_new_parts():
    net = build_model("mtln", MSC, backbone="wrn28_4")
    net.add_task(NEW, init_from="merced")
    for a, b in zip(net.attention["eurosat"].parameters(), net.attention["merced"].parameters()):
        assert torch.equal(a, b) and a is not b
    for p in net.feature_parameters():
        p.requires_grad_(False)
    out = net(torch.randn(2, 3, 32, 32), ["eurosat"])["eurosat"]
    assert tuple(out.shape) == (2, 10)
    out.sum().backward()
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is None for p in net.attention["merced"].parameters())
    assert all(p.grad is not None for p in net.attention["eurosat"].parameters())
    assert net.heads["eurosat"].fc.weight.grad is not None
    assert net.parameter_breakdown()["attention_per_task"] == sum(
        p.numel() for p in net.attention["merced"].parameters())
    with pytest.raises(UsageError, match="already has a task"):
        net.add_task(NEW)


def test_mtln_add_task_on_shared_branch_only():
    net = build_model("mtln", MSC, backbone="wrn28_4").eval()
    net.add_task(NEW, attention=False)
    assert "eurosat" not in net.attention
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out = net(x, ["eurosat"])["eurosat"]
        feats = net.backbone(x)
        expected = net.heads["eurosat"].fc(feats.final.mean(dim=(2, 3)))
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("model", ["shared-specific", "uncertainty"])
def test_shared_model_add_task_new_head(model):
    net = build_model(model, MSC, backbone="wrn28_4")
    before = sum(p.numel() for p in net.parameters())
    net.add_task(NEW)
    added = sum(p.numel() for p in net.parameters()) - before
    assert added == 256 * 10 + 10
    assert tuple(net(torch.randn(2, 3, 32, 32), ["eurosat"])["eurosat"].shape) == (2, 10)
    assert {id(p) for p in net.shared_parameters()} == {id(p) for p in net.backbone.parameters()}


def _fake_imagenet_file(path, name: str) -> dict[str, float]:
    """A torchvision-layout state dict with one distinct constant per tensor (stored expanded
    from one element, so the file is tiny), plus the ImageNet classifier the loader drops."""
    ref = (torchvision.models.resnet34() if name == "resnet34"
           else torchvision.models.vgg16_bn()).state_dict()
    state, values = {}, {}
    for i, (k, v) in enumerate(ref.items()):
        value = (i % 97) / 100.0
        state[k] = torch.full((1,), value, dtype=v.dtype).reshape([1] * v.ndim).expand(v.shape)
        values[k] = value
    torch.save(state, path)
    return values


def test_fine_tune_loads_local_imagenet_file(tmp_path):
    path = tmp_path / "resnet34.pth"
    values = _fake_imagenet_file(path, "resnet34")
    assert path.stat().st_size < 200_000
    net = build_model("fine-tune", MSC, backbone="resnet34", weights=str(path))
    for task in ("merced", "aid"):
        state = net.networks[task].backbone.state_dict()
        assert not any(k.startswith("fc.") for k in state)
        for key in ("conv1.weight", "layer3.2.bn1.running_var", "layer4.1.conv2.weight"):
            assert torch.all(state[key] == values[key]).item(), key
    out = net(torch.randn(2, 3, 32, 32), ["aid"])["aid"]
    assert tuple(out.shape) == (2, 30)


def test_vgg16_weights_with_four_bands(tmp_path):
    path = tmp_path / "vgg16_bn.pth"
    values = _fake_imagenet_file(path, "vgg16")
    backbone = build_backbone("vgg16", in_channels=4, weights=str(path))
    first = backbone.features[0].weight
    assert first.shape[1] == 4 and torch.all(first == values["features.0.weight"]).item()
    assert torch.all(backbone.state_dict()["features.40.bias"] == values["features.40.bias"])


def test_fine_tune_wrn28_4_from_a_local_file(tmp_path):
    # torchvision has no WRN-28-4 ImageNet weights: mini-MSC's Fine-tune (Table III(b)) needs a
    # local file of the backbone's own state dict, and every task's network starts from it
    ref = build_backbone("wrn28_4").state_dict()
    state = {k: torch.full_like(v, (i % 89) / 100.0) for i, (k, v) in enumerate(ref.items())}
    path = tmp_path / "wrn28_4.pth"
    torch.save(state, path)
    net = build_model("fine-tune", MSC, backbone="wrn28_4", weights=str(path))
    for task in ("merced", "aid"):
        loaded = net.networks[task].backbone.state_dict()
        for key in ("conv1.weight", "groups.2.3.conv2.bias", "bn.running_var"):
            assert torch.equal(loaded[key], state[key]), key
    del state["bn.running_var"]
    torch.save(state, path)
    with pytest.raises(InputError, match="missing 'bn.running_var'.*rsbench's wrn28_4 backbone"):
        build_backbone("wrn28_4", weights=str(path))


def test_weights_errors_are_plain(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="not found"):
        build_backbone("resnet34", weights=str(tmp_path / "missing.pth"))
    bad = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, bad)
    with pytest.raises(InputError, match="not a torchvision resnet34 ImageNet state dict"):
        build_backbone("resnet34", weights=str(bad))
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(InputError, match="cannot be read"):
        build_backbone("resnet34", weights=str(junk))
    with pytest.raises(UsageError, match="no ImageNet weights for wrn28_4"):
        build_backbone("wrn28_4", weights="imagenet")
    with pytest.raises(UsageError, match="--weights"):
        build_model("fine-tune", MSC, backbone="resnet34", weights=None)

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models.ResNet34_Weights.IMAGENET1K_V1.__class__,
                        "get_state_dict", offline)
    with pytest.raises(UsageError, match="pass the local file with --weights PATH"):
        build_backbone("resnet34", weights="imagenet")
