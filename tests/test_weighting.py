"""Task weightings (rsbench.training.weighting) against hand-computed cases, in a tiny loop of
their own: a shared parameter θ and losses linear in it give known per-task gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rsbench.errors import UsageError
from rsbench.training.weighting import WEIGHTINGS, build_weighting

TYPES = {"a": "classification", "b": "regression"}
COMBINERS = ("aligned-mtl", "cagrad", "graddrop", "gradvac", "imtl-g", "imtl-h", "mgda", "pcgrad",
             "upgrad", "moco", "modo", "sdmgrad")


def _linear_losses(a, b, theta=None):
    """θ (2,) shared; L_a = θ·a, L_b = θ·b, so ∇L_a = a and ∇L_b = b."""
    theta = torch.nn.Parameter(torch.zeros(2)) if theta is None else theta
    a, b = torch.tensor(a), torch.tensor(b)
    return theta, {"a": theta @ a + 1.0, "b": theta @ b + 1.0}


def _off() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cpu", enabled=False)


def _combined(name, a, b, **options):
    w = build_weighting(name, ["a", "b"], TYPES, **options)
    theta, losses = _linear_losses(a, b)
    w.backward(losses, [theta], _off())
    return w, theta.grad


def test_registry_lists_every_method_and_rejects_unknown_names_and_options() -> None:
    assert set(WEIGHTINGS) >= {"equal", "uncertainty", "gradnorm", "dwa", "rlw", "pcgrad",
                               "cagrad", "mgda"}
    with pytest.raises(UsageError, match="unknown weighting 'magic'"):
        build_weighting("magic", ["a"], TYPES)
    with pytest.raises(UsageError, match="takes no option 'beta'.*alpha"):
        build_weighting("gradnorm", ["a", "b"], TYPES, beta=1)


def test_equal_is_the_sum() -> None:
    w, g = _combined("equal", [1.0, 0.0], [-1.0, 1.0])
    torch.testing.assert_close(g, torch.tensor([0.0, 1.0]))
    assert w.weights() == {"a": 1.0, "b": 1.0}


def test_pcgrad_projects_two_conflicting_gradients_by_hand() -> None:
    # g_a = (1, 0), g_b = (-1, 1): g_a·g_b = -1 < 0
    # g_a' = g_a + ½ g_b = (½, ½); g_b' = g_b + g_a = (0, 1); sum (½, 3/2)
    _, g = _combined("pcgrad", [1.0, 0.0], [-1.0, 1.0])
    torch.testing.assert_close(g, torch.tensor([0.5, 1.5]))
    # no conflict: the plain sum
    _, g = _combined("pcgrad", [1.0, 0.0], [1.0, 1.0])
    torch.testing.assert_close(g, torch.tensor([2.0, 1.0]))


def test_mgda_on_orthogonal_unit_gradients_weighs_both_one_half() -> None:
    w, g = _combined("mgda", [1.0, 0.0], [0.0, 1.0])
    assert w.weights() == pytest.approx({"a": 0.5, "b": 0.5})
    torch.testing.assert_close(g, torch.tensor([0.5, 0.5]))
    # |g_a|² = 1, g_a·g_b = ½, |g_b|² = 4: γ = (4 − ½)/(1 + 4 − 1) = 7/8 on g_a
    w, _ = _combined("mgda", [1.0, 0.0], [0.5, math.sqrt(4 - 0.25)])
    assert w.weights() == pytest.approx({"a": 0.875, "b": 0.125}, abs=1e-6)


def test_cagrad_with_c_zero_is_the_mean_and_with_c_half_a_known_case() -> None:
    _, g = _combined("cagrad", [1.0, 0.0], [-1.0, 3.0], c=0.0)
    torch.testing.assert_close(g, torch.tensor([0.0, 1.5]))
    # orthogonal unit gradients: w* = (½, ½) by symmetry, g_w = g_0, λ = c, so
    # (g_0 + ½ g_0) / (1 + ¼) = 1.2 g_0 = (0.6, 0.6)
    w, g = _combined("cagrad", [1.0, 0.0], [0.0, 1.0], c=0.5)
    torch.testing.assert_close(g, torch.tensor([0.6, 0.6]), atol=1e-4, rtol=0)
    assert w.weights() == pytest.approx({"a": 0.5, "b": 0.5}, abs=1e-3)


def test_dwa_weights_from_a_hand_made_loss_history() -> None:
    w = build_weighting("dwa", ["a", "b"], TYPES)
    theta, losses = _linear_losses([1.0, 0.0], [0.0, 1.0])
    w.backward(losses, [theta], _off())
    assert w.weights() == {"a": 1.0, "b": 1.0}  # the first two epochs: 1
    w.epoch_end({"a": 1.0, "b": 1.0})
    w.epoch_end({"a": 0.5, "b": 1.0})
    # r = (0.5, 1), T = 2: w = 2 e^{r/2} / Σ e^{r/2}
    ea, eb = math.exp(0.25), math.exp(0.5)
    theta, losses = _linear_losses([1.0, 0.0], [0.0, 1.0])
    w.backward(losses, [theta], _off())
    expected = {"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)}
    assert w.weights() == pytest.approx(expected)
    torch.testing.assert_close(theta.grad, torch.tensor([expected["a"], expected["b"]]))


def test_rlw_draws_softmax_weights_from_its_own_checkpointed_generator() -> None:
    w = build_weighting("rlw", ["a", "b"], TYPES)
    w.reseed(3)
    state = w.state_dict()
    theta, losses = _linear_losses([1.0, 0.0], [0.0, 1.0])
    w.backward(losses, [theta], _off())
    first = theta.grad.clone()
    assert first.sum().item() == pytest.approx(1.0) and (first > 0).all()
    expected = torch.softmax(torch.randn(2, generator=torch.Generator().manual_seed(3)), 0)
    torch.testing.assert_close(first, expected)
    w2 = build_weighting("rlw", ["a", "b"], TYPES)
    w2.load_state_dict(state)
    theta, losses = _linear_losses([1.0, 0.0], [0.0, 1.0])
    w2.backward(losses, [theta], _off())
    assert torch.equal(theta.grad, first)


def test_uncertainty_weighting_formula() -> None:
    u = build_weighting("uncertainty", ["c", "r"], {"c": "classification", "r": "regression"})
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([0.5, -1.0]))
    lc, lr = torch.tensor(2.0), torch.tensor(3.0)
    expected = (math.exp(-0.5) * 2.0 + 0.25) + (0.5 * math.exp(1.0) * 3.0 - 0.5)
    both = torch.tensor([True, True])
    assert u.combine(torch.stack([lc, lr]), both).item() == pytest.approx(expected, rel=1e-6)
    # the optimum of e^-s L + s/2 is s = log(2L): gradient zero there
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([math.log(2 * 2.0), math.log(3.0)]))
    u.backward({"c": lc, "r": lr}, [], _off())
    torch.testing.assert_close(u.log_vars.grad, torch.zeros(2), atol=1e-6, rtol=0)


def _toy():
    """Shared linear layer, two heads; task 'big' has 20x larger targets -> its gradients dominate."""
    torch.manual_seed(0)
    shared = torch.nn.Linear(4, 8)
    heads = torch.nn.ModuleDict({"big": torch.nn.Linear(8, 1), "small": torch.nn.Linear(8, 1)})
    x = torch.randn(64, 4)
    targets = {"big": 20 * x.sum(1), "small": 0.05 * x[:, 0]}
    return shared, heads, x, targets


def _steps(shared, heads, w, opt, x, targets, steps: int, scaler=None) -> None:
    scaler = scaler or _off()
    for _ in range(steps):
        z = torch.relu(shared(x))
        losses = {n: F.mse_loss(h(z).squeeze(1), targets[n]) for n, h in heads.items()}
        opt.zero_grad(set_to_none=True)
        w.backward(losses, list(shared.parameters()), scaler)
        scaler.step(opt)
        scaler.update()


def test_gradnorm_lowers_the_weight_of_the_dominant_task() -> None:
    shared, heads, x, targets = _toy()
    gn = build_weighting("gradnorm", ["big", "small"], {"big": "regression",
                                                        "small": "regression"}, lr=0.05)
    opt = torch.optim.SGD(list(shared.parameters()) + list(heads.parameters()), lr=1e-3)
    _steps(shared, heads, gn, opt, x, targets, 20)
    assert gn.w[0] < 1.0 < gn.w[1]
    assert float(gn.w.sum()) == pytest.approx(2.0)
    assert not any(p is gn._param for p in gn.parameters())  # its own Adam trains them


@pytest.mark.parametrize("name", ["gradnorm", "rlw", "pcgrad"])
def test_stateful_weightings_resume_exactly_from_a_checkpoint(name, tmp_path) -> None:
    types = {"big": "regression", "small": "regression"}

    def fresh():
        shared, heads, x, targets = _toy()
        w = build_weighting(name, ["big", "small"], types)
        w.reseed(7)
        net = torch.nn.ModuleDict({"shared": shared, "heads": heads, "w": w})
        opt = torch.optim.Adam(list(shared.parameters()) + list(heads.parameters()), lr=1e-2)
        return net, opt, x, targets

    a, opt_a, x, targets = fresh()
    _steps(a["shared"], a["heads"], a["w"], opt_a, x, targets, 8)
    b, opt_b, _, _ = fresh()
    _steps(b["shared"], b["heads"], b["w"], opt_b, x, targets, 4)
    torch.save({"model": b.state_dict(), "opt": opt_b.state_dict()}, tmp_path / "ck.pt")
    c, opt_c, _, _ = fresh()
    c["w"].reseed(99)  # restored from the checkpoint, not from the seed
    state = torch.load(tmp_path / "ck.pt", weights_only=False)
    c.load_state_dict(state["model"])
    opt_c.load_state_dict(state["opt"])
    _steps(c["shared"], c["heads"], c["w"], opt_c, x, targets, 4)
    for (key, pa), pc in zip(a.state_dict().items(), c.state_dict().values()):
        if torch.is_tensor(pa):
            assert torch.equal(pa, pc), key


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_task_specific_parameters_get_their_own_tasks_gradient(name) -> None:
    shared, heads, x, targets = _toy()
    w = build_weighting(name, ["big", "small"], {"big": "regression", "small": "regression"})
    z = torch.relu(shared(x))
    losses = {n: F.mse_loss(h(z).squeeze(1), targets[n]) for n, h in heads.items()}
    own = torch.autograd.grad(losses["small"], heads["small"].weight, retain_graph=True)[0]
    w.backward(losses, list(shared.parameters()), _off())
    weight = w.weights().get("small", 1.0)
    if name in COMBINERS:
        weight = 1.0  # the combiners change shared gradients only (imtl-h: e^{s} = 1 at start)
    if name == "db-mtl":
        weight = 1.0 / losses["small"].item()  # the gradient of log L
    torch.testing.assert_close(heads["small"].weight.grad, weight * own, rtol=1e-5, atol=1e-6)
    assert all(p.grad is not None for p in shared.parameters())


@pytest.mark.parametrize("name", ["pcgrad", "cagrad", "mgda"])
def test_gradient_combiners_are_exact_under_a_loss_scale(name) -> None:
    """With the GradScaler at 2^10, unscaling the written gradients gives the unscaled result."""
    results = []
    for scaler in (_off(), torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)):
        shared, heads, x, targets = _toy()
        w = build_weighting(name, ["big", "small"], {"big": "regression",
                                                     "small": "regression"})
        z = torch.relu(shared(x))
        losses = {n: F.mse_loss(h(z).squeeze(1), targets[n]) for n, h in heads.items()}
        opt = torch.optim.SGD(list(shared.parameters()) + list(heads.parameters()), lr=0.1)
        w.backward(losses, list(shared.parameters()), scaler)
        if scaler.is_enabled():
            scaler.unscale_(opt)
        results.append([p.grad.clone() for p in shared.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_every_weighting_runs_under_bf16_autocast_with_an_extra_loss(name) -> None:
    shared, heads, x, targets = _toy()
    w = build_weighting(name, ["big", "small"], {"big": "regression", "small": "regression"})
    extra_param = torch.nn.Parameter(torch.tensor(2.0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = torch.relu(shared(x))
        out = {n: h(z).squeeze(1) for n, h in heads.items()}
    losses = {n: F.mse_loss(out[n].float(), targets[n]) for n in out}
    w.backward(losses, list(shared.parameters()), _off(), extra=extra_param ** 2)
    assert extra_param.grad.item() == pytest.approx(4.0)  # the extra loss, unweighted
    assert all(torch.isfinite(p.grad).all() for p in shared.parameters())


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_a_step_with_one_task_group_touches_only_that_task(name) -> None:
    """Per-task batching draws one task group per step: the other task has no loss."""
    shared, heads, x, targets = _toy()
    w = build_weighting(name, ["big", "small"], {"big": "regression", "small": "regression"})
    z = torch.relu(shared(x))
    losses = {"small": F.mse_loss(heads["small"](z).squeeze(1), targets["small"])}
    w.backward(losses, list(shared.parameters()), _off())
    assert heads["big"].weight.grad is None
    assert heads["small"].weight.grad is not None
    assert all(torch.isfinite(p.grad).all() for p in shared.parameters())
    assert "big" not in w.weights()
    if name == "uncertainty":
        assert w.log_vars.grad[0] == 0  # the absent task's regulariser is not added


def test_the_readme_weighting_table_lists_every_registered_weighting() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = text.split("| name | method | options")[1].split("\n\n")[0]
    listed = {row.split("`")[1] for row in table.splitlines() if row.startswith("| `")}
    assert listed == set(WEIGHTINGS)
