"""GLS, GradDrop, GradVac, IMTL-L/G/H, Nash-MTL, Aligned-MTL and DB-MTL against hand-computed
cases (fixed gradients: losses linear in a shared θ, L_t = θ·g_t + c_t, so ∇L_t = g_t and
L_t = c_t at θ = 0) and against LibMTL's formulas, re-implemented below from LibMTL's source
(``LibMTL/weighting/*.py``, commit 4336804) on the same gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rsbench.errors import UsageError
from rsbench.training.weighting import build_weighting
from rsbench.training.weighting.nash_mtl import nash_weights

NAMES = ["a", "b", "c"]


def _off() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cpu", enabled=False)


def _update(w, grads, consts=None) -> torch.Tensor:
    """One backward of ``w`` on losses L_t = θ·g_t + c_t at θ = 0: the written θ.grad."""
    g = torch.as_tensor(grads, dtype=torch.float32)
    c = torch.ones(len(g)) if consts is None else torch.as_tensor(consts, dtype=torch.float32)
    theta = torch.nn.Parameter(torch.zeros(g.shape[1]))
    w.backward({n: theta @ g[i] + c[i] for i, n in enumerate(NAMES[:len(g)])}, [theta], _off())
    return theta.grad


def _make(name, n=2, **options):
    w = build_weighting(name, NAMES[:n], {t: "regression" for t in NAMES[:n]}, **options)
    w.reseed(0)
    return w


def _random_grads(seed: int, n: int = 3, d: int = 40) -> torch.Tensor:
    g = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    g[1] -= 0.8 * g[0]  # some conflict
    return g


# ---------------------------------------------------------------- hand-computed cases -----

def test_gls_is_the_gradient_of_the_geometric_mean() -> None:
    # L = (1, 4): GLS = 2, weights GLS / (T L_t) = (1, 1/4)
    w = _make("gls")
    g = _update(w, [[1.0, 0.0], [0.0, 1.0]], consts=[1.0, 4.0])
    torch.testing.assert_close(g, torch.tensor([1.0, 0.25]))
    assert w.weights() == pytest.approx({"a": 1.0, "b": 0.25})


def test_imtl_g_equalises_the_projections_on_the_unit_gradients() -> None:
    # g_a = (1, 0), g_b = (0, 2): α_a = 2 α_b, Σ α = 1 -> α = (2/3, 1/3), update (2/3, 2/3)
    w = _make("imtl-g")
    g = _update(w, [[1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(g, torch.tensor([2 / 3, 2 / 3]))
    assert w.weights() == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    # three tasks: the update has equal projections on every unit task gradient
    grads = _random_grads(1)
    upd = _update(_make("imtl-g", 3), grads).double()
    proj = (grads.double() / grads.double().norm(dim=1, keepdim=True)) @ upd
    torch.testing.assert_close(proj, proj[:1].expand(3), rtol=1e-5, atol=1e-6)


def test_imtl_l_learns_scales_that_make_each_scaled_loss_one() -> None:
    w = _make("imtl-l")
    _update(w, [[1.0, 0.0], [0.0, 1.0]], consts=[2.0, 0.5])
    # d/ds (e^s L − s) = e^s L − 1 at s = 0
    torch.testing.assert_close(w.loss_scale.grad, torch.tensor([1.0, -0.5]))
    with torch.no_grad():
        w.loss_scale.copy_(torch.tensor([-math.log(2.0), math.log(2.0)]))
    w.loss_scale.grad = None
    g = _update(w, [[1.0, 0.0], [0.0, 1.0]], consts=[2.0, 0.5])
    torch.testing.assert_close(w.loss_scale.grad, torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(g, torch.tensor([0.5, 2.0]))  # e^s g_t


def test_imtl_h_is_imtl_g_on_the_scaled_losses() -> None:
    w = _make("imtl-h")
    with torch.no_grad():
        w.loss_scale.copy_(torch.tensor([0.0, math.log(2.0)]))
    # scaled gradients (1, 0) and 2·(0, 1): the IMTL-G case above, α = (2/3, 1/3)
    g = _update(w, [[1.0, 0.0], [0.0, 1.0]], consts=[1.0, 1.0])
    torch.testing.assert_close(g, torch.tensor([2 / 3, 2 / 3]))
    torch.testing.assert_close(w.loss_scale.grad, torch.tensor([0.0, 1.0]))  # e^s L − 1


def test_nash_mtl_orthogonal_case_and_clipping() -> None:
    # G = diag(1, 4): α_t² G_tt = 1 -> α = (1, ½); update (1, 1)
    w = _make("nash-mtl", max_norm=0.0)
    g = _update(w, [[1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(g, torch.tensor([1.0, 1.0]), rtol=1e-6, atol=1e-6)
    assert w.weights() == pytest.approx({"a": 1.0, "b": 0.5}, rel=1e-6)
    # max_norm 1 (the default): the same direction with norm 1
    g = _update(_make("nash-mtl"), [[1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(g, torch.tensor([1.0, 1.0]) / math.sqrt(2), rtol=1e-5, atol=0)
    # update_weights_every 2: the second step keeps the first step's α
    w = _make("nash-mtl", max_norm=0.0, update_weights_every=2)
    _update(w, [[1.0, 0.0], [0.0, 2.0]])
    g = _update(w, [[3.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(g, torch.tensor([3.0, 0.5]), rtol=1e-6, atol=1e-6)


def test_aligned_mtl_rescales_orthogonal_gradients_to_the_smallest_norm() -> None:
    # M = diag(1, 4): B = √1 · diag(1, ½) -> aligned (1, 0), (0, 1), update (1, 1)
    w = _make("aligned-mtl")
    g = _update(w, [[1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(g, torch.tensor([1.0, 1.0]))
    assert w.weights() == pytest.approx({"a": 1.0, "b": 0.5})
    with pytest.raises(UsageError, match="scale_mode 'max'"):
        _make("aligned-mtl", scale_mode="max")


def test_gradvac_first_step_is_pcgrad_and_the_target_moves() -> None:
    # target 0 at the start: the adjustment is PCGrad's projection, (½, 3/2) (see test_weighting)
    w = _make("gradvac")
    g = _update(w, [[1.0, 0.0], [-1.0, 1.0]])
    torch.testing.assert_close(g, torch.tensor([0.5, 1.5]))
    cos = -1 / math.sqrt(2)
    torch.testing.assert_close(w.rho, torch.tensor([[0.0, 0.5 * cos], [0.5 * cos, 0.0]],
                                                   dtype=torch.float64))
    # no conflict and targets below the cosine: the plain sum
    w = _make("gradvac")
    torch.testing.assert_close(_update(w, [[1.0, 0.0], [1.0, 1.0]]), torch.tensor([2.0, 1.0]))


def test_graddrop_keeps_agreeing_signs_and_picks_one_sign_where_they_conflict() -> None:
    w = _make("graddrop")
    torch.testing.assert_close(_update(w, [[1.0, -2.0], [3.0, -1.0]]),
                               torch.tensor([4.0, -3.0]))  # P = 1 or 0: everything kept
    # opposite, equal magnitudes: P = ½; element k keeps +1 if U_k < ½, else −1
    w = _make("graddrop")
    w.reseed(5)
    g = _update(w, [[1.0] * 64, [-1.0] * 64])
    u = torch.rand(64, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(g, torch.where(u < 0.5, 1.0, -1.0))
    w = _make("graddrop", leak=1.0)  # all leaked: the plain sum
    torch.testing.assert_close(_update(w, [[1.0, 2.0], [-3.0, 1.0]]), torch.tensor([-2.0, 3.0]))


def test_db_mtl_balances_averaged_log_loss_gradients() -> None:
    # ∇ log L: a/1 and b/2 = (0, 2); step 1 averages 0.1 of each: (0.1, 0), (0, 0.2);
    # α = max norm / norm = (2, 1); update (0.2, 0.2). Step 2: 0.19 of each -> (0.38, 0.38)
    w = _make("db-mtl")
    grads, consts = [[1.0, 0.0], [0.0, 4.0]], [1.0, 2.0]
    torch.testing.assert_close(_update(w, grads, consts), torch.tensor([0.2, 0.2]))
    assert w.weights() == pytest.approx({"a": 2.0, "b": 1.0}, rel=1e-6)
    torch.testing.assert_close(_update(w, grads, consts), torch.tensor([0.38, 0.38]))
    with pytest.raises(UsageError, match="no shared-representation mode"):
        _make("db-mtl", rep_grad=True)


# ------------------------------------------------------------- LibMTL's formulas ----------
# Each reference takes (T, D) gradients (and LibMTL's other inputs) and returns the shared
# update LibMTL writes; the maximum absolute differences are printed for the closing note.

def _report(name: str, got: torch.Tensor, ref: torch.Tensor) -> float:
    diff = float((got.double() - ref.double()).abs().max())
    print(f"LibMTL agreement {name}: max |Δ| = {diff:.2e} (update norm {float(ref.norm()):.3g})")
    return diff


def _libmtl_imtl(grads):  # LibMTL IMTL.backward with loss_scale = 0 (IMTL-G of the raw losses)
    grads_unit = grads / torch.norm(grads, p=2, dim=-1, keepdim=True)
    D = grads[0:1].repeat(len(grads) - 1, 1) - grads[1:]
    U = grads_unit[0:1].repeat(len(grads) - 1, 1) - grads_unit[1:]
    alpha = torch.matmul(torch.matmul(grads[0], U.t()), torch.inverse(torch.matmul(D, U.t())))
    alpha = torch.cat((1 - alpha.sum().unsqueeze(0), alpha), dim=0)
    return sum(alpha[i] * grads[i] for i in range(len(grads)))


def _libmtl_aligned(grads):  # LibMTL Aligned_MTL.backward (torch.symeig -> linalg.eigh)
    M = torch.matmul(grads, grads.t())
    lmbda, V = torch.linalg.eigh(M)
    tol = torch.max(lmbda) * max(M.shape[-2:]) * torch.finfo().eps
    rank = sum(lmbda > tol)
    order = torch.argsort(lmbda, dim=-1, descending=True)
    lmbda, V = lmbda[order][:rank], V[:, order][:, :rank]
    sigma = torch.diag(1 / lmbda.sqrt())
    B = lmbda[-1].sqrt() * ((V @ sigma) @ V.t())
    alpha = B.sum(0)
    return sum(alpha[i] * grads[i] for i in range(len(grads)))


def _libmtl_gradvac(steps, beta, orders):
    """LibMTL GradVac.backward (whole_model), ``random.shuffle`` replaced by ``orders``."""
    T = steps[0].shape[0]
    rho_T = torch.zeros(T, T, 1, dtype=torch.float64)
    out = []
    for grads in steps:
        grads = grads.double()
        pc_grads = grads.clone()
        for tn_i in range(T):
            for tn_j in next(orders)(tn_i):
                k = 0
                rho_ijk = torch.dot(pc_grads[tn_i], grads[tn_j]) / (
                    pc_grads[tn_i].norm() * grads[tn_j].norm() + 1e-8)
                if rho_ijk < rho_T[tn_i, tn_j, k]:
                    w = pc_grads[tn_i].norm() * (
                        rho_T[tn_i, tn_j, k] * (1 - rho_ijk ** 2).sqrt()
                        - rho_ijk * (1 - rho_T[tn_i, tn_j, k] ** 2).sqrt()) / (
                        grads[tn_j].norm() * (1 - rho_T[tn_i, tn_j, k] ** 2).sqrt() + 1e-8)
                    pc_grads[tn_i] += grads[tn_j] * w
                rho_T[tn_i, tn_j, k] = (1 - beta) * rho_T[tn_i, tn_j, k] + beta * rho_ijk
        out.append(pc_grads.sum(0))
    return out


def _libmtl_db_mtl(steps, beta=0.9, beta_sigma=0.0):  # LibMTL DB_MTL.backward
    buf = torch.zeros_like(steps[0])
    out = []
    for step, batch_grads in enumerate(steps, start=1):
        buf = batch_grads + (beta / step ** beta_sigma) * (buf - batch_grads)
        u_grad = buf.norm(dim=-1)
        alpha = u_grad.max() / (u_grad + 1e-8)
        out.append(sum(alpha[i] * buf[i] for i in range(len(buf))))
    return out


def test_imtl_and_aligned_mtl_agree_with_libmtl() -> None:
    for seed in range(3):
        g = _random_grads(seed)
        assert _report("imtl-g", _update(_make("imtl-g", 3), g), _libmtl_imtl(g.double())) < 1e-5
        assert _report("imtl-h", _update(_make("imtl-h", 3), g), _libmtl_imtl(g.double())) < 1e-5
        assert _report("aligned-mtl", _update(_make("aligned-mtl", 3), g),
                       _libmtl_aligned(g.double())) < 1e-5


def test_gradvac_agrees_with_libmtl_over_steps() -> None:
    steps = [_random_grads(s) for s in range(4)]
    w = _make("gradvac", 3)
    w.reseed(11)
    got = [_update(w, g) for g in steps]
    gen = torch.Generator().manual_seed(11)  # the same orders rsbench draws

    def orders():
        while True:
            def order(i):
                others = [j for j in range(3) if j != i]
                return [others[k] for k in torch.randperm(2, generator=gen).tolist()]
            yield order
    ref = _libmtl_gradvac(steps, 0.5, orders())
    for a, b in zip(got, ref):
        assert _report("gradvac", a, b) < 1e-5


def test_db_mtl_agrees_with_libmtl_over_steps() -> None:
    steps = [_random_grads(s) for s in range(4)]
    consts = [1.0, 2.0, 0.5]  # ∇ log L_t = g_t / L_t
    w = _make("db-mtl", 3)
    got = [_update(w, g, consts) for g in steps]
    ref = _libmtl_db_mtl([g.double() / torch.tensor(consts).double()[:, None] for g in steps])
    for a, b in zip(got, ref):
        assert _report("db-mtl", a, b) < 1e-5


def test_gls_agrees_with_libmtl() -> None:
    g = _random_grads(0)
    consts = torch.tensor([0.7, 2.0, 1.3])
    theta = torch.nn.Parameter(torch.zeros(g.shape[1], dtype=torch.float64))
    losses = torch.stack([theta @ g[i].double() + consts[i].double() for i in range(3)])
    torch.pow(losses.prod(), 1.0 / 3).backward()  # LibMTL GLS.backward
    assert _report("gls", _update(_make("gls", 3), g, consts), theta.grad) < 1e-6


def test_nash_mtl_solves_the_authors_equation_and_clips_as_they_do() -> None:
    """The paper's and the authors' (LibMTL's) solution: ``G α = 1/α`` on the raw Gram matrix
    (their constraint keeps the raw G; measured against their cvxpy solver, see the README),
    then ``clip_grad_norm_(shared, max_norm)`` of ``Σ α_t g_t``. Reference α: SciPy's ``root``,
    at two gradient scales (α scales as 1/||g||)."""
    from scipy.optimize import root

    for seed, scale in ((0, 1.0), (1, 1.0), (2, 0.01)):
        g = scale * _random_grads(seed).double()
        G = g @ g.T
        Gn = G.numpy()
        sol = root(lambda a, Gn=Gn: Gn @ a - 1 / a, np.ones(3) / scale, tol=1e-12)
        assert sol.success
        a = torch.from_numpy(sol.x)
        ref = a @ g
        ref = ref * min(1.0, 1.0 / (float(ref.norm()) + 1e-6))
        w = _make("nash-mtl", 3)
        got = _update(w, g.float())
        alpha = torch.tensor([w.weights()[n] for n in NAMES], dtype=torch.float64)
        assert float((alpha * (G @ alpha) - 1).abs().max()) < 1e-5
        assert _report("nash-mtl", got, ref) < 1e-5
    # a zero task gradient has no bargaining solution: the previous α is kept
    assert nash_weights(torch.diag(torch.tensor([1.0, 0.0])), torch.ones(2)) is None
    w = _make("nash-mtl", max_norm=0.0)
    torch.testing.assert_close(_update(w, [[1.0, 0.0], [0.0, 0.0]]), torch.tensor([1.0, 0.0]))


def test_nash_mtl_agrees_with_the_authors_cvxpy_solver_over_steps() -> None:
    """The authors' ``NashMTL.solve_optimization`` (methods/weight_methods.py, as LibMTL's
    Nash_MTL): cvxpy/ECOS, warm-started, 20 rounds; runs where cvxpy is installed."""
    cp = pytest.importorskip("cvxpy")
    if "ECOS" not in cp.installed_solvers():
        pytest.skip("cvxpy without the ECOS solver the authors use")
    n = 3
    alpha_v = cp.Variable(shape=(n,), nonneg=True)
    prvs = cp.Parameter(shape=(n,), value=np.ones(n, dtype=np.float32))
    G_p = cp.Parameter(shape=(n, n), value=np.eye(n))
    nf_p = cp.Parameter(shape=(1,), value=np.array([1.0]))
    G_prvs_alpha = G_p @ prvs
    phi = (1 / prvs + (1 / G_prvs_alpha) @ G_p) @ (alpha_v - prvs)
    G_alpha = G_p @ alpha_v
    cons = [-cp.log(alpha_v[i] * nf_p) - cp.log(G_alpha[i]) <= 0 for i in range(n)]
    prob = cp.Problem(cp.Minimize(cp.sum(G_alpha) + phi / nf_p), cons)
    prvs_alpha = np.ones(n, dtype=np.float32)
    w = _make("nash-mtl", 3, max_norm=0.0)
    for seed in range(5):
        g = 0.05 * _random_grads(seed).double()
        GTG = g @ g.T
        nf = torch.norm(GTG).numpy().reshape((1,))
        gtg = (GTG / nf.item()).numpy()
        G_p.value, nf_p.value = gtg, nf
        a_t = prvs_alpha
        for _ in range(20):
            alpha_v.value, prvs.value = a_t, a_t
            try:
                prob.solve(solver=cp.ECOS, warm_start=True, max_iters=100)
            except Exception:
                alpha_v.value = prvs.value
            if (alpha_v.value is None or np.linalg.norm(gtg @ a_t - 1 / (a_t + 1e-10)) < 1e-3
                    or np.linalg.norm(alpha_v.value - prvs.value) < 1e-6):
                break
            a_t = alpha_v.value
        prvs_alpha = a_t
        got = _update(w, g.float())
        ref = torch.from_numpy(np.asarray(prvs_alpha, dtype=np.float64)) @ g
        assert _report("nash-mtl (authors' cvxpy)", got, ref) < 1e-5 * float(ref.norm())


def test_graddrop_on_a_representation_agrees_with_libmtl() -> None:
    """LibMTL GradDrop.backward (single representation): per-task representation gradients
    times sign(rep), summed over the batch, give P; rsbench's draws replace ``rand_like``."""
    from rsbench.training.weighting.representation import batch_summed

    gen = torch.Generator().manual_seed(3)
    per = list(torch.randn(3, 5, 8, generator=gen))
    rep = torch.randn(5, 8, generator=gen)
    w = _make("graddrop", 3, rep_grad=True)
    w.reseed(9)
    got = torch.stack(w.representation_update(per, [rep] * 3, torch.ones(3))).sum(0)
    assert batch_summed(per).shape == (3, 8)

    leak, per_grads = 0.0, torch.stack(per)  # LibMTL, from here
    inputs = rep.unsqueeze(0).repeat_interleave(3, dim=0)
    grads = (per_grads * inputs.sign()).sum(1)
    P = 0.5 * (1 + grads.sum(0) / (grads.abs().sum(0) + 1e-7))
    U = torch.rand(P.shape, generator=torch.Generator().manual_seed(9))
    M = P.gt(U).unsqueeze(0).repeat_interleave(3, dim=0) * grads.gt(0) + \
        P.lt(U).unsqueeze(0).repeat_interleave(3, dim=0) * grads.lt(0)
    M = M.unsqueeze(1).repeat_interleave(per_grads.size()[1], dim=1)
    ref = (per_grads * (leak + (1 - leak) * M)).sum(0)
    assert _report("graddrop (rep)", got, ref) < 1e-6
