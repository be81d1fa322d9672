"""The TAIGA protocols on a synthetic TAIGA built by project code: the per-pixel benchmarks
score every labelled pixel the test windows cover exactly once (counted here, by the test's
own code, from the label rasters), the centre-pixel variant one pixel per window, and the
tables mark centre-pixel rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rsbench.datasets.builders.taiga import build_taiga
from rsbench.datasets.format.reader import open_dataset
from rsbench.datasets.synth.taiga import synth_taiga
from rsbench.errors import UsageError
from rsbench.training.config import load_benchmark
from rsbench.training.runner import RunRequest, run_benchmark
from rsbench.training.taiga import TaigaPixelReader, owned_pixels

torch.set_num_threads(1)
WINDOW = ["win_row", "win_col", "win_h", "win_w"]


@pytest.fixture(scope="module")
def taiga(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("taiga_protocol")
    synth_taiga(root / "src", size=(128, 128), bands=8, stands=60, seed=5)
    build_taiga(root / "src", root / "data", patch=7, stride=3, bands="0:8",
                test_fraction=0.3, val_fraction=0.1)
    return str(root / "data")


def covered_labels(data, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The union of the split's windows, and per task its labels on the union's pixels."""
    cls, reg = np.asarray(data.array("targets_cls")), np.asarray(data.array("targets_reg"))
    union = np.zeros(cls.shape[:2], bool)
    idx = data.index[data.index["split"] == split]
    for r, c, h, w in idx[WINDOW].to_numpy():
        union[r:r + h, c:c + w] = True
    labels = {}
    for t in data.tasks:
        spec = data.task(t)
        raster = cls if spec["type"] == "classification" else reg
        labels[t] = raster[..., spec["channel"]][union]
    return union, labels


def test_owned_pixels_tile_the_windows_exactly_once_nearest_centre_first() -> None:
    rng = np.random.default_rng(0)
    # windows on a stride-3 grid with gaps, plus a few of other sizes off the grid
    grid = [(r, c, 7, 7) for r in range(0, 40, 3) for c in range(0, 40, 3) if rng.random() < 0.6]
    odd = [(5, 8, 9, 9), (30, 2, 5, 5), (17, 20, 11, 7)]
    win = np.array(grid + odd)
    masks = owned_pixels(win, band=16)  # several bands
    covered = np.zeros((60, 60), int)
    owner = np.full((60, 60), -1)
    for i, ((r, c, h, w), m) in enumerate(zip(win, masks)):
        assert m.shape == (h, w)
        covered[r:r + h, c:c + w] += 1
        sub = owner[r:r + h, c:c + w]
        assert (sub[m] == -1).all()  # no pixel owned twice
        sub[m] = i
    assert (covered > 1).sum() > 500  # the windows do overlap
    assert ((owner >= 0) == (covered > 0)).all()  # every covered pixel owned once
    # brute force: the owner is the covering window with the nearest centre (first on ties)
    for y, x in zip(*np.nonzero(covered)):
        d = [((y - r - h // 2) ** 2 + (x - c - w // 2) ** 2, i)
             for i, (r, c, h, w) in enumerate(win) if r <= y < r + h and c <= x < c + w]
        assert owner[y, x] == min(d)[1]


def test_pixel_reader_keeps_training_windows_whole_and_owned_pixels_of_test_windows(
        taiga: str) -> None:
    data = open_dataset(taiga)
    tasks = list(data.tasks)
    reader = TaigaPixelReader(taiga, tasks)
    train = np.sort(data.rows(tasks[0], "train")[:5])
    batch = reader(train)
    spec = data.task("soil_class")
    for i, r in enumerate(train):
        np.testing.assert_array_equal(batch["soil_class"][i].numpy(), data.sample_array(
            "targets_cls", r)[..., spec["channel"]])
        # the centre pixel of the window is the index's centre-pixel target
        assert batch["soil_class"][i, 3, 3].item() == data.index.at[r, "soil_class"]
    for split in ("val", "test"):  # progress evaluation reads val, the final one test
        rows = np.sort(data.rows(tasks[0], split))
        batch = reader(rows)
        union, labels = covered_labels(data, split)
        painted = np.zeros(union.shape, int)
        for i, (r, c, h, w) in enumerate(data.index.loc[rows, WINDOW].to_numpy()):
            painted[r:r + h, c:c + w] += np.isfinite(batch["mean_height"][i].numpy())
        assert painted.max() == 1, split  # no pixel read twice
        assert painted.sum() == np.isfinite(labels["mean_height"]).sum() > len(rows), split


def _tiny_run(bench: str, model: str, taiga: str, out: Path, **options) -> dict:
    cfg = load_benchmark(bench, {"epochs": 1, "batch_size": 16})
    cfg.setdefault("model_options", {}).update(options)
    return run_benchmark(cfg, RunRequest(model=model, data=taiga, seed=0, out=str(out),
                                         device="cpu", workers=0, max_train_batches=2))


def test_per_pixel_run_scores_every_covered_labelled_pixel_once(taiga: str, tmp_path) -> None:
    data = open_dataset(taiga)
    union, labels = covered_labels(data, "test")
    test = data.index[data.index["split"] == "test"]
    assert len(test) * 49 > union.sum()  # overlapping test windows: stitching is needed
    m = _tiny_run("taiga", "hsi-mtl", taiga, tmp_path, width=4)
    for t in data.tasks:
        res, lab = m["tasks"][t], labels[t]
        if data.task(t)["type"] == "classification":
            lab = lab[lab != 255]
            assert res["pixels_scored"] == len(lab) > len(test), t
            support = [res["per_class"][c]["support"] for c in data.task(t)["classes"]]
            assert support == np.bincount(lab, minlength=len(support)).tolist(), t
        else:
            assert res["pixels_scored"] == res["n"] == np.isfinite(lab).sum() > len(test), t


def test_centre_pixel_variant_scores_one_pixel_per_test_window(taiga: str, tmp_path) -> None:
    data = open_dataset(taiga)
    test = data.index[data.index["split"] == "test"]
    m = _tiny_run("taiga-centre", "mottus-3dcnn", taiga, tmp_path, planes=2)
    assert load_benchmark("taiga-centre")["protocol"] == "centre-pixel"
    for t in ("soil_class", "mean_height"):
        centre = test[t].to_numpy()
        labelled = (centre != 255).sum() if t == "soil_class" else np.isfinite(centre).sum()
        assert m["tasks"][t]["pixels_scored"] == labelled <= len(test)


def test_patch_classifier_on_a_per_pixel_benchmark_is_a_one_line_error(taiga: str,
                                                                       tmp_path) -> None:
    for bench in ("taiga", "taiga-cs", "taiga-focal-nw"):
        assert load_benchmark(bench)["protocol"] == "per-pixel"
    for model in ("mottus-3dcnn", "pham-cnn"):
        with pytest.raises(UsageError, match=f"{model} is a patch classifier.*taiga-centre"):
            _tiny_run("taiga", model, taiga, tmp_path / model, planes=2)
    assert not any(tmp_path.rglob("config.json"))  # refused before any folder was written


def _run(root: Path, bench: str, method: str, protocol: str, pixels: int) -> None:
    d = root / bench / method / "0"
    d.mkdir(parents=True)
    tasks = {"soil_class": {"oa": 0.8, "precision": 0.7, "recall": 0.7,
                            "pixels_scored": pixels},
             "mean_height": {"rmse": 0.2, "mae": 0.1, "r2": 0.5, "pixels_scored": pixels}}
    (d / "metrics.json").write_text(json.dumps({
        "complete": True, "tasks": tasks, "parameters": {"total": 1000}}))
    (d / "config.json").write_text(json.dumps({"model": method, "data": "/nonexistent",
                                               "protocol": protocol}))


def test_tables_mark_centre_pixel_rows(tmp_path: Path) -> None:
    from rsbench.reports.render import to_markdown
    from rsbench.reports.runs import collect_runs
    from rsbench.reports.table import build_table
    from rsbench.reports.tables import get_table

    _run(tmp_path, "taiga", "hsi-mtl", "per-pixel", 5210)
    _run(tmp_path, "taiga", "unet", "per-pixel", 5210)
    _run(tmp_path, "taiga-centre", "mottus-3dcnn", "centre-pixel", 86)
    runs = collect_runs(tmp_path)
    for name in ("taiga-comparison", "taiga-complexity"):
        table = build_table(get_table(name), runs)
        labels = [r.label for r in table.rows]
        assert "Mõttus Model (centre pixel)" in labels and "Pham Model (centre pixel)" in labels
        assert "U-Net" in labels and not any("U-Net (" in x for x in labels)
        mottus = next(r for r in table.rows if r.label.startswith("Mõttus"))
        assert mottus.seeds == 1
        notes = " ".join(table.notes)
        assert "centre-pixel protocol" in notes and "up to 86 labelled pixels" in notes
        assert "up to 5,210 labelled pixels" in notes
        assert "Mõttus Model (centre pixel)" in to_markdown(table)
    loss = build_table(get_table("taiga-loss"), runs)
    assert not any("centre" in r.label for r in loss.rows)
    per_var = build_table(get_table("taiga-classification"), runs)
    assert any("per-pixel protocol" in n for n in per_var.notes)
