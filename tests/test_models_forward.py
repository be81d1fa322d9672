"""Every MTLN-paper model: forward + backward on tiny inputs for MSC-, mini-MSC- and PSC-like tasks,
output shapes, and that a task's images only reach the shared branch and that task's own branch."""

from __future__ import annotations

import pytest
import torch

from rsbench.errors import UsageError
from rsbench.models import available_models, build_model
from rsbench.models.base import TaskInfo
from rsbench.models.paper_params import SCENE_MODELS

torch.set_num_threads(1)

MSC = [TaskInfo("merced", "classification", 21), TaskInfo("aid", "classification", 30),
       TaskInfo("nwpu", "classification", 45)]
PSC = [TaskInfo("scene", "classification", 5), TaskInfo("segmentation", "segmentation", 6)]
# (tasks, backbone) per benchmark; fine-tune is the single-task network with other initial weights
# and is exercised in test_models_weights.py
SETTINGS = {"msc": (MSC, "resnet34"), "mini-msc": (MSC, "wrn28_4"), "psc": (PSC, "vgg16")}
TRAINABLE = [m for m in SCENE_MODELS if m != "fine-tune"]
# models in which a task's images must leave every other task's own parameters untouched
ISOLATED = [m for m in TRAINABLE if m != "cross-stitch"]


def _build(model: str, setting: str, **kw):
    tasks, backbone = SETTINGS[setting]
    torch.manual_seed(0)
    return build_model(model, tasks, backbone=backbone, **kw), tasks


def _loss(out: torch.Tensor, task: TaskInfo) -> torch.Tensor:
    if task.type == "segmentation":
        target = torch.randint(0, task.num_outputs, (out.shape[0], *out.shape[-2:]))
    else:
        target = torch.randint(0, task.num_outputs, (out.shape[0],))
    return torch.nn.functional.cross_entropy(out, target)


def test_all_paper_models_registered():
    assert set(SCENE_MODELS) <= set(available_models())


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("model", TRAINABLE)
def test_forward_backward_shapes(model, setting):
    net, tasks = _build(model, setting)
    net.train()
    x = torch.randn(2, 3, 32, 32)
    names = [t.name for t in tasks]
    if setting == "psc":  # PSC: both tasks of the same images in one call
        outs = net(x, names)
    else:  # MSC: one call per task, each with its own images
        outs = {t: net(torch.randn(2, 3, 32, 32), [t])[t] for t in names}
    for t in tasks:
        expected = (2, t.num_outputs, 32, 32) if t.type == "segmentation" else (2, t.num_outputs)
        assert tuple(outs[t.name].shape) == expected
        assert torch.isfinite(outs[t.name]).all()
    losses = {t.name: _loss(outs[t.name], t) for t in tasks}
    total = sum(losses.values())
    total.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > 0.9 * len(grads)
    breakdown = net.parameter_breakdown()
    assert breakdown["total"] == sum(p.numel() for p in net.parameters())


def _owned_by(net, task: str) -> set[int]:
    """ids of the parameters that belong to ``task`` alone (its branch, head, network)."""
    owned = set()
    for attr in ("attention", "heads", "networks"):
        container = getattr(net, attr, None)
        if container is not None and task in container:
            item = container[task]
            params = [item] if isinstance(item, torch.nn.Parameter) else item.parameters()
            owned |= {id(p) for p in params}
    return owned


@pytest.mark.parametrize("model", ISOLATED)
def test_task_input_reaches_only_shared_and_own_branch(model):
    net, tasks = _build(model, "msc")
    x = torch.randn(2, 3, 32, 32)
    out = net(x, ["aid"])
    assert list(out) == ["aid"]
    _loss(out["aid"], tasks[1]).backward()
    own = _owned_by(net, "aid")
    others = _owned_by(net, "merced") | _owned_by(net, "nwpu")
    assert own and others
    for p in net.parameters():
        if id(p) in others:
            assert p.grad is None or not p.grad.any(), "another task's branch got a gradient"
        elif id(p) in own:
            assert p.grad is not None
    if hasattr(net, "backbone"):  # the shared branch learns from every task
        assert all(p.grad is not None for p in net.backbone.parameters())


def test_cross_stitch_shares_features_between_networks():
    net, tasks = _build("cross-stitch", "msc")
    out = net(torch.randn(2, 3, 32, 32), ["aid"])
    _loss(out["aid"], tasks[1]).backward()
    # through the cross-stitch units the other tasks' networks (not their heads) learn as well
    assert net.networks["merced"].conv1.weight.grad.abs().sum() > 0
    assert net.heads["merced"].fc.weight.grad is None
    assert all(u.scaled_alpha.grad is not None for u in net.units)


@pytest.mark.parametrize("model", ["mtln", "shared-specific", "uncertainty"])
def test_psc_runs_shared_branch_once(model):
    net, tasks = _build(model, "psc")
    calls = []
    net.backbone.register_forward_hook(lambda *a: calls.append(1))
    outs = net(torch.randn(1, 3, 32, 32), ["scene", "segmentation"])
    assert len(calls) == 1 and set(outs) == {"scene", "segmentation"}


@pytest.mark.parametrize("backbone", ["vgg16", "resnet34", "wrn28_4"])
def test_segmentation_output_at_input_resolution_for_odd_sizes(backbone):
    net = build_model("mtln", PSC, backbone=backbone, in_channels=4)
    net.eval()
    with torch.no_grad():
        outs = net(torch.randn(1, 4, 40, 56), ["scene", "segmentation"])
    assert tuple(outs["segmentation"].shape) == (1, 6, 40, 56)
    assert tuple(outs["scene"].shape) == (1, 5)


def test_mtln_masks_are_sigmoid_per_block():
    net, _ = _build("mtln", "msc")
    net.eval()
    masks = net.attention_masks(torch.randn(1, 3, 32, 32), "merced")
    assert [m.shape[1] for m in masks] == list(net.backbone.channels)
    assert all(bool(((m > 0) & (m < 1)).all()) for m in masks)
    other = net.attention_masks(torch.randn(1, 3, 32, 32), "nwpu")
    assert not torch.equal(masks[-1], other[-1])


def test_unknown_task_and_backbone_are_one_line_errors():
    net, _ = _build("mtln", "msc")
    with pytest.raises(UsageError, match="no task 'eurosat'"):
        net(torch.randn(1, 3, 32, 32), ["eurosat"])
    with pytest.raises(UsageError, match="unknown backbone"):
        build_model("mtln", MSC, backbone="resnet50")
