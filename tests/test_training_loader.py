"""The training loader with worker processes that reuse shared buffers delivers exactly the
batches its reader gives in this process, for MSC-, PSC- and TAIGA-shaped data, over several
epochs, and a batch stays intact while the next one is read."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import training_fixtures as tf

from rsbench.datasets.builders.taiga import build_taiga
from rsbench.datasets.synth.taiga import synth_taiga
from rsbench.training import data as data_mod
from rsbench.training.config import load_benchmark
from rsbench.training.data import EpochBatches, make_loader, make_reader, plan_epoch
from rsbench.training.loop import epoch_batches

torch.set_num_threads(1)


def _equal(a: dict, b: dict) -> bool:
    """Same keys, dtypes, shapes and values (NaN = no label equals NaN)."""
    return set(a) == set(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        and bool(((a[k] == b[k]) | (a[k].isnan() & b[k].isnan()) if a[k].is_floating_point()
                  else a[k] == b[k]).all()) for k in a)


def _check(path, benchmark: str, tasks_of_groups, batch: int, monkeypatch) -> int:
    """Compare every batch of 3 epochs (workers 2, reused buffers) with the reader's own."""
    monkeypatch.setattr(data_mod, "SHARED_MIN_BYTES", 1)  # tiny test images use the buffers
    cfg = load_benchmark(benchmark)
    from rsbench.datasets.format.reader import open_dataset

    ds = open_dataset(path)
    samplers, loaders, readers = [], [], []
    for gi, tasks in enumerate(tasks_of_groups):
        s = EpochBatches(ds.rows(tasks[0], "train"), batch, seed=1, group=gi)
        samplers.append(s)
        loaders.append(make_loader(make_reader(cfg, path, tasks), s, workers=2, prefetch=2,
                                   reuse_buffers=True))
        readers.append(make_reader(cfg, path, tasks))
    assert isinstance(loaders[0], data_mod._BufferedLoader)
    seen = planned = 0
    for epoch in range(3):
        plan = plan_epoch(samplers, "per-task", seed=1, epoch=epoch, max_steps=7)
        expected_rows = [[rows for rows in s] for s in samplers]
        step = [0] * len(samplers)
        planned += sum(len(groups) for groups in plan)
        previous: list[tuple[dict, dict]] = []
        for groups, batches in epoch_batches(loaders, plan):
            for g, b in zip(groups, batches):
                want = readers[g](expected_rows[g][step[g]])
                step[g] += 1
                assert _equal(b, want)
                ptr = b["image"].untyped_storage().data_ptr()
                assert any(ptr == slot["image"].untyped_storage().data_ptr()  # a reused buffer
                           for worker in loaders[g].dataset.buffers for slot in worker)
                seen += 1
            for b, want in previous:  # the batches of the step before are still intact
                assert _equal(b, want)
            previous = [(b, readers[g](expected_rows[g][step[g] - 1]))
                        for g, b in zip(groups, batches)]
    assert seen == planned
    return seen


def test_msc_batches_from_reused_buffers_equal_the_readers(tmp_path, monkeypatch):
    path = tf.write_msc(tmp_path / "msc", per_class=5, size=16)
    groups = [["merced"], ["aid"], ["nwpu"]]
    assert _check(path, "mini-msc", groups, 4, monkeypatch) == 3 * 4 * 3  # 4 steps: the largest task has 16 training rows


def test_psc_masks_from_reused_buffers_equal_the_readers(tmp_path, monkeypatch):
    path = tf.write_psc(tmp_path / "psc", size=16)
    assert _check(path, "psc5", [["scene", "segmentation"]], 4, monkeypatch) == 3 * 4


@pytest.mark.parametrize("benchmark", ["taiga", "taiga-centre"])
def test_taiga_windows_from_reused_buffers_equal_the_readers(tmp_path, monkeypatch, benchmark):
    synth_taiga(tmp_path / "src", size=(96, 96), bands=8, stands=40, seed=3)
    build_taiga(tmp_path / "src", tmp_path / "data", patch=7, stride=3, bands="0:8",
                test_fraction=0.3, val_fraction=0.05)
    from rsbench.datasets.format.reader import open_dataset

    tasks = list(open_dataset(tmp_path / "data").tasks)
    assert _check(tmp_path / "data", benchmark, [tasks], 8, monkeypatch) > 3


def test_without_workers_or_reuse_the_loader_is_a_plain_dataloader(tmp_path):
    path = tf.write_msc(tmp_path / "msc", per_class=5, size=16)
    cfg = load_benchmark("mini-msc")
    s = EpochBatches(np.arange(10), 4, seed=0, group=0)
    for kw in ({"workers": 0, "reuse_buffers": True}, {"workers": 1}):
        loader = make_loader(make_reader(cfg, path, ["merced"]), s, **kw)
        assert type(loader) is torch.utils.data.DataLoader
