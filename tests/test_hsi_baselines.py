"""The transformer and diffusion baselines of the HSI paper (MSTNet, GSC-ViT, SpectralDiff):
forward + backward at tiny widths, sizes against Table VII, SpectralDiff's two stages, and one
short `rsbench run taiga` each that fills its cells of the comparison and complexity tables."""

from __future__ import annotations

import json

import pytest
import torch

from rsbench.errors import UsageError
from rsbench.models import build_model
from rsbench.models.gsc_vit import GroupwiseSelfAttention
from rsbench.models.hsi_params import TAIGA_TASKS, size_of, table_vii_paper

torch.set_num_threads(1)
TASKS = list(TAIGA_TASKS)
NAMES = [t.name for t in TASKS]
BANDS = 8
TINY = {
    "mstnet": {"dim": 16, "depth": 2, "heads": 2, "decoder": 8, "patch": 9},
    "gsc-vit": {"dims": [16, 8, 8], "groups": 4},
    "spectraldiff": {"channels": [4, 8, 16], "dim": 8, "heads": 2, "dim_head": 4,
                     "patch_size": 5, "diffusion_epochs": 0},
}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("side", [9, 11])
def test_forward_backward_on_tiny_windows(name: str, side: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, TASKS, in_channels=BANDS, **TINY[name])
    out = model(torch.randn(3, BANDS, side, side), NAMES)
    assert list(out) == NAMES
    for t in TASKS:
        shape = (3,) if t.type == "regression" else (3, t.num_outputs)
        assert tuple(out[t.name].shape) == shape and torch.isfinite(out[t.name]).all()
    sum(o.pow(2).mean() for o in out.values()).backward()
    shared = model.shared_parameters()
    assert shared and all(p.grad is not None for p in shared)


def test_mstnet_predicts_every_pixel_when_asked() -> None:
    model = build_model("mstnet", TASKS, in_channels=BANDS, per_pixel=True, **TINY["mstnet"])
    out = model(torch.randn(2, BANDS, 10, 10), ["soil_class", "mean_dbh"])
    assert out["soil_class"].shape == (2, 2, 10, 10) and out["mean_dbh"].shape == (2, 10, 10)


@pytest.mark.parametrize("name, label", [("mstnet", "MSTNet"), ("spectraldiff", "SpectralDiff")])
def test_sizes_within_ten_percent_of_table_vii(name: str, label: str) -> None:
    paper = table_vii_paper()[label]["params"] * 1e6
    params, _ = size_of(name)
    assert abs(params - paper) <= 0.10 * paper, (name, params, paper)


def test_gsc_vit_keeps_the_published_design() -> None:
    # the authors' code: 1x1 calibration to 256 channels; stages 256->128->64 with 16 groups
    with torch.device("meta"):
        model = build_model("gsc-vit", TASKS, in_channels=110)
    calib = model.calibrate[0]
    assert (calib.in_channels, calib.out_channels) == (110, 256)
    assert [s.gsc[0].out_channels for s in model.stages] == [128, 64]
    assert all(s.gsc[0].groups == 16 for s in model.stages)
    params, _ = size_of("gsc-vit")
    assert params < 1e6  # far below Table VII's 39.19M: said in the table's note


def test_group_attention_over_one_window_is_plain_attention() -> None:
    torch.manual_seed(0)
    attn = GroupwiseSelfAttention(8, heads=1, dim_head=4, window=2, dropout=0.0).eval()
    x = torch.randn(1, 8, 2, 2)
    seq = torch.cat([attn.group_token.view(1, 8, 1), x.flatten(2)], dim=-1)  # token + 4 px
    q, k, v = attn.to_qkv(seq).chunk(3, dim=1)  # (1, 4, 5) each
    w = torch.softmax((q.transpose(1, 2) * 0.5) @ k, dim=-1)  # scale 1/sqrt(4)
    pixels = (w @ v.transpose(1, 2))[:, 1:]  # (1, 4 px, 4)
    expected = attn.to_out(pixels.transpose(1, 2).reshape(1, 4, 2, 2))
    torch.testing.assert_close(attn(x), expected)


def test_spectraldiff_stage_one_trains_the_unet_stage_two_the_classifier() -> None:
    torch.manual_seed(0)
    opts = {**TINY["spectraldiff"], "diffusion_epochs": 1}
    model = build_model("spectraldiff", TASKS, in_channels=BANDS, **opts)
    x = torch.randn(4, BANDS, 9, 9)
    model.set_epoch(0)
    model.train()
    out = model(x, NAMES)
    aux = model.auxiliary_loss()
    assert aux is not None and not any(o.requires_grad for o in out.values())
    aux.backward()
    assert all(p.grad is not None for p in model.unet.parameters())
    assert all(p.grad is None for p in model.classifier.parameters())
    model.zero_grad(set_to_none=True)
    model.set_epoch(1)
    model.train()
    assert not model.unet.training and model.classifier.training  # frozen U-Net, BN included
    out = model(x, NAMES)
    assert model.auxiliary_loss() is None
    sum(o.pow(2).mean() for o in out.values()).backward()
    assert all(p.grad is None for p in model.unet.parameters())
    assert all(p.grad is not None for p in model.classifier.parameters())
    # evaluation is deterministic (features of the window without noise)
    model.eval()
    torch.testing.assert_close(model(x, ["soil_class"]), model(x, ["soil_class"]))


def test_unknown_option_names_the_model() -> None:
    with pytest.raises(UsageError, match="takes no option 'width'"):
        build_model("gsc-vit", TASKS, in_channels=BANDS, width=4)
    for name in ("gsc-vit", "spectraldiff"):  # patch classifiers: centre-pixel protocol only
        with pytest.raises(UsageError, match=f"{name} is a patch classifier.*taiga-centre"):
            build_model(name, TASKS, in_channels=BANDS, per_pixel=True, **TINY[name])


@pytest.fixture(scope="module")
def taiga(tmp_path_factory) -> str:
    from rsbench.datasets.builders.taiga import build_taiga
    from rsbench.datasets.synth.taiga import synth_taiga

    root = tmp_path_factory.mktemp("taiga")
    synth_taiga(root / "src", size=(128, 128), bands=BANDS, stands=60, seed=5)
    build_taiga(root / "src", root / "data", patch=9, stride=5, bands=f"0:{BANDS}",
                test_fraction=0.3, val_fraction=0.05)
    return str(root / "data")


SETS = {
    "mstnet": ["dim=16", "depth=2", "heads=2", "decoder=8", "patch=9"],
    "gsc-vit": ["dims=[16,8,8]", "groups=4"],
    "spectraldiff": ["channels=[4,8,16]", "dim=8", "heads=2", "dim_head=4", "patch_size=5",
                     "diffusion_epochs=1"],
}


@pytest.mark.slow
def test_a_short_run_of_each_fills_its_table_cells(taiga: str, tmp_path, capsys) -> None:
    from rsbench.cli.main import main
    from rsbench.reports.runs import collect_runs
    from rsbench.reports.table import build_table
    from rsbench.reports.tables import get_table

    labels = {"mstnet": "MSTNet", "gsc-vit": "GSC-ViT", "spectraldiff": "SpectralDiff"}
    for name, sets in SETS.items():
        epochs = "2" if name == "spectraldiff" else "1"  # stage 1, then stage 2
        bench = "taiga" if name == "mstnet" else "taiga-centre"  # dense / patch classifiers
        args = ["-q", "run", bench, "--model", name, "--data", taiga, "--epochs", epochs,
                "--batch-size", "8", "--max-train-batches", "2", "--device", "cpu",
                "--workers", "0", "--out", str(tmp_path)]
        for s in sets:
            args += ["--set", f"model_options.{s}"]
        assert main(args) == 0, capsys.readouterr().err
    metrics = sorted(tmp_path.glob("**/spectraldiff/**/metrics.json"))
    assert len(metrics) == 1
    history = (metrics[0].parent / "history.csv").read_text().splitlines()
    assert "loss_auxiliary" in history[0] and len(history) == 3  # stage 1 had a diffusion loss
    runs = collect_runs(tmp_path)
    comparison = build_table(get_table("taiga-comparison"), runs)
    complexity = build_table(get_table("taiga-complexity"), runs)
    for name, label in labels.items():
        # the short run is at non-default settings, so it fills its own labelled row
        rows = [r for r in comparison.rows if r.label.startswith(label)]
        assert any(not r.cells[0].missing for r in rows), label  # its OA
        cxs = [r for r in complexity.rows if r.label.startswith(label)]
        assert any(not cx.cells[0].missing and not cx.cells[1].missing for cx in cxs), \
            label  # params, FLOPs
        assert json.loads(next(tmp_path.glob(f"**/{name}/**/metrics.json")).read_text())[
            "complete"]


@pytest.mark.slow
def test_spectraldiff_resumes_in_the_right_stage(taiga: str, tmp_path, monkeypatch) -> None:
    from rsbench.training import checkpoint as ckpt_mod
    from rsbench.training.config import load_benchmark
    from rsbench.training.runner import RunRequest, run_benchmark

    cfg = load_benchmark("taiga-centre", {"epochs": 2, "batch_size": 8})
    cfg["model_options"].update({**TINY["spectraldiff"], "diffusion_epochs": 1})

    def request(out: str) -> RunRequest:
        return RunRequest(model="spectraldiff", data=taiga, seed=0, out=str(tmp_path / out),
                          device="cpu", workers=0, max_train_batches=2)

    full = run_benchmark(cfg, request("a"))
    real_save = ckpt_mod.save_checkpoint

    def dying_save(path, payload):
        real_save(path, payload)
        raise KeyboardInterrupt  # stopped right after epoch 1 (the diffusion stage)

    monkeypatch.setattr(ckpt_mod, "save_checkpoint", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(cfg, request("b"))
    monkeypatch.setattr(ckpt_mod, "save_checkpoint", real_save)
    req = request("b")
    req.resume = True
    resumed = run_benchmark(cfg, req)
    for t in full["tasks"]:
        assert resumed["tasks"][t] == full["tasks"][t], t
    (ca,), (cb,) = (list((tmp_path / d).glob("**/checkpoint.pt")) for d in ("a", "b"))
    sa = torch.load(ca, weights_only=False)
    sb = torch.load(cb, weights_only=False)
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    # epoch 1 trained the U-Net (a diffusion loss), epoch 2 the classifier (none)
    assert [("loss_auxiliary" in h) for h in sb["history"]] == [True, False]
    assert [h["loss"] for h in sa["history"]] == [h["loss"] for h in sb["history"]]
