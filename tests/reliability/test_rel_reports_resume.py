"""Builder reports kept in the staged parts survive ``--resume`` (issue 11): the GID-MTL crop
report used to live in a local list and lost the crops of classes imported before a kill."""

from __future__ import annotations

import json

import pytest
from test_gid_mtl import write_fake_gid_mtl

from rsbench.datasets.builders.gid_mtl import GidMtlImport, import_gid_mtl
from rsbench.datasets.builders.psc import PscOptions


def test_crop_report_survives_resume(tmp_path, monkeypatch):
    write_fake_gid_mtl(tmp_path / "GID-MTL")
    opts = PscOptions(classes=15)
    fresh = import_gid_mtl(tmp_path / "GID-MTL", tmp_path / "fresh", opts)
    staged = []
    original = GidMtlImport._stage_class

    def stage_two(self, writer, key):
        if len(staged) == 2:
            raise KeyboardInterrupt
        staged.append(key)
        original(self, writer, key)

    monkeypatch.setattr(GidMtlImport, "_stage_class", stage_two)
    with pytest.raises(KeyboardInterrupt):
        import_gid_mtl(tmp_path / "GID-MTL", tmp_path / "out", opts)
    monkeypatch.undo()
    assert "urban_residential" in staged  # the cropped patch's class was imported before
    resumed = import_gid_mtl(tmp_path / "GID-MTL", tmp_path / "out", opts, resume=True)
    assert resumed["report"]["cropped_to_size"] == ["urban_residential/2.tif (225x225)"]
    on_disk = json.loads((tmp_path / "out" / "dataset.json").read_text())
    for m in (fresh, resumed, on_disk):
        m.pop("created")
        m["parameters"].pop("gid_mtl", None)
    assert resumed == fresh == on_disk
