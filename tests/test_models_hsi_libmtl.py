"""LibMTL's architectures (mtan, mmoe, cgc, ple, dselect-k, ltb) over the HSI paper's encoder,
their build on TAIGA: dense and centre outputs, the encoder and heads being hsi-mtl's (same
parameters, same outputs from the same weights), each method's arithmetic checked against
known answers (one-hot gates pick one expert, saturated masks pass the shared features, the
identity tree is one network per task, gradient reach), every weighting, learning a dense
task, and `rsbench run taiga` / `taiga-centre` end to end with the report's rows and names."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rsbench.errors import UsageError
from rsbench.models import available_models, build_model, model_label
from rsbench.models.base import TaskInfo
from rsbench.models.hsi_params import BANDS, TAIGA_TASKS, hsi_architectures, size_of
from rsbench.models.hsi_stages import HsiArchitecture, HsiEncoder
from rsbench.models.paper_params import other_models
from rsbench.training.config import load_benchmark
from rsbench.training.weighting import WEIGHTINGS, build_weighting

torch.set_num_threads(1)

HSI = [TaskInfo("fertility_class", "classification", 3), TaskInfo("height", "regression", 1),
       TaskInfo("volume", "regression", 1)]
NAMES = [t.name for t in HSI]
MODELS = ["mtan", "mmoe", "cgc", "ple", "dselect-k", "ltb"]
LABELS = {"mtan": "MTAN", "mmoe": "MMoE", "cgc": "CGC", "ple": "PLE", "dselect-k": "DSelect-k",
          "ltb": "LTB"}
FEW = {"mmoe": {"num_experts": 2}, "dselect-k": {"num_experts": 3}}  # fewest experts


def _build(name: str, tasks=HSI, per_pixel: bool | None = True, width: int = 2, **options):
    torch.manual_seed(0)
    return build_model(name, tasks, in_channels=4, per_pixel=per_pixel, width=width,
                       **{**FEW.get(name, {}), **options})


def _x(n: int = 2, side: int = 7) -> torch.Tensor:
    return torch.randn(n, 4, side, side, generator=torch.Generator().manual_seed(1))


def _decoded(model, stages, task: str, size) -> torch.Tensor:
    """hsi-mtl's path for one task, written out: its type's decoder, then its 1×1 head."""
    path = "regression" if model.tasks[task].type == "regression" else "classification"
    h = model.decoders[path](stages[2], [stages[1], stages[0]])
    return model.heads(h, [task], size)[task]


# ------------------------------------------------------------------------------------------
# building on TAIGA
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("per_pixel", [True, None], ids=["per-pixel", "centre"])
def test_outputs_are_hsi_mtls_in_both_protocols(name, per_pixel) -> None:
    model = _build(name, per_pixel=per_pixel)
    ref = build_model("hsi-mtl", HSI, in_channels=4, per_pixel=bool(per_pixel), width=2)
    x = _x()
    want = {t: o.shape for t, o in ref.eval()(x, NAMES).items()}
    assert want["fertility_class"] == ((2, 3, 7, 7) if per_pixel else (2, 3))
    for train in (True, False):
        model.train(train)
        out = model(x, NAMES)
        assert {t: o.shape for t, o in out.items()} == want
        assert all(torch.isfinite(o).all() for o in out.values())
    assert set(model(x, ["volume"])) == {"volume"}


def test_taiga_configs_build_them_over_the_hsi_encoder() -> None:
    for bench, per_pixel in (("taiga", True), ("taiga-centre", False)):
        options = load_benchmark(bench, {})["model_options"] or {}  # what `rsbench run` passes
        for name in MODELS:
            with torch.device("meta"):
                model = build_model(name, HSI, in_channels=BANDS, **options)
            assert isinstance(model, HsiArchitecture) and model.per_pixel is per_pixel, name
            assert model.width == 128  # hsi-mtl's default
    for name in MODELS:
        assert isinstance(_build(name, backbone="hsi"), HsiArchitecture)
        image = build_model(name, HSI[:1], backbone="wrn10_1", **FEW.get(name, {}))
        assert not isinstance(image, HsiArchitecture)
    # the msc/psc params table still lists them (their backbone defaults to the benchmark's)
    assert set(MODELS) <= set(other_models(()))


def test_mismatched_options_are_one_line_usage_errors() -> None:
    with pytest.raises(UsageError, match="'width' sets the HSI encoder, not backbone") as err:
        build_model("mmoe", HSI, backbone="wrn10_1", width=8)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="no ImageNet weights for the HSI encoder"):
        build_model("ltb", HSI, in_channels=4, weights="imagenet")
    with pytest.raises(UsageError, match="num_shared must be at least 1"):
        _build("cgc", num_shared=0)
    with pytest.raises(UsageError, match="expects \\(batch, 4, H, W\\)"):
        _build("mtan")(torch.zeros(1, 5, 7, 7), NAMES)


def test_encoder_and_heads_are_hsi_mtls() -> None:
    mtl = build_model("hsi-mtl", HSI, in_channels=4, width=3).eval()
    enc = HsiEncoder(4, width=3).eval()
    keys = {k for k in mtl.state_dict() if k.split(".")[0] in dict(enc.named_children())}
    enc.load_state_dict({k: mtl.state_dict()[k] for k in keys})  # strict: the same modules
    x = _x()
    with torch.no_grad():
        z, (e2, e1) = mtl.encode(x)
        stages = enc(x)
    for got, want in zip(stages, (e1, e2, z)):
        torch.testing.assert_close(got, want)
    # at TAIGA's default size: 4 of hsi-mtl's encoders under MMoE, and hsi-mtl's decoders
    ref = _meta("hsi-mtl").parameter_breakdown()
    mmoe = _meta("mmoe").parameter_breakdown()
    assert mmoe["experts"] == 4 * ref["shared encoder + attention"]
    for part in ("classification decoder", "regression decoder", "task heads"):
        assert mmoe[part] == ref[part]
    gates = 13 * (BANDS * 8 * 8 * 4 + 4)  # a softmax gate per task on the window pooled to 8x8
    assert size_of("mmoe")[0] == mmoe["total"] == ref["total"] + 3 * ref[
        "shared encoder + attention"] + gates


def _meta(name: str):
    with torch.device("meta"):
        return build_model(name, list(TAIGA_TASKS), in_channels=BANDS)


def test_params_rows_and_report_names() -> None:
    assert [(n, label) for n, label, _ in hsi_architectures()] == sorted(LABELS.items())
    assert {n: model_label(n) for n in MODELS} == LABELS
    assert model_label("hsi-mtl") == "hsi-mtl"  # no label registered: the name
    from rsbench.reports.table import method_label

    assert method_label("mmoe+pcgrad") == "MMoE+pcgrad" and method_label("mtln") == "mtln"


# ------------------------------------------------------------------------------------------
# each method's arithmetic
# ------------------------------------------------------------------------------------------


def test_decoding_tasks_together_is_decoding_each_alone() -> None:
    model = _build("mmoe").eval()
    x = _x()
    with torch.no_grad():
        both = model(x, ["height", "volume"])
        for t in ("height", "volume"):
            torch.testing.assert_close(both[t], model(x, [t])[t])


def test_mmoe_one_hot_gate_is_that_experts_stages_decoded() -> None:
    model = _build("mmoe").eval()
    with torch.no_grad():
        model.gates["height"].linear.weight.zero_()
        model.gates["height"].linear.bias.copy_(torch.tensor([-50.0, 50.0]))  # expert 1
        x = _x()
        got = model(x, ["height"])["height"]
        want = _decoded(model, model.experts[1](x), "height", x.shape[-2:])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(model.last_gates["height"], torch.tensor([[0.0, 1.0]] * 2))


def test_mtan_saturated_masks_pass_the_shared_stages() -> None:
    model = _build("mtan").eval()
    w = model.width
    per_task = sum(cin * c + c + 2 * c + c * c + c + 2 * c  # two 1x1 convs + BNs
                   for cin, c in ((2 * w, 2 * w), (8 * w, 4 * w), (16 * w, 8 * w)))
    assert model.parameter_breakdown()["attention_per_task"] == per_task
    with torch.no_grad():
        for module in model.attention["volume"]:
            module[4].weight.zero_()
            module[4].bias.fill_(50.0)  # sigmoid(50) = 1 in float32: the mask passes all
        x = _x()
        got = model(x, ["volume"])["volume"]
        want = _decoded(model, model.backbone(x), "volume", x.shape[-2:])
    torch.testing.assert_close(got, want)


def test_cgc_task_reaches_shared_and_own_experts_only() -> None:
    model = _build("cgc").train()
    model(_x(), ["height"])["height"].sum().backward()
    assert all(p.grad is not None for p in model.shared_experts.parameters())
    assert all(p.grad is not None for p in model.task_experts["height"].parameters())
    assert all(p.grad is None for p in model.task_experts["volume"].parameters())
    assert {id(p) for p in model.shared_parameters()} == {
        id(p) for p in model.shared_experts.parameters()}


def test_ple_shared_gate_lets_every_task_reach_the_lower_task_experts() -> None:
    model = _build("ple").train()
    assert len(model.shared_gates) == 2  # three stages
    assert model.shared_gates[0].linear.out_features == 1 + 3  # shared + every task's expert
    model(_x(), ["height"])["height"].sum().backward()
    other = model.task_experts["volume"][0]
    assert other.stem[0].weight.grad is not None  # level 0: via the shared gate
    assert all(p.grad is None for p in other.attention.parameters())  # its last level: not
    shared = {id(p) for p in model.shared_parameters()}
    assert id(other.stem[0].weight) in shared and id(other.attention.spatial.weight) not in shared
    assert id(model.task_gates["volume"][0].linear.weight) in shared
    assert id(model.task_gates["volume"][-1].linear.weight) not in shared


def test_dselect_k_adds_its_regulariser_once_per_training_pass() -> None:
    model = _build("dselect-k").train()
    model(_x(), NAMES)
    reg = model.auxiliary_loss({})
    assert reg is not None and float(reg.detach()) > 0  # 3 experts: the absent code's penalty
    assert model.auxiliary_loss({}) is None
    model.eval()(_x(), NAMES)
    assert model.auxiliary_loss({}) is None


def test_ltb_schedule_runs_over_taigas_150_epochs() -> None:
    model = _build("ltb").train()
    assert model.schedule_epochs == load_benchmark("taiga")["epochs"] == 150
    model.set_epoch(1)
    assert model.warming_up()  # 1 < 150/100
    model.set_epoch(2)
    assert not model.warming_up() and model.temperature() == pytest.approx(7.5 / math.sqrt(3))
    c = model.choices()
    c.sum().backward()
    assert model.alpha.grad is not None
    again = _build("ltb").train()
    again.load_state_dict(model.state_dict())  # as a resumed run: seed, draws and epoch
    torch.testing.assert_close(again.choices(), model.choices())


def test_ltb_identity_tree_is_one_network_per_task() -> None:
    model = _build("ltb", epochs=2)
    model.set_epoch(1)
    with torch.no_grad():
        model.alpha.copy_(100.0 * torch.eye(3).expand_as(model.alpha))  # child k <- parent k
    x = _x()
    for train in (True, False):  # a sample (margin 100 beats any Gumbel noise), then the argmax
        model.train(train)
        with torch.no_grad():
            got = model(x, ["volume"])["volume"]
            want = _decoded(model, model.nodes[2](x), "volume", x.shape[-2:])
        torch.testing.assert_close(got, want)
    assert model.tree() == [[0, 1, 2]] * 2


# ------------------------------------------------------------------------------------------
# weightings and learning
# ------------------------------------------------------------------------------------------


def _losses(out) -> dict[str, torch.Tensor]:
    target = torch.arange(out["fertility_class"][:, 0].numel()).reshape(
        out["fertility_class"][:, 0].shape) % 3
    return {"fertility_class": F.cross_entropy(out["fertility_class"].float(), target),
            **{t: F.l1_loss(out[t].float(), torch.zeros_like(out[t].float()))
               for t in ("height", "volume")}}


@pytest.mark.parametrize("name", MODELS)
def test_every_weighting_steps_every_architecture(name) -> None:
    model = _build(name, **({"epochs": 2} if name == "ltb" else {})).train()
    if name == "ltb":
        model.set_epoch(1)  # branching: alpha learns
    x = _x()
    reached = None
    for wname in sorted(WEIGHTINGS):
        w = build_weighting(wname, NAMES, {t.name: t.type for t in HSI})
        shared = w.select_shared(model)
        model.zero_grad(set_to_none=True)
        w.backward(_losses(model(x, NAMES)), shared, torch.amp.GradScaler("cpu", enabled=False))
        got = {id(p) for p in model.parameters() if p.grad is not None}
        assert all(torch.isfinite(p.grad).all() for p in model.parameters()
                   if p.grad is not None), wname
        reached = got if reached is None else reached
        assert got == reached, wname  # every method reaches what the plain sum reaches
    assert {id(p) for p in model.shared_parameters()} <= reached


def _dense_batch(gen: torch.Generator, n: int):
    """Windows of 3x3 blocks of 3x3 equal pixels plus noise: the class of a pixel is the sign
    of its block's band 0, its value its block's band 1 (a dense read-out recovers both)."""
    blocks = F.interpolate(torch.randn(n, 4, 3, 3, generator=gen), size=(9, 9), mode="nearest")
    x = blocks + 0.3 * torch.randn(n, 4, 9, 9, generator=gen)
    return x, {"sign": (blocks[:, 0] > 0).long(), "level": blocks[:, 1]}


@pytest.mark.parametrize("name", MODELS)
def test_every_architecture_learns_a_dense_class_and_value(name) -> None:
    tasks = [TaskInfo("sign", "classification", 2), TaskInfo("level", "regression", 1)]
    # ltb: warm-up in epoch 0 (10 steps), then branching
    model = _build(name, tasks, width=4, **({"epochs": 2} if name == "ltb" else {}))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for step in range(40):
        if name == "ltb":
            model.set_epoch(int(step >= 10))
        x, y = _dense_batch(gen, 8)
        out = model.train()(x, ["sign", "level"])
        loss = F.cross_entropy(out["sign"], y["sign"]) + F.l1_loss(out["level"], y["level"])
        extra = getattr(model, "auxiliary_loss", lambda _: None)(y)
        opt.zero_grad()
        (loss + (extra if extra is not None else 0)).backward()
        opt.step()
    x, y = _dense_batch(torch.Generator().manual_seed(1), 32)
    with torch.no_grad():
        out = model.eval()(x, ["sign", "level"])
    # measured (seeds 0-1, threads 1-2): accuracy 0.83-0.90, MAE 0.29-0.44 of a 0.79 baseline
    assert (out["sign"].argmax(1) == y["sign"]).float().mean() >= 0.75  # chance: 1/2
    baseline = (y["level"] - y["level"].median()).abs().mean()  # the best constant
    assert (out["level"] - y["level"]).abs().mean() <= 0.7 * baseline


# ------------------------------------------------------------------------------------------
# rsbench run taiga / taiga-centre, and the report
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taiga(tmp_path_factory) -> Path:
    from rsbench.datasets.builders.taiga import build_taiga
    from rsbench.datasets.synth.taiga import synth_taiga

    root = tmp_path_factory.mktemp("taiga_libmtl")
    synth_taiga(root / "src", size=(96, 96), bands=8, stands=40, seed=5)
    build_taiga(root / "src", root / "data", patch=7, stride=3, bands="0:8",
                test_fraction=0.3, val_fraction=0.1)
    return root


RUNS = [("taiga", m) for m in MODELS] + [("taiga-centre", "mmoe"), ("taiga-centre", "ltb")]


@pytest.fixture(scope="module")
def runs(taiga: Path) -> Path:
    from rsbench.cli.main import main
    from rsbench.training import hsi_metrics

    out = taiga / "runs"
    with pytest.MonkeyPatch.context() as mp:  # the 24 figures per run: most of its seconds
        for meter in (hsi_metrics.HsiClassificationMeter, hsi_metrics.HsiRegressionMeter):
            mp.setattr(meter, "plot", lambda *args, **kwargs: None)
        for bench, name in RUNS:
            assert main(["--quiet", "run", bench, "--model", name, "--data",
                         str(taiga / "data"), "--out", str(out), "--epochs", "1",
                         "--batch-size", "16", "--max-train-batches", "1", "--workers", "0",
                         "--device", "cpu", "--set", "model_options.width=2"]) == 0, name
    return out


@pytest.mark.parametrize("bench,name", RUNS)
def test_cli_run_trains_and_scores_on_taiga(runs: Path, bench: str, name: str) -> None:
    (run,) = [p.parent for p in (runs / bench / name).rglob("metrics.json")]
    m = json.loads((run / "metrics.json").read_text())
    assert m["complete"] and m["method"] == name and len(m["tasks"]) == 13
    assert m["parameters"]["total"] == m["parameters"]["breakdown"]["total"] > 0
    assert "regression decoder" in m["parameters"]["breakdown"]
    assert all(r["pixels_scored"] > 0 for r in m["tasks"].values())
    conf = json.loads((run / "config.json").read_text())
    kwargs = conf["model_spec"]["kwargs"]
    assert "backbone" not in kwargs and kwargs["width"] == 2 and kwargs["in_channels"] == 8
    assert kwargs.get("per_pixel") is (True if bench == "taiga" else None)
    # this model's unstated choices on TAIGA, and no other model's
    prefixed = {k.split(".")[0] for k in conf["unstated"]} & set(available_models())
    assert prefixed == {name} and f"{name}.hsi" in conf["unstated"]


def test_centre_runs_score_one_pixel_per_window_and_dense_runs_more(runs: Path) -> None:
    def scored(bench: str, name: str) -> int:
        (path,) = (runs / bench / name).rglob("metrics.json")
        return json.loads(path.read_text())["tasks"]["mean_height"]["pixels_scored"]

    centre, dense = scored("taiga-centre", "mmoe"), scored("taiga", "mmoe")
    assert 0 < centre < dense  # the test windows' centres; every covered labelled pixel
    assert scored("taiga-centre", "ltb") == centre


def test_report_lists_the_runs_under_their_names(runs: Path) -> None:
    from rsbench.reports.runs import collect_runs
    from rsbench.reports.table import build_table
    from rsbench.reports.tables import get_table

    table = build_table(get_table("taiga-comparison"), collect_runs(runs))
    # each row's label, less the settings these tiny runs differ in (epochs=1, width=2, ...)
    ours = [r.label.replace(f" ({r.setting})", "") for r in table.rows
            if r.source == "ours" and r.seeds]
    assert ours == ["CGC", "DSelect-k", "LTB", "LTB (centre pixel)", "MMoE",
                    "MMoE (centre pixel)", "MTAN", "PLE"]  # after the paper's methods (no runs)


def test_ltb_resumed_taiga_run_draws_the_same_trees(taiga: Path, tmp_path, monkeypatch) -> None:
    from rsbench.training import checkpoint as ckpt_mod
    from rsbench.training import hsi_metrics
    from rsbench.training.runner import RunRequest, run_benchmark

    for meter in (hsi_metrics.HsiClassificationMeter, hsi_metrics.HsiRegressionMeter):
        monkeypatch.setattr(meter, "plot", lambda *args, **kwargs: None)
    cfg = load_benchmark("taiga", {"epochs": 3, "batch_size": 16})
    cfg["model_options"].update(width=2, epochs=2)  # warm-up in epoch 0, branching in 1 and 2
    data = str(taiga / "data")
    full = run_benchmark(cfg, RunRequest(model="ltb", data=data, out=str(tmp_path / "a"),
                                         max_train_batches=2, device="cpu", workers=0))
    real_save = ckpt_mod.save_checkpoint
    calls = {"n": 0}

    def dying_save(path, payload):
        real_save(path, payload)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # stopped right after epoch 2's checkpoint

    monkeypatch.setattr(ckpt_mod, "save_checkpoint", dying_save)
    req = RunRequest(model="ltb", data=data, out=str(tmp_path / "b"), max_train_batches=2,
                     device="cpu", workers=0)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(cfg, req)
    monkeypatch.setattr(ckpt_mod, "save_checkpoint", real_save)
    req.resume = True
    resumed = run_benchmark(cfg, req)
    assert resumed["tasks"]["mean_height"]["rmse"] == full["tasks"]["mean_height"]["rmse"]
    sa, sb = (torch.load(next((tmp_path / d).rglob("checkpoint.pt")), weights_only=False)["model"]
              for d in ("a", "b"))
    for k, v in sa.items():
        assert torch.equal(v, sb[k]), k
    # two branching epochs of 2 steps (all 13 tasks in one call) drew 4 trees; alpha moved
    assert int(sa["draws"]) == 4 and not torch.equal(sa["alpha"], torch.ones_like(sa["alpha"]))
