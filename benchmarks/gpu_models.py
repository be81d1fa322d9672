"""GPU acceptance check, part 1: every registered model and every registered weighting.

Each model is checked on the input family of each benchmark a paper table plans it for
(``rsbench.reports.tables``: MSC scenes, PSC scenes + masks, TAIGA per-pixel windows, TAIGA
centre pixels), with the runner's own pieces: the benchmark config's input preparation
(``make_prep``: uint8/int16 NHWC -> normalised NCHW, channels-last), losses (``make_loss``),
``GroupForward``, ``autocast``, ``make_scaler`` and ``backward_step``. One training step in
fp32 (contiguous) and one in the runner's GPU setting (bf16 autocast + channels-last) start
from the same weights on the same batch; then one evaluation pass in each. Used by
``gpu_check.py``.
"""

from __future__ import annotations

import copy
import inspect
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from rsbench.models import available_models, build_model, model_factories
from rsbench.models.base import TaskInfo
from rsbench.models.hsi_params import TAIGA_TASKS
from rsbench.models.paper_params import BENCHMARKS
from rsbench.training.config import load_benchmark, task_settings
from rsbench.training.data import TaskGroup, make_prep
from rsbench.training.device import autocast, make_scaler, memory_format_
from rsbench.training.loop import GroupForward, auxiliary_loss, backward_step, prepare_step
from rsbench.training.losses import make_loss
from rsbench.training.taiga import NORM_MIN, NORM_RANGE
from rsbench.training.weighting import available_weightings, build_weighting

# benchmark a table plans -> the input family it is checked with
FAMILY = {"msc": "msc", "mini-msc": "msc", "transfer-eurosat": "msc",
          "transfer-patternnet": "msc", "psc5": "psc5", "psc15": "psc5", "taiga": "taiga",
          "taiga-cs": "taiga", "taiga-focal-nw": "taiga", "taiga-centre": "taiga-centre"}
FAMILIES = ("msc", "psc5", "taiga", "taiga-centre")
# --tiny: smaller widths for CPU, smallest first (sizes only: a model missing here runs at its
# default size, after these)
TINY = {
    "hsi-mtl": {"width": 4}, "hsi-mtl-baseline": {"width": 4}, "hsi-mtl-r": {"width": 4},
    "hsi-mtl-rd": {"width": 4}, "hsi-mtl-rda": {"width": 4}, "hsi-mtl-dac": {"width": 4},
    "hsi-single-task": {"width": 4}, "unet": {"width": 4, "depth": 3},
    "segnet": {"width": 4, "stages": 3}, "res-unet": {"width": 4, "depth": 3},
    "mottus-3dcnn": {"planes": 2}, "pham-cnn": {"planes": 2},
    "mstnet": {"dim": 16, "depth": 2, "heads": 2, "decoder": 8, "patch": 9},
    "gsc-vit": {"dims": [16, 8, 8], "groups": 4},
    "spectraldiff": {"channels": [4, 8, 16], "dim": 8, "heads": 2, "dim_head": 4,
                     "patch_size": 5, "diffusion_epochs": 0},
    "deeplabv3plus": {"backbone": "resnet18"},  # the largest of them: last
}
BF16_TOLERANCE = (0.05, 0.02)  # |bf16 - fp32| <= rel * |fp32| + abs, per task loss


@dataclass(frozen=True)
class Shape:
    """Input sizes of the check: scene side and batch, HSI window side, bands and batch."""

    side: int = 224
    batch: int = 8
    window: int = 45
    bands: int = 110
    hsi_batch: int = 8
    tiny: bool = False


def planned_families(name: str) -> tuple[list[str], str]:
    """The input families of the benchmarks the paper tables plan ``name`` for (a note when
    no table plans it: then every family is tried and the first that builds is kept)."""
    from rsbench.reports.tables import TABLES, get_table

    benches = {r.benchmark for t in TABLES for r in get_table(t).runs if r.model == name}
    fams = [f for f in FAMILIES if f in {FAMILY.get(b) for b in benches}]
    return (fams, "") if fams else (list(FAMILIES), "no table plans it: first family that "
                                                    "builds")


def _tasks(family: str) -> tuple[list[TaskInfo], list[list[str]]]:
    if family == "msc":
        tasks = list(BENCHMARKS["msc"].tasks)
        return tasks, [[t.name] for t in tasks]
    tasks = list(BENCHMARKS["psc5"].tasks if family == "psc5" else TAIGA_TASKS)
    return tasks, [[t.name for t in tasks]]


def _spec(t: TaskInfo, hsi: bool) -> dict:
    spec = {"type": t.type, "classes": [f"c{i}" for i in range(t.num_outputs)]}
    if hsi and t.type == "classification":
        spec.update(ignore_index=255, class_weights=[1.0] * t.num_outputs)
    return spec


def make_batches(family: str, tasks: list[TaskInfo], groups: list[list[str]], shape: Shape,
                 seed: int = 0) -> list[dict]:
    """One synthetic CPU batch per group, as the family's batch reader yields it."""
    g = torch.Generator().manual_seed(seed)
    info = {t.name: t for t in tasks}
    out = []
    for names in groups:
        if family in ("msc", "psc5"):
            n, s = shape.batch, shape.side
            b = {"image": torch.randint(0, 256, (n, s, s, 3), generator=g, dtype=torch.uint8)}
            for t in names:
                k = info[t].num_outputs
                b[t] = (torch.randint(0, k, (n, s, s), generator=g, dtype=torch.uint8)
                        if info[t].type == "segmentation"
                        else torch.randint(0, k, (n,), generator=g))
        else:
            n, p, bands = shape.hsi_batch, shape.window, shape.bands
            b = {"image": torch.randint(0, 5000, (n, p, p, bands), generator=g,
                                        dtype=torch.int16),
                 NORM_MIN: torch.zeros(bands), NORM_RANGE: torch.full((bands,), 5000.0)}
            dense = (n, p, p) if family == "taiga" else (n,)
            for t in names:
                if info[t].type == "classification":
                    y = torch.randint(0, info[t].num_outputs, dense, generator=g)
                    y.view(-1)[::7] = 255  # unlabelled pixels
                else:
                    y = torch.rand(dense if family == "taiga" else (n, 1), generator=g)
                    y.view(-1)[::5] = math.nan
                b[t] = y
        out.append(b)
    return out


def model_options(name: str, family: str, cfg: dict, shape: Shape, tmp: Path) -> dict:
    """The constructor options a run of ``name`` on this family gets (smaller with --tiny)."""
    factory = model_factories()[name]
    params = inspect.signature(factory).parameters
    opts: dict = {}
    if family in ("taiga", "taiga-centre"):
        opts.update(cfg.get("model_options") or {}, in_channels=shape.bands)
    elif cfg.get("backbone"):
        opts["backbone"] = "wrn28_4" if shape.tiny else cfg["backbone"]
    if shape.tiny:
        opts.update(TINY.get(name, {}))
    w = params.get("weights")
    if w is not None and w.default:  # needs ImageNet weights (fine-tune): a local random file
        import torchvision

        opts["backbone"] = "resnet34"
        path = tmp / "resnet34-random.pth"
        if not path.exists():
            torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
        opts["weights"] = str(path)
    return opts


def _losses(cfg: dict, tasks: list[TaskInfo], hsi: bool) -> dict[str, Callable]:
    return {t.name: make_loss(task_settings(cfg, t.name, t.type), _spec(t, hsi)) for t in tasks}


def train_step(model, groups, batches, prep, losses, device, amp, weighting_name="equal",
               seed: int = 0, scaler=None) -> dict[str, float]:
    """One step of the training loop (same pieces, same order); the task losses before it.
    With an active (fp16) ``scaler``, an overflowing step is skipped, as in training."""
    names = [t for g in groups for t in g]
    types = {t: model.tasks[t].type for t in names} if hasattr(model, "tasks") else {}
    weighting = build_weighting(weighting_name, names, types).to(device)
    weighting.reseed(seed)
    shared = weighting.select_shared(model)
    step = GroupForward(model, [TaskGroup(str(i), list(g)) for i, g in enumerate(groups)])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad]
                           + list(weighting.parameters()), lr=1e-4)
    scaler = scaler if scaler is not None else make_scaler(device, amp)
    set_epoch = getattr(model, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(0)
    step.train()
    gen = torch.Generator(device=device).manual_seed(seed)
    xs, targets = prepare_step(batches, prep, gen)
    torch.manual_seed(seed)  # dropout, DEN's sampled policy: the same in both precisions
    with autocast(device, amp):
        outputs = step(xs, list(range(len(groups))))
    task_losses = {t: losses[t](outputs[t], targets[t]) for t in names if t in outputs}
    extra = auxiliary_loss(model, targets)
    opt.zero_grad(set_to_none=True)
    backward_step(weighting, shared, task_losses, scaler, extra)
    bad = [] if scaler.is_enabled() else [  # scaled fp16 gradients may overflow: skipped
        n for n, p in model.named_parameters() if p.grad is not None
        and not torch.isfinite(p.grad).all()]
    scaler.step(opt)
    scaler.update()
    if bad:
        raise FloatingPointError(f"non-finite gradient in {bad[0]} ({len(bad)} parameters)")
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise FloatingPointError("non-finite parameter after the step")
    return {t: float(v.detach()) for t, v in task_losses.items()}


def eval_pass(model, groups, batches, prep, losses, device, amp) -> dict[str, float]:
    """One evaluation forward (eval mode, no grad) on the batches; its task losses."""
    model.eval()
    out = {}
    with torch.no_grad():
        for names, b in zip(groups, batches):
            x, targets = prep(b, train=False)
            with autocast(device, amp):
                o = model(x, tasks=names)
            for t in names:
                if not torch.isfinite(o[t].float()).all():
                    raise FloatingPointError(f"non-finite evaluation output for {t}")
                out[t] = float(losses[t](o[t].float(), targets[t]))
    model.train()
    return out


def check_model(name: str, family: str, device: torch.device, shape: Shape, tmp: Path) -> dict:
    """fp32 and bf16 + channels-last: one training step and one evaluation from the same
    weights on the same batch; the largest bf16-vs-fp32 loss difference."""
    bench = {"msc": "msc", "psc5": "psc5", "taiga": "taiga", "taiga-centre": "taiga-centre"}
    overrides = {} if family.startswith("taiga") else {"input_size": shape.side}
    cfg = load_benchmark(bench[family], overrides)
    tasks, groups = _tasks(family)
    hsi = family.startswith("taiga")
    batches = make_batches(family, tasks, groups, shape)
    losses = _losses(cfg, tasks, hsi)
    types = {t.name: t.type for t in tasks}
    torch.manual_seed(0)
    model = build_model(name, tasks, **model_options(name, family, cfg, shape, tmp))
    init = copy.deepcopy(model.state_dict())
    res: dict = {"model": name, "family": family,
                 "parameters": sum(p.numel() for p in model.parameters())}
    t0 = time.perf_counter()
    bf16 = torch.bfloat16
    for label, amp, cl in (("fp32", None, False), ("bf16_cl", bf16, True)):
        model.load_state_dict(init)
        m = memory_format_(model.to(device), cl)
        prep = make_prep(cfg, device, types, channels_last=cl)
        res[f"{label}_train_loss"] = train_step(m, groups, batches, prep, losses, device, amp)
        res[f"{label}_eval_loss"] = eval_pass(m, groups, batches, prep, losses, device, amp)
        model = m
    d_train = _diff(res["bf16_cl_train_loss"], res["fp32_train_loss"])
    d_eval = _diff(res["bf16_cl_eval_loss"], res["fp32_eval_loss"])
    res.update(bf16_vs_fp32_train=round(d_train, 4), bf16_vs_fp32_eval=round(d_eval, 4),
               seconds=round(time.perf_counter() - t0, 2))
    rel, ab = BF16_TOLERANCE
    # --tiny (2 tiny images): train-mode BatchNorm over a handful of values amplifies bf16
    # rounding far beyond what a real batch sees, so only finiteness is checked there
    res["ok"] = True if shape.tiny else bool(d_train <= 1.0 and d_eval <= 1.0)
    res["tolerance"] = "finite only (--tiny)" if shape.tiny else \
        f"|bf16-fp32| <= {rel}*|fp32| + {ab}"
    model.cpu()
    return res


def _diff(a: dict, b: dict) -> float:
    """max over tasks of |a - b| / (rel·|b| + abs): <= 1 is within the tolerance."""
    rel, ab = BF16_TOLERANCE
    return max((abs(a[t] - b[t]) / (rel * abs(b[t]) + ab) for t in b), default=0.0)


def models_section(device: torch.device, shape: Shape, deadline: float, log) -> dict:
    """Every registered model on every family its tables plan; stops at the deadline."""
    rows, notes = [], {}
    with tempfile.TemporaryDirectory(prefix="gpucheck-") as tmp:
        names = available_models()
        if shape.tiny:  # TINY's models first, in its order (smallest first): most get checked
            order = list(TINY)
            names = sorted(names, key=lambda n: order.index(n) if n in order else len(order))
        for name in names:
            fams, note = planned_families(name)
            if shape.tiny and not note:
                fams = fams[:1]  # --tiny: the first family only
            if note:
                notes[name] = note
            for fam in fams:
                if time.time() > deadline:
                    rows.append({"model": name, "family": fam, "ok": None,
                                 "error": "skipped: section time budget spent"})
                    continue
                try:
                    r = check_model(name, fam, device, shape, Path(tmp))
                except Exception as exc:  # noqa: BLE001 - recorded, the check goes on
                    r = {"model": name, "family": fam, "ok": False, "error": _line(exc)}
                    if note:  # not planned anywhere: try the next family
                        continue
                rows.append(r)
                log(f"  {name} on {fam}: " + ("ok" if r.get("ok") else r.get("error", "FAIL"))
                    + (f" (bf16/fp32 {r['bf16_vs_fp32_train']})" if "seconds" in r else ""))
                if note:
                    break
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return {"rows": rows, "notes": notes, "tolerance": rows[0].get("tolerance") if rows else ""}


def weightings_section(device: torch.device, shape: Shape, deadline: float, log) -> dict:
    """Every registered weighting: two steps in the runner's GPU setting (bf16 +
    channels-last), and on CUDA one fp16 step with the GradScaler; of MTLN on MSC-shaped
    batches (--tiny: of hsi-mtl, width 4, on TAIGA windows: 13 tasks, a tiny network)."""
    family, model = ("taiga", "hsi-mtl") if shape.tiny else ("msc", "mtln")
    cfg = load_benchmark(family, {} if shape.tiny else {"input_size": shape.side})
    tasks, groups = _tasks(family)
    types = {t.name: t.type for t in tasks}
    batches = make_batches(family, tasks, groups, shape)
    losses = _losses(cfg, tasks, shape.tiny)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        opts = model_options(model, family, cfg, shape, Path(tmp))
    base = build_model(model, tasks, **opts)
    init = copy.deepcopy(base.state_dict())
    rows = []
    precisions = [("bf16", torch.bfloat16)] + ([("fp16", torch.float16)]
                                               if device.type == "cuda" else [])
    for name in available_weightings():
        if time.time() > deadline:
            rows.append({"weighting": name, "ok": None, "error": "skipped: time budget"})
            continue
        r: dict = {"weighting": name}
        try:
            for label, dtype in precisions:
                base.load_state_dict(init)
                m = memory_format_(base.to(device), True)
                prep = make_prep(cfg, device, types, channels_last=True)
                before = [p.detach().clone() for p in m.parameters()]
                steps = 2 if label == "bf16" and not shape.tiny else 1
                scaler = make_scaler(device, dtype)
                for s in range(steps):
                    lt = train_step(m, groups, batches, prep, losses, device, dtype,
                                    weighting_name=name, seed=s, scaler=scaler)
                moved = sum(not torch.equal(a, p) for a, p in zip(before, m.parameters()))
                for s in range(4 if label == "fp16" and not moved else 0):  # overflow: skipped
                    lt = train_step(m, groups, batches, prep, losses, device, dtype,
                                    weighting_name=name, seed=s, scaler=scaler)
                    moved = sum(not torch.equal(a, p) for a, p in zip(before, m.parameters()))
                    if moved:
                        break
                if scaler.is_enabled():
                    r[f"{label}_loss_scale"] = float(scaler.get_scale())
                if not moved:
                    raise AssertionError("no parameter changed")
                r[f"{label}_loss"] = round(sum(lt.values()), 4)
                r[f"{label}_params_changed"] = moved
            r["ok"] = True
        except Exception as exc:  # noqa: BLE001 - recorded, the check goes on
            r.update(ok=False, error=_line(exc))
        rows.append(r)
        log(f"  weighting {name}: " + ("ok" if r["ok"] else r["error"]))
    base.cpu()
    return {"rows": rows, "model": f"{model} ({', '.join(f'{k}={v}' for k, v in opts.items())})"}


def _line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
