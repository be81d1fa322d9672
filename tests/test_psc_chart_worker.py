"""build-psc's chart worker (a process that loads matplotlib during the tiling of a large
build): the previews it draws are the in-process ones, and a worker that dies leaves them to
the builder."""

from __future__ import annotations

import pytest

import rsbench.datasets.builders.psc as psc
from rsbench.datasets.builders.psc import PscOptions, build_psc
from rsbench.datasets.format.reader import open_dataset
from rsbench.datasets.previews.chart_worker import ChartWorker
from rsbench.datasets.previews.psc import write_psc_previews

PNGS = ("scene_counts.png", "pixel_counts.png", "examples.png")
OPTS = dict(classes=5, size=64)


@pytest.fixture(scope="module")
def in_process(synth_gid5, tmp_path_factory):
    out = tmp_path_factory.mktemp("charts") / "in-process"
    build_psc(synth_gid5, out, PscOptions(**OPTS))
    return out


def test_small_builds_draw_in_process(synth_gid5, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(psc, "start_chart_worker", lambda: started.append(1))
    build_psc(synth_gid5, tmp_path / "o", PscOptions(**OPTS))
    assert not started  # 3 images of 320x384 are far below CHART_WORKER_MIN_PIXELS


def test_worker_draws_the_in_process_previews(synth_gid5, in_process, tmp_path, monkeypatch):
    answers, workers = [], []
    real_finished = ChartWorker.finished

    def finished(self):
        answers.append(real_finished(self))
        return answers[-1]

    def start():
        workers.append(ChartWorker())
        return workers[-1]

    monkeypatch.setattr(ChartWorker, "finished", finished)
    monkeypatch.setattr(psc, "CHART_WORKER_MIN_PIXELS", 0)
    monkeypatch.setattr(psc, "start_chart_worker", start)
    build_psc(synth_gid5, tmp_path / "worker", PscOptions(**OPTS))
    assert answers == [True]  # both charts drawn by the worker, none redrawn here
    assert workers[0]._proc.poll() is not None  # the build ended its worker
    for name in PNGS:
        assert (tmp_path / "worker" / "preview" / name).read_bytes() == \
            (in_process / "preview" / name).read_bytes(), name


def test_a_dead_worker_leaves_the_charts_to_the_builder(in_process, tmp_path):
    worker = ChartWorker()
    worker._proc.kill()
    worker._proc.wait()
    out = tmp_path / "preview"
    out.mkdir()
    write_psc_previews(out, open_dataset(in_process), charts=worker)
    worker.close()
    for name in PNGS:
        assert (out / name).read_bytes() == (in_process / "preview" / name).read_bytes(), name
