"""Parameter counts against the MTLN paper's Table II and "No. parameters" rows (no forward pass:
the models are built on the meta device), checked also against closed-form counts."""

from __future__ import annotations

import csv
import io

import pytest

from rsbench.cli.main import main
from rsbench.models.paper_params import PAPER_TOTALS, TABLE_II, breakdown

M = 1e6


def _close(ours: float, paper: float, tol: float = 0.03) -> bool:
    return abs(ours - paper) <= tol * paper


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout  # weights + bias


def _attention(cin: int, c: int) -> int:
    return _conv(cin, c, 1) + 2 * c + _conv(c, c, 1) + 2 * c  # two 1×1 convs, two BNs


def test_msc_resnet34_mtln_matches_table_ii_within_3_percent():
    ours = breakdown("mtln", "msc")
    paper = TABLE_II["msc"]
    for key in ("shared", "attention_per_task", "extractors", "total"):
        assert _close(ours[key], paper[key]), (key, ours[key], paper[key])
    # torchvision ResNet-34 is 21,797,672 parameters with its 1000-class FC (512*1000 + 1000);
    # the paper's 21.29M shared branch is ResNet-34 without that FC
    assert ours["shared"] == 21_797_672 - 513_000
    # J = 5 blocks (stem, layer1..4) of 64, 64, 128, 256, 512 channels: attention H^1 on the stem
    # alone, H^j on [z_j; E^j(f~_{j-1})] after; extractors E^2..E^5 are 3×3 conv + BN
    chans = [64, 64, 128, 256, 512]
    att = _attention(64, 64) + sum(_attention(2 * c, c) for c in chans[1:])
    ext = sum(_conv(a, b, 3) + 2 * b for a, b in zip(chans, chans[1:]))
    assert ours["attention_per_task"] == att
    assert ours["extractors"] == ext
    assert ours["scene_classifier"] == 512 * (21 + 30 + 45) + (21 + 30 + 45)


@pytest.mark.parametrize("bench", ["msc", "mini-msc", "psc5"])
def test_every_method_total_within_3_percent_of_the_paper(bench):
    paper = PAPER_TOTALS["psc" if bench == "psc5" else bench]
    known_gap = {"psc5": {"single-task", "cross-stitch"}}.get(bench, set())
    for model, figure in paper.items():
        if model == "den":  # within 5%: tests/test_models_den.py (selector width, README)
            continue
        ours = breakdown(model, bench)["total"]
        if model in known_gap:
            # the paper's 41.32M PSC Baseline exceeds a VGG-16 plus a SegNet by 1.65M that the
            # paper does not explain; we stay below it
            assert 0.95 * figure < ours < figure
        else:
            assert _close(ours, figure), (model, ours, figure)


def test_psc_vgg16_row():
    ours = breakdown("mtln", "psc5")
    paper = TABLE_II["psc"]
    for key in ("attention_per_task", "extractors", "total"):
        assert _close(ours[key], paper[key]), (key, ours[key], paper[key])
    # the paper splits 24.93M between shared branch (15.49M) and pixel classifier (9.44M)
    # differently from a VGG-16 encoder / SegNet decoder; the sum agrees, and equals the
    # uncertainty-weighting network's 24.93M of Table IV
    both = ours["shared"] + ours["pixel_classifier"]
    assert _close(both, paper["shared"] + paper["pixel_classifier"], 0.005)
    # VGG-16-BN's 13 conv layers: torchvision's count
    assert ours["shared"] == 14_723_136


def test_baseline_attention_is_k_single_task_mtlns():
    ba = breakdown("baseline-attention", "msc")
    mt = breakdown("mtln", "msc")
    assert ba["networks"] == 3 * mt["shared"]
    assert ba["extractors"] == 3 * mt["extractors"]
    assert ba["attention_per_task"] == mt["attention_per_task"]


def test_uncertainty_network_is_shared_specifics():
    # its three learned loss weights belong to the weighting (a run adds them as loss_weights)
    assert breakdown("uncertainty", "msc")["total"] == breakdown("shared-specific", "msc")["total"]


def test_params_cli_csv_and_markdown(capsys):
    assert main(["models", "params", "--benchmark", "msc", "--format", "csv"]) == 0
    text = capsys.readouterr().out
    first = list(csv.reader(io.StringIO(text.split("\n\n")[0])))
    assert first[0][0] == "row" and "Total" in first[0]
    assert [r[0] for r in first[1:]] == ["rsbench", "paper", "difference"]
    total = int(first[1][first[0].index("Total")])
    assert total == breakdown("mtln", "msc")["total"]
    assert main(["models", "params", "--benchmark", "psc5"]) == 0
    md = capsys.readouterr().out
    assert "| Pixel classifier |" in md
    ours = breakdown("mtln", "psc5")["total"] / M
    assert f"| mtln | {ours:.2f}M | 34.80M |" in md


def test_params_cli_latex(capsys):
    assert main(["models", "params", "--benchmark", "mini-msc", "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert tex.count(r"\begin{tabular}") == 2
    ours = breakdown("baseline-attention", "mini-msc")["total"] / M
    assert f"baseline-attention & {ours:.2f}M & 21.26M" in tex


def test_list_shows_paper_models(capsys):
    assert main(["models", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    for m in ("mtln", "single-task", "fine-tune", "shared-specific", "baseline-attention",
              "cross-stitch", "uncertainty"):
        assert m in names
