"""Sizes of the HSI models next to the HSI paper's Table VII, for ``rsbench models params
--benchmark taiga``: parameters and FLOPs of one forward pass of one 45×45×110 TAIGA window
(then those of LibMTL's architectures over the HSI encoder, which the paper does not have).

Models and inputs live on PyTorch's meta device (shapes only): counting every model takes a
second or two and no memory. FLOPs come from ``torch.utils.flop_counter`` (a multiply-add is 2
FLOPs; convolutions, matrix products and attention are counted, element-wise ops are not).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rsbench.models.base import TaskInfo

# TAIGA's 13 tasks (the TAIGA code's class lists without category 0 = none): 3 categorical,
# 10 continuous. Class counts change the heads by a few hundred parameters only.
TAIGA_TASKS: tuple[TaskInfo, ...] = (
    TaskInfo("fertility_class", "classification", 6),
    TaskInfo("soil_class", "classification", 2),
    TaskInfo("main_tree_species_class", "classification", 3),
    *(TaskInfo(name, "regression", 1) for name in (
        "basal_area", "mean_dbh", "stem_density", "mean_height", "percentage_of_pine",
        "percentage_of_spruce", "percentage_of_birch", "woody_biomass", "leaf_area_index",
        "effective_leaf_area_index")),
)
BANDS, WINDOW = 110, 45  # the TAIGA baseline's bands 0-109 and 45×45 windows

# (registered model, Table VII's row, footnote); the footnote says where and why we differ
TABLE_VII: list[tuple[str, str, str]] = [
    ("unet", "U-Net", "published design (Ronneberger et al.: 64-1024 channels, 4 poolings); "
     "the paper does not give its variant"),
    ("segnet", "SegNet", "published design (VGG-16 encoder, 13 convs, mirrored decoder); the "
     "paper's larger count is not explained by its text"),
    ("res-unet", "Res-U-Net", "published design (residual U-Net, 64-1024 channels); the paper "
     "does not give its variant"),
    ("deeplabv3plus", "Deeplab V3+", "published design (ResNet-50 encoder, ASPP 256, decoder "
     "48/256); the paper does not give its backbone"),
    ("mottus-3dcnn", "Mõttus Model", "TAIGA reference code (flattened last map, FC 1024, 200 per "
     "task) with 66 filters per conv (the code's 32 give 17.96M)"),
    ("pham-cnn", "Pham Model", "7 convs, flattened last map, FC 512, 300/200 per task, 42 planes "
     "(the code's 32 give 29.34M); its 3-D convs over the spectral axis make the FLOPs"),
    ("mstnet", "MSTNet", "no public code: ViT-Base layers (768, 12 heads), 7 layers, 3x3 "
     "patches, 4-level conv decoder, chosen for Table VII's size"),
    ("gsc-vit", "GSC-ViT", "published design (authors' code: dims 256/128/64, 16 groups, 1 "
     "head); Table VII's 39.19M cannot come from it"),
    ("spectraldiff", "SpectralDiff", "authors' SimpleUnet (64-1024 channels, 2-D, 110 bands) "
     "+ HSINet classifier; FLOPs of the evaluation pass (U-Net at t=5 + classifier)"),
    ("hsi-single-task", "Proposed single-task", "read as one network per task type "
     "(classification, regression): 37.32M ≈ 1.9× the multitask model; 13 per-variable "
     "networks (split=variable) would be ~13×"),
    ("hsi-mtl", "Proposed multitask", "width 128 (encoder 128-1024 channels), decoders "
     "compressed to 256 channels as Section III-D states"),
]


def hsi_architectures() -> list[tuple[str, str, str]]:
    """(model, label, note) of the registered models outside Table VII that TAIGA builds over
    the HSI paper's encoder (a factory whose ``backbone`` option defaults to None: LibMTL's
    architectures), in name order."""
    import inspect

    from rsbench.models import model_factories, model_label

    listed = {name for name, _, _ in TABLE_VII}
    rows = []
    for name, factory in sorted(model_factories().items()):
        option = inspect.signature(factory).parameters.get("backbone")
        if name not in listed and option is not None and option.default is None:
            rows.append((name, model_label(name), "not in the paper: LibMTL's architecture over "
                         "hsi-mtl's encoder (width 128) with hsi-mtl's decoders and heads"))
    return rows


def table_vii_paper() -> dict[str, dict[str, float]]:
    """Table VII's published rows: params (M), flops (G), seconds per epoch, OA (%)."""
    path = Path(__file__).resolve().parents[1] / "data" / "hsi_paper_results.json"
    return json.loads(path.read_text())["tables"]["complexity"]


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass (multiply-add = 2 FLOPs) in eval mode, counted by PyTorch;
    works on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, list(model.tasks))
    return int(counter.get_total_flops())


def size_of(name: str, **options) -> tuple[int, int]:
    """(parameters, FLOPs of one 45×45×110 window) of registered model ``name`` built for
    TAIGA's 13 tasks with its default options (``options`` override them)."""
    from rsbench.models import build_model

    with torch.device("meta"):
        model = build_model(name, list(TAIGA_TASKS), in_channels=BANDS, **options)
        x = torch.zeros(1, BANDS, WINDOW, WINDOW)
    params = sum(p.numel() for p in model.parameters())
    return params, count_flops(model, x)


def table_vii() -> tuple[list[str], list[list[object]]]:
    """Every HSI model's parameters and GFLOPs beside Table VII's, with the differences and a
    note on each row (models not registered here show the paper's figures only), then those of
    LibMTL's architectures over the HSI encoder (no paper figure)."""
    from rsbench.models import available_models

    registered = set(available_models())

    paper = table_vii_paper()
    header = ["Method", "model", "params", "paper params", "difference", "GFLOPs",
              "paper GFLOPs", "difference", "note"]
    rows: list[list[object]] = []
    for name, label, note in TABLE_VII + hsi_architectures():
        pub = paper.get(label, {})
        p_params = pub.get("params", 0) * 1e6 or None
        p_flops = pub.get("flops")
        if name not in registered:
            rows.append([label, name, None, p_params, None, None, _g(p_flops), None,
                         "not implemented in rsbench"])
            continue
        params, flops = size_of(name)
        rows.append([label, name, params, p_params, _diff(params, p_params), _g(flops / 1e9),
                     _g(p_flops), _diff(flops / 1e9, p_flops), note])
    return header, rows


def _g(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _diff(ours: float, paper: float | None) -> str | None:
    if not paper:
        return None
    return f"{100 * (ours - paper) / paper:+.1f}%"
