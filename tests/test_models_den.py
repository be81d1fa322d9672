"""DEN (Ahn, Kim and Oh 2019): shapes, sizes against Table III, the hierarchical groups, and the
selector's policy gradient on a reward with a known best sub-network."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rsbench.errors import UsageError
from rsbench.models import build_model
from rsbench.models.base import TaskInfo
from rsbench.models.den_parts import (
    Selector,
    density,
    group_mask,
    random_levels,
    reinforce_loss,
    reward,
    sample_levels,
)
from rsbench.models.paper_params import BENCHMARKS, PAPER_TOTALS, breakdown


@pytest.fixture(autouse=True)
def _small():
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.parametrize("bench", ["msc", "mini-msc"])
def test_forward_backward_in_both_phases_and_eval(bench):
    spec = BENCHMARKS[bench]
    tasks = list(spec.tasks)
    net = build_model("den", tasks, backbone=spec.backbone, pretrain_steps=1)
    x = torch.randn(4, 3, 32, 32)
    targets = {t.name: torch.randint(0, t.num_outputs, (4,)) for t in tasks}
    net.train()
    # step 0: the estimator pre-trains, no policy loss yet
    out = net(x, tasks=[tasks[0].name])
    assert out[tasks[0].name].shape == (4, tasks[0].num_outputs)
    assert net.auxiliary_loss(targets) is None
    levels = net.last_levels[tasks[0].name]
    assert (levels[:3] == 3).all()  # 75% of the images use every filter
    # step 1: the selector picks sub-networks and learns from their reward
    outs = net(x, tasks=[t.name for t in tasks])
    extra = net.auxiliary_loss(targets)
    assert extra is not None and extra.ndim == 0
    loss = sum(torch.nn.functional.cross_entropy(outs[t], targets[t]) for t in outs)
    (loss + extra).backward()
    first = tasks[0].name
    assert all(p.grad is not None for p in net.selectors[first].parameters())
    assert net.heads[first].fc.weight.grad is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.shared_parameters())
    assert net.auxiliary_loss(targets) is None  # consumed
    net.eval()
    with torch.no_grad():
        out = net(x, tasks=[first])
    assert out[first].shape == (4, tasks[0].num_outputs)
    assert net.last_levels[first].shape == (4, net.num_blocks)
    used = net.evaluation_usage(reset=True)[first]
    assert used[1] == 4 and torch.isclose(used[0], density(net.last_levels[first]).sum().double())
    assert net.evaluation_usage() == {}


@pytest.mark.parametrize("bench", ["msc", "mini-msc"])
def test_sizes_against_table_iii(bench):
    ours = breakdown("den", bench)
    paper = PAPER_TOTALS[bench]["den"]
    assert abs(ours["total"] - paper) / paper < 0.05, (ours, paper)
    assert ours["total"] == ours["shared"] + ours["scene_classifier"] + ours["selectors"]


def test_level_groups_are_quarter_quarter_half():
    mask = group_mask(torch.tensor([0, 1, 2, 3]), 64, torch.float32)[:, :, 0, 0]
    assert mask.sum(1).tolist() == [0, 16, 32, 64]
    assert (mask[1, :16] == 1).all() and (mask[2, :32] == 1).all()  # nested: lower in higher
    used = density(torch.tensor([[0, 0], [1, 2], [3, 3]]))
    assert used.tolist() == [0.0, 0.375, 1.0]
    assert torch.allclose(reward(torch.tensor([0.5]), torch.tensor([0.5]), 10.0),
                          torch.tensor([0.575]))
    levels = random_levels(8, 5, 0.75, torch.device("cpu"))
    assert (levels[:6] == 3).all()


def test_level_zero_skips_a_block_and_lower_levels_change_the_output():
    tasks = [TaskInfo("a", "classification", 3)]
    net = build_model("den", tasks, backbone="wrn28_4").eval()
    x = torch.randn(2, 3, 16, 16)
    from rsbench.models.den_parts import elastic_forward

    with torch.no_grad():
        full = elastic_forward(net.backbone, x, torch.full((2, 12), 3))
        half = elastic_forward(net.backbone, x, torch.full((2, 12), 2))
        # all blocks skipped: only the stem and the shortcuts remain
        skipped = elastic_forward(net.backbone, x, torch.zeros(2, 12, dtype=torch.long))
        h = net.backbone.conv1(x)
        for group in net.backbone.groups:
            for unit in group:
                h = unit.shortcut(h)
        expected = torch.relu(net.backbone.bn(h))
    assert not torch.allclose(full, half)
    assert torch.allclose(skipped, expected, atol=1e-6)


def test_policy_gradient_finds_the_sub_network_a_known_reward_favours():
    """Reward 1 for one sub-network (levels 1, 3, 0), 0 for every other: after a few
    epsilon-greedy REINFORCE steps the selector gives it nearly all its probability."""
    sel = Selector(3, 4, [8, 8], 3)
    opt = torch.optim.Adam(sel.parameters(), lr=0.05)
    x = torch.randn(16, 3, 8, 8)
    best = torch.tensor([1, 3, 0])
    chance = sel(x).exp()[:, torch.arange(3), best].prod(1).mean().item()
    for _ in range(30):
        log_probs = sel(x)
        levels = sample_levels(log_probs.detach(), epsilon=0.3)
        loss = reinforce_loss(log_probs, levels, (levels == best).all(1).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    sel.eval()
    with torch.no_grad():
        log_probs = sel(x)
    p_best = log_probs.exp()[:, torch.arange(3), best].prod(1)
    assert chance < 0.05 and p_best.min().item() > 0.9, (chance, p_best)
    assert (log_probs.argmax(-1) == best).all()


def test_den_reward_moves_the_selector_to_fewer_filters_when_the_loss_is_equal():
    """A zero-weight head gives every sub-network the same loss (1.9 nats: the bias is set for
    it), so DEN's reward (1 - u^2)/rho - 1.9 + 1 (rho = 1) is positive only for sub-networks
    using few filters: REINFORCE through the model must cut the share of filters its choice
    uses (no reward baseline, as the authors: the policy settles before reaching all-skip)."""
    tasks = [TaskInfo("a", "classification", 3)]
    net = build_model("den", tasks, backbone="wrn28_4", pretrain_steps=0, selector_width=0.25,
                      rho=1.0, explore_decay=0.0)
    torch.nn.init.zeros_(net.heads["a"].fc.weight)
    b = math.log((math.exp(1.9) - 1) / 2)  # -log softmax([0, b, b])[0] = 1.9
    with torch.no_grad():
        net.heads["a"].fc.bias.copy_(torch.tensor([0.0, b, b]))
    opt = torch.optim.Adam(net.selectors.parameters(), lr=0.05)
    x = torch.randn(16, 3, 8, 8)
    y = {"a": torch.zeros(16, dtype=torch.long)}
    net.eval()
    with torch.no_grad():
        net(x, tasks=["a"])
    before = density(net.last_levels["a"]).mean().item()
    net.train()
    for _ in range(20):
        out = net(x, tasks=["a"])
        assert torch.allclose(F.cross_entropy(out["a"], y["a"]), torch.tensor(1.9))
        opt.zero_grad()
        net.auxiliary_loss(y).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        net(x, tasks=["a"])
    after = density(net.last_levels["a"]).mean().item()
    assert before > 0.3 and after < 0.6 * before, (before, after)


def test_needs_targets_and_rejects_other_tasks_and_backbones():
    tasks = [TaskInfo("a", "classification", 3)]
    net = build_model("den", tasks, backbone="wrn28_4", pretrain_steps=0).train()
    net(torch.randn(2, 3, 8, 8), tasks=["a"])
    with pytest.raises(RuntimeError, match="targets"):
        net.auxiliary_loss()
    with pytest.raises(UsageError, match="classifies scenes"):
        build_model("den", [TaskInfo("s", "segmentation", 4)], backbone="wrn28_4")
    with pytest.raises(UsageError, match="resnet34"):
        build_model("den", tasks, backbone="vgg16")
