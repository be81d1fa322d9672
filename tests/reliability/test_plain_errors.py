"""Ordinary mistakes are one plain line naming the file or option and the fix (issue 14, items 7
and 9): never "unexpected ... please report it", never a traceback, nothing half-written."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reliability.hardening_data import (
    TAIGA_BUILD,
    merced_source,
    one_line,
    taiga_dataset,
    taiga_source,
)
from rsbench.cli.main import main
from rsbench.errors import UsageError


@pytest.fixture(scope="module")
def taiga(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("taiga")
    src = taiga_source(root / "src")
    return src, taiga_dataset(src, root / "ds")


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["-q", *args])
    return code, capsys.readouterr().err


def fail_line(args: list[str], capsys, code: int = 1) -> str:
    got, err = run_cli(args, capsys)
    assert got == code, err
    return one_line(err)


# ------------------------------------------------------------------ --out where a file is


def test_build_taiga_out_under_a_file(taiga, tmp_path, capsys):
    src, _ = taiga
    (tmp_path / "afile").write_text("x")
    got, err = run_cli(["build-taiga", "--taiga", str(src), "--out",
                        str(tmp_path / "afile" / "o"), *TAIGA_BUILD], capsys)
    line = one_line(err)
    assert got != 0 and str(tmp_path / "afile") in line and "is a file" in line


def test_build_psc_out_under_a_file(synth_gid5, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    got, err = run_cli(["build-psc", "--gid", str(synth_gid5), "--classes", "5", "--out",
                        str(tmp_path / "afile" / "psc")], capsys)
    line = one_line(err)
    assert got != 0 and str(tmp_path / "afile") in line and "is a file" in line


def test_run_out_is_a_file(taiga, tmp_path, capsys):
    _, ds = taiga
    (tmp_path / "afile").write_text("x")
    got, err = run_cli(["run", "taiga", "--model", "hsi-mtl", "--data", str(ds), "--out",
                        str(tmp_path / "afile"), "--epochs", "1", "--max-train-batches", "1",
                        "--device", "cpu", "--workers", "0"], capsys)
    line = one_line(err)
    assert got != 0 and str(tmp_path / "afile") in line
    assert (tmp_path / "afile").read_text() == "x"


def test_export_out_under_a_file(taiga, tmp_path, capsys):
    _, ds = taiga
    (tmp_path / "afile").write_text("x")
    got, err = run_cli(["export", str(ds), "--format", "png", "--limit", "1", "--out",
                        str(tmp_path / "afile" / "tiles")], capsys)
    line = one_line(err)
    assert got == 1 and str(tmp_path / "afile") in line and "is a file" in line


def test_report_out_is_a_folder(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "table").mkdir()
    got, err = run_cli(["report", str(tmp_path / "runs"), "--table", "taiga-classification",
                        "--out", str(tmp_path / "table")], capsys)
    line = one_line(err)
    assert got == 2 and "--out" in line and "is a directory" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "table"]  # no table.tmp


# ------------------------------------------------------------------ unreadable sources


def test_unreadable_cube_is_not_called_truncated(taiga, tmp_path, capsys, monkeypatch):
    src, _ = taiga
    real_open = builtins.open

    def guarded(file, *a, **k):  # tests run as root: chmod would not stop the read
        if Path(str(file)).name.startswith("20170615_reflectance") and \
                not str(file).endswith(".hdr"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    line = fail_line(["build-taiga", "--taiga", str(src), "--out", str(tmp_path / "o"),
                      *TAIGA_BUILD], capsys)
    assert "20170615_reflectance" in line and "permission denied" in line
    assert "truncated" not in line and "download" not in line


def test_unreadable_label_folder(synth_gid5, tmp_path, capsys, monkeypatch):
    real_iterdir = Path.iterdir

    def guarded(self):
        if self.name.startswith("label_"):
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", guarded)
    line = fail_line(["build-psc", "--gid", str(synth_gid5), "--classes", "5", "--out",
                      str(tmp_path / "psc")], capsys)
    assert "label_5classes" in line and "permission denied" in line


def test_unreadable_label_file(synth_gid5, tmp_path, capsys, monkeypatch):
    from rasterio.errors import RasterioIOError

    import rsbench.datasets.builders.psc as build_psc

    real_open = build_psc.rasterio.open

    def guarded(path, *a, **k):
        if str(path).endswith("_label.tif"):
            raise RasterioIOError(f"{path}: Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(build_psc.rasterio, "open", guarded)
    line = fail_line(["build-psc", "--gid", str(synth_gid5), "--classes", "5", "--out",
                      str(tmp_path / "psc")], capsys)
    assert "_label.tif" in line and "permission denied" in line
    assert "download" not in line and "damaged" not in line


# ------------------------------------------------------------------ damaged dataset folders


@pytest.fixture
def copy_of(taiga, tmp_path):
    def make() -> Path:
        return Path(shutil.copytree(taiga[1], tmp_path / "copy"))
    return make


def test_missing_index(copy_of, capsys):
    ds = copy_of()
    (ds / "index.parquet").unlink()
    line = fail_line(["separability", str(ds), "--out", str(ds.parent / "sep.csv")], capsys)
    assert "index.parquet is missing" in line


def test_truncated_array(copy_of, capsys):
    ds = copy_of()
    with open(ds / "arrays" / "image.npy", "r+b") as f:
        f.truncate(1000)
    line = fail_line(["separability", str(ds), "--out", str(ds.parent / "sep.csv")], capsys)
    assert "image.npy" in line and "truncated" in line


def test_manifest_with_missing_keys(copy_of, capsys):
    ds = copy_of()
    manifest = json.loads((ds / "dataset.json").read_text())
    del manifest["tasks"]
    (ds / "dataset.json").write_text(json.dumps(manifest))
    line = fail_line(["info", str(ds)], capsys)
    assert "dataset.json" in line and "tasks" in line


def test_separability_on_a_scene_dataset(tmp_path, capsys):
    src = merced_source(tmp_path / "src")
    out = tmp_path / "msc"
    assert main(["-q", "build-msc", "--merced", str(src), "--out", str(out), "--size",
                 "32"]) == 0
    line = fail_line(["separability", str(out)], capsys, code=2)
    assert str(out) in line and "build-taiga" in line and "build-msc" in line


# ------------------------------------------------------------------ options


@pytest.mark.parametrize("command", ["build-taiga", "run", "synth"])
def test_negative_seed_is_refused_before_any_work(command, taiga, tmp_path, capsys):
    src, ds = taiga
    out = tmp_path / "out"
    args = {"build-taiga": ["build-taiga", "--taiga", str(src), "--out", str(out), *TAIGA_BUILD],
            "run": ["run", "taiga", "--model", "hsi-mtl", "--data", str(ds), "--out", str(out)],
            "synth": ["synth", "taiga", "--out", str(out)]}[command]
    line = fail_line([*args, "--seed", "-1"], capsys, code=2)
    assert "--seed" in line and "-1" in line
    assert not out.exists()


def test_oversized_stride_names_stride(taiga, tmp_path, capsys):
    src, _ = taiga
    line = fail_line(["build-taiga", "--taiga", str(src), "--out", str(tmp_path / "o"),
                      "--patch", "9", "--stride", "500", "--bands", "0:16"], capsys, code=2)
    assert "--stride 500" in line and "smaller --patch" not in line


def test_test_stands_given_a_folder(taiga, tmp_path, capsys):
    src, _ = taiga
    (tmp_path / "stands").mkdir()
    line = fail_line(["build-taiga", "--taiga", str(src), "--out", str(tmp_path / "o"),
                      *TAIGA_BUILD, "--test-stands", str(tmp_path / "stands")], capsys, code=2)
    assert "--test-stands" in line and "is a folder" in line and "does not exist" not in line
    assert not (tmp_path / "o").exists()  # checked before anything is staged


def test_negative_ridge_is_refused(taiga, tmp_path, capsys):
    from rsbench.separability import ClassStats, pair_measures

    _, ds = taiga
    line = fail_line(["separability", str(ds), "--ridge", "-1"], capsys, code=2)
    assert "--ridge" in line
    a = ClassStats(10, np.zeros(2), np.eye(2))
    with pytest.raises(UsageError, match="ridge"):
        pair_measures(a, a, ridge=-1.0)


def test_a_build_running_elsewhere_is_not_called_interrupted(tmp_path, capsys):
    from rsbench.locking import folder_lock

    out = tmp_path / "building"
    (out / ".staging").mkdir(parents=True)
    with folder_lock(out, "rsbench build-taiga"):  # another open file: a second holder
        line = fail_line(["info", str(out)], capsys)
    assert "being built right now" in line and "--resume" not in line
    line = fail_line(["info", str(out)], capsys)  # the holder has ended: now it is unfinished
    assert "--resume" in line
