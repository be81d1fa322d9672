"""The gradient weightings' shared-representation mode (``rep_grad``), and DDP, AMP and resume
for the weightings added with it: two gloo processes give the update of one process on the
concatenated batch, bf16 autocast with a GradScaler leaves the update unchanged within
tolerance, and a resumed run (checkpoint loaded with ``weights_only=True``) is bit-identical."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.nn.functional as F

from rsbench.errors import UsageError
from rsbench.models import build_model
from rsbench.models.base import MultiTaskModel, TaskInfo
from rsbench.training.weighting import build_weighting

TASKS = ["a", "b"]
TYPES = {"a": "regression", "b": "regression"}
NEW = ["aligned-mtl", "db-mtl", "gls", "graddrop", "gradvac", "imtl-g", "imtl-h", "imtl-l",
       "nash-mtl", "famo", "stch", "fairgrad", "upgrad", "moco", "excess-mtl", "modo", "sdmgrad"]
REP = ["aligned-mtl", "cagrad", "graddrop", "gradvac", "imtl-g", "imtl-h", "mgda", "modo",
       "nash-mtl", "pcgrad", "sdmgrad", "upgrad"]  # every gradient weighting with a representation mode
SAME_IN_BOTH = [n for n in REP if n != "graddrop"]  # GradDrop's units differ by mode


class RepNet(MultiTaskModel):
    """z = W x (the shared representation), heads on tanh(z)."""

    def __init__(self, bias: bool = True, width: int = 4):
        super().__init__([TaskInfo(t, "regression", 1) for t in TASKS])
        self.shared = torch.nn.Linear(3, width, bias=bias)
        self.heads = torch.nn.ModuleDict({t: torch.nn.Linear(width, 1) for t in TASKS})

    def forward(self, x, tasks=TASKS):
        z = self.keep_representation(self.shared(x))
        return {t: self.heads[t](torch.tanh(z)).squeeze(1) for t in tasks}

    def has_shared_representation(self) -> bool:
        return True


def _off():
    return torch.amp.GradScaler("cpu", enabled=False)


def _data(seed: int, n: int = 6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, {"a": 3 * x.sum(1), "b": -2 * x[:, 0] + x[:, 1]}


def _losses(out, y):
    return {k: F.mse_loss(out[k].float(), y[k]) for k in out}


def _weighting(name, rep=False, **options):
    w = build_weighting(name, TASKS, TYPES, **({"rep_grad": True} if rep else {}), **options)
    w.reseed(0)
    return w


def _grads(net, w=None) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    if w is not None:
        out.update({f"w.{n}": p.grad.clone() for n, p in w.named_parameters()
                    if p.grad is not None})
    return out


# ------------------------------------------------------------------ representation mode ----

@pytest.mark.parametrize("name", SAME_IN_BOTH)
def test_rep_mode_equals_parameter_mode_when_the_jacobian_is_an_isometry(name) -> None:
    """z = W x for one sample with ||x|| = 1: ∂L/∂W = (∂L/∂z) xᵀ, so the Gram matrices of the
    two modes are equal and so must be the updates, task-specific gradients included."""
    x = torch.tensor([[0.6, 0.0, 0.8]])
    y = {"a": torch.tensor([2.0]), "b": torch.tensor([-3.0])}
    results = []
    for rep in (False, True):
        torch.manual_seed(0)
        net = RepNet(bias=False)
        w = _weighting(name, rep)
        shared = w.select_shared(net)
        for _ in range(2):  # twice: the stateful methods' state evolves alike
            net.zero_grad(set_to_none=True)
            w.backward(_losses(net(x), y), shared, _off())
        results.append(_grads(net, w))
    assert results[0].keys() == results[1].keys()
    for k in results[0]:
        torch.testing.assert_close(results[1][k], results[0][k], rtol=1e-5, atol=1e-6)


def test_rep_mode_with_one_forward_per_task_group_is_libmtls_multi_input_formula() -> None:
    """MSC-like steps: each task's own images. MGDA's weights come from the batch-summed
    representation gradients (LibMTL's multi-input rep_grad); the shared gradient is
    Σ α_t ∂L_t/∂θ and each head gets its own task's gradient."""
    from rsbench.training.weighting.mgda import min_norm_weights

    torch.manual_seed(0)
    net = RepNet()
    w = _weighting("mgda", rep=True)
    shared = w.select_shared(net)
    (xa, ya), (xb, yb) = _data(3, 5), _data(4, 7)
    losses = {"a": _losses(net(xa, ["a"]), ya)["a"], "b": _losses(net(xb, ["b"]), yb)["b"]}
    with torch.no_grad():
        net(xa)  # an evaluation forward in between is not recorded
    za, zb = [r for _, r in w._capture.records]
    ha, hb = (torch.autograd.grad(losses[t], z, retain_graph=True)[0].sum(0)
              for t, z in (("a", za), ("b", zb)))
    H = torch.stack([ha, hb]).double()
    alpha = min_norm_weights(H @ H.T).float()
    ga = torch.autograd.grad(losses["a"], shared + list(net.heads["a"].parameters()),
                             retain_graph=True)
    gb = torch.autograd.grad(losses["b"], shared + list(net.heads["b"].parameters()),
                             retain_graph=True)
    w.backward(losses, shared, _off())
    for i, p in enumerate(shared):
        torch.testing.assert_close(p.grad, alpha[0] * ga[i] + alpha[1] * gb[i])
    torch.testing.assert_close(net.heads["b"].weight.grad, gb[len(shared)])
    assert 0 < alpha[0] < 1


def test_models_without_one_shared_representation_refuse_rep_grad_in_one_line() -> None:
    scene = [TaskInfo("s1", "classification", 3), TaskInfo("s2", "classification", 2)]
    psc = [TaskInfo("scene", "classification", 3), TaskInfo("seg", "segmentation", 4)]
    for model, tasks in (("mtln", psc), ("shared-specific", psc)):
        m = build_model(model, tasks, backbone="wrn28_4")
        w = build_weighting("pcgrad", [t.name for t in tasks],
                            {t.name: t.type for t in tasks}, rep_grad=True)
        with pytest.raises(UsageError, match="no single feature map") as e:
            w.select_shared(m)
        assert "\n" not in str(e.value)
    m = build_model("shared-specific", scene, backbone="wrn28_4")
    w = build_weighting("nash-mtl", ["s1", "s2"], {"s1": "classification",
                                                   "s2": "classification"}, rep_grad=True)
    assert w.select_shared(m) and w._capture is not None


# ------------------------------------------------------------------------------- AMP -------

@pytest.mark.parametrize("case", [(n, False) for n in NEW] + [(n, True) for n in REP],
                         ids=lambda c: c[0] + ("+rep" if c[1] else ""))
def test_bf16_autocast_and_a_grad_scaler_leave_the_update_unchanged(case) -> None:
    name, rep = case
    x, y = _data(3, 32)
    results = []
    for amp in (False, True):
        torch.manual_seed(0)
        net = RepNet(width=16)
        w = _weighting(name, rep)
        shared = w.select_shared(net)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10) if amp else _off()
        opt = torch.optim.SGD(list(net.parameters()) + list(w.parameters()), lr=0.1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = net(x)
        w.backward(_losses(out, y), shared, scaler)
        if amp:
            scaler.unscale_(opt)
        results.append(_grads(net, w))
    for k, ref in results[0].items():
        err = (results[1][k] - ref).norm() / ref.norm().clamp_min(1e-12)
        assert err < 0.05, (k, float(err))  # bf16 keeps ~3 significant digits


# ---------------------------------------------------------------------------- resume -------

STATEFUL = [("gradvac", False), ("nash-mtl", False), ("db-mtl", False), ("graddrop", False),
            ("imtl-h", False), ("imtl-l", False), ("gradvac", True), ("nash-mtl", True),
            ("famo", False), ("stch", False), ("moco", False),
            ("excess-mtl", False), ("modo", False), ("sdmgrad", False), ("modo", True),
            ("sdmgrad", True)]


@pytest.mark.parametrize("case", STATEFUL, ids=lambda c: c[0] + ("+rep" if c[1] else ""))
def test_a_resumed_run_is_bit_identical(case, tmp_path) -> None:
    name, rep = case
    x, y = _data(4, 16)

    def fresh():
        torch.manual_seed(0)
        net = RepNet()
        w = _weighting(name, rep)
        w.reseed(7)
        shared = w.select_shared(net)
        opt = torch.optim.Adam(list(net.parameters()) + list(w.parameters()), lr=1e-2)
        return torch.nn.ModuleDict({"net": net, "w": w}), shared, opt

    def steps(m, shared, opt, k):
        for _ in range(k):
            opt.zero_grad(set_to_none=True)
            m["w"].backward(_losses(m["net"](x), y), shared, _off())
            opt.step()

    a, sa, oa = fresh()
    steps(a, sa, oa, 6)
    b, sb, ob = fresh()
    steps(b, sb, ob, 3)
    torch.save({"model": b.state_dict(), "opt": ob.state_dict()}, tmp_path / "ck.pt")
    c, sc, oc = fresh()
    c["w"].reseed(99)  # restored from the checkpoint, not from the seed
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    c.load_state_dict(state["model"])
    oc.load_state_dict(state["opt"])
    steps(c, sc, oc, 3)
    sa_, sc_ = a.state_dict(), c.state_dict()
    for key, va in sa_.items():
        vc = sc_[key]
        if isinstance(va, dict):  # extra state: generators, DB-MTL's averages
            for k2 in va:
                assert torch.equal(va[k2], vc[k2]), (key, k2)
        else:
            assert torch.equal(va, vc), key


# ------------------------------------------------------------------------------- DDP -------

DDP_CASES = [(n, False) for n in NEW] + [(n, True) for n in REP]


def _run_case(name, rep, net_forward, net, x, y):
    w = _weighting(name, rep)
    shared = w.select_shared(net)
    for _ in range(2):  # two steps: moving averages and warm starts evolve alike
        net.zero_grad(set_to_none=True)
        w.zero_grad(set_to_none=True)
        w.backward(_losses(net_forward(x), y), shared, _off())
    return _grads(net, w)


def _ddp_worker(rank: int, world: int, port: int, result_dir: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x, y = _data(100 + rank)
    out = {}
    for name, rep in DDP_CASES:
        torch.manual_seed(0)
        net = RepNet()
        ddp = torch.nn.parallel.DistributedDataParallel(net, find_unused_parameters=True)
        out[f"{name}{'+rep' if rep else ''}"] = _run_case(name, rep, ddp, net, x, y)
    torch.save(out, os.path.join(result_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_two_processes_give_the_update_of_one_process_on_the_concatenated_batch(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    (x0, y0), (x1, y1) = _data(100), _data(101)
    x = torch.cat([x0, x1])
    y = {k: torch.cat([y0[k], y1[k]]) for k in y0}
    for name, rep in DDP_CASES:
        key = f"{name}{'+rep' if rep else ''}"
        torch.manual_seed(0)
        net = RepNet()
        ref = _run_case(name, rep, net, net, x, y)
        assert r0[key].keys() == ref.keys(), key
        for k in ref:
            assert torch.equal(r0[key][k], r1[key][k]), (key, k)  # identical on both
            torch.testing.assert_close(r0[key][k], ref[k], rtol=1e-5, atol=1e-6,
                                       msg=f"{key} {k}")
