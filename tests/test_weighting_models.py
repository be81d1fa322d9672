"""Every registered model × every registered weighting for one backward step on tiny inputs, and
two-process DDP: PCGrad's combined gradient is the same on both processes and equals PCGrad of
the gradients of the whole (two-process) batch."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from rsbench.errors import UsageError
from rsbench.models import available_models, build_model
from rsbench.models.base import TaskInfo
from rsbench.training.weighting import WEIGHTINGS, build_weighting

torch.set_num_threads(1)

SCENE = [TaskInfo("merced", "classification", 3), TaskInfo("aid", "classification", 4)]
PSC = [TaskInfo("scene", "classification", 3), TaskInfo("segmentation", "segmentation", 4)]
HSI = [TaskInfo("fertility_class", "classification", 3), TaskInfo("height", "regression", 1),
       TaskInfo("volume", "regression", 1)]
SCENE_TINY = {"backbone": "wrn28_4"}
HSI_TINY = {
    "hsi-mtl": {"width": 4}, "hsi-mtl-baseline": {"width": 4}, "hsi-mtl-r": {"width": 4},
    "hsi-mtl-rd": {"width": 4}, "hsi-mtl-rda": {"width": 4}, "hsi-mtl-dac": {"width": 4},
    "hsi-single-task": {"width": 4}, "unet": {"width": 4, "depth": 3},
    "segnet": {"width": 4, "stages": 3}, "res-unet": {"width": 4, "depth": 3},
    "deeplabv3plus": {"backbone": "resnet18"}, "mottus-3dcnn": {"planes": 2},
    "pham-cnn": {"planes": 2},
    "mstnet": {"dim": 16, "depth": 2, "heads": 2, "decoder": 8, "patch": 9},
    "gsc-vit": {"dims": [16, 8, 8], "groups": 4},
    "spectraldiff": {"channels": [4, 8, 16], "dim": 8, "heads": 2, "dim_head": 4,
                     "patch_size": 5, "diffusion_epochs": 0},
}
SCENE_MODELS = ["mtln", "den", "single-task", "shared-specific", "baseline-attention", "cross-stitch",
                "uncertainty", "mtan", "mmoe", "cgc", "ple", "dselect-k", "ltb"]
# fine-tune is single-task's network from ImageNet weights. LibMTL's architectures hold several
# backbones: a one-unit-per-group WRN keeps them tiny (dselect-k: 3 experts, not a power of two,
# so its penalty on the non-existent expert code runs too)
TINY = {"backbone": "wrn10_1"}
SCENE_OPTIONS = {"mtan": TINY, "mmoe": TINY, "cgc": TINY, "ple": TINY, "ltb": TINY,
                 "dselect-k": {**TINY, "num_experts": 3}}
NOTHING_SHARED = {"single-task", "baseline-attention", "hsi-single-task"}


def test_the_matrix_covers_every_registered_model() -> None:
    covered = set(SCENE_MODELS) | set(HSI_TINY) | {"fine-tune"}
    assert set(available_models()) - {"tiny"} == covered  # a new model needs its tiny options here


def _model_and_batch(name: str, tasks):
    torch.manual_seed(0)
    if name in HSI_TINY:
        model = build_model(name, tasks, in_channels=8, **HSI_TINY[name])
        x = torch.randn(2, 8, 9, 9)
    else:
        model = build_model(name, tasks, **SCENE_OPTIONS.get(name, SCENE_TINY))
        x = torch.randn(2, 3, 32, 32)
        if name == "ltb":
            model.set_epoch(1)  # past the warm-up: the branching logits learn
    return model, x


def _losses(model, x, tasks) -> dict[str, torch.Tensor]:
    out = model(x, [t.name for t in tasks])
    losses = {}
    for t in tasks:
        o = out[t.name]
        if t.type == "regression":
            losses[t.name] = F.l1_loss(o.float(), torch.zeros_like(o.float()))
        else:
            shape = (o.shape[0], *o.shape[2:])
            target = torch.arange(o.shape[0] * max(1, o[0, 0].numel())).reshape(shape)
            losses[t.name] = F.cross_entropy(o.float(), target % t.num_outputs)
    return losses


@pytest.mark.parametrize("name", SCENE_MODELS + sorted(HSI_TINY))
def test_every_model_takes_every_weighting(name: str) -> None:
    tasks = HSI if name in HSI_TINY else (PSC if name == "mtln" else SCENE)
    model, x = _model_and_batch(name, tasks)
    model.train()
    shared_ids = {id(p) for p in model.shared_parameters()}
    assert bool(shared_ids) == (name not in NOTHING_SHARED)
    reached = None
    for wname in sorted(WEIGHTINGS):
        w = build_weighting(wname, [t.name for t in tasks], {t.name: t.type for t in tasks})
        if wname == "gradnorm" and name in NOTHING_SHARED:
            with pytest.raises(UsageError, match="GradNorm does not apply"):
                w.select_shared(model)
            continue
        shared = w.select_shared(model)
        model.zero_grad(set_to_none=True)
        w.backward(_losses(model, x, tasks), shared, torch.amp.GradScaler("cpu", enabled=False))
        got = {id(p) for p in model.parameters() if p.grad is not None}
        assert all(torch.isfinite(p.grad).all() for p in model.parameters()
                   if p.grad is not None), wname
        if reached is None:
            reached = got
        assert got == reached, wname  # every method reaches what the plain sum reaches
    assert shared_ids <= reached | {id(p) for p in model.parameters() if not p.requires_grad}


# ------------------------------------------------------------------------------------------
# DDP: two gloo processes, PCGrad
# ------------------------------------------------------------------------------------------


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = torch.nn.Linear(3, 4)
        self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(4, 1), "b": torch.nn.Linear(4, 1)})
        self.heads["b"].load_state_dict(self.heads["a"].state_dict())

    def forward(self, x):
        z = torch.tanh(self.shared(x))
        return {k: h(z).squeeze(1) for k, h in self.heads.items()}


def _data(rank: int):
    g = torch.Generator().manual_seed(100 + rank)
    x = torch.randn(6, 3, generator=g)
    # equal heads and opposite targets make the two tasks' shared gradients conflict
    return x, {"a": 3 * x.sum(1), "b": -3 * x.sum(1)}


def _task_losses(out, y):
    return {k: F.mse_loss(out[k], y[k]) for k in out}


def _ddp_worker(rank: int, world: int, port: int, result_dir: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    net = _Net()
    ddp = torch.nn.parallel.DistributedDataParallel(net, find_unused_parameters=True)
    w = build_weighting("pcgrad", ["a", "b"], {"a": "regression", "b": "regression"})
    w.reseed(0)
    x, y = _data(rank)
    w.backward(_task_losses(ddp(x), y), list(net.shared.parameters()),
               torch.amp.GradScaler("cpu", enabled=False))
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    torch.save(grads, os.path.join(result_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_pcgrad_under_ddp_combines_the_global_batch_gradients(tmp_path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2)
    g0 = torch.load(tmp_path / "rank0.pt")
    g1 = torch.load(tmp_path / "rank1.pt")
    for k in g0:
        assert torch.equal(g0[k], g1[k]), k  # identical on both processes

    # by hand: each task's gradient averaged over the two processes' batches, then PCGrad
    torch.manual_seed(0)
    net = _Net()
    shared = list(net.shared.parameters())
    per_task = {"a": [], "b": []}
    heads = {"a": [], "b": []}
    for rank in range(2):
        x, y = _data(rank)
        losses = _task_losses(net(x), y)
        for k in ("a", "b"):
            gs = torch.autograd.grad(losses[k], shared + list(net.heads[k].parameters()),
                                     retain_graph=True)
            per_task[k].append(torch.cat([g.reshape(-1) for g in gs[:2]]))
            heads[k].append(gs[2])
    ga = (per_task["a"][0] + per_task["a"][1]) / 2
    gb = (per_task["b"][0] + per_task["b"][1]) / 2
    assert ga @ gb < 0  # the case PCGrad changes
    pa = ga - (ga @ gb) / (gb @ gb) * gb
    pb = gb - (gb @ ga) / (ga @ ga) * ga
    expected = pa + pb
    got = torch.cat([g0["shared.weight"].reshape(-1), g0["shared.bias"]])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # a head gets its own task's gradient, averaged by DDP's reducer
    torch.testing.assert_close(g0["heads.a.weight"], (heads["a"][0] + heads["a"][1]) / 2,
                               rtol=1e-5, atol=1e-6)
