"""Received dataset folders, mapping files and options that must not escape, over-allocate or
block a retry (issue 14, items 3, 4, 6, 8, 9): one plain line each, nothing written outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gidtools import to_rgb, write_pair

from rsbench.cli.main import main
from rsbench.datasets import open_dataset
from rsbench.datasets.format.manifest import MAX_CLASSES, TaskSpec
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.errors import InputError, UsageError

N = 6


def tiny_dataset(out: Path) -> Path:
    """Six 4x4 RGB samples of two classes; sample i has every pixel equal to i."""
    with DatasetWriter(out, builder="test", params={}) as w:
        pw = w.part_writer("p")
        for i in range(N):
            pw.append({"task": "t", "label": i % 2, "split": "train" if i < 4 else "test"},
                      image=np.full((4, 4, 3), i, np.uint8))
        pw.close()
        w.finalize(w.load_index(["p"]), keys=["p"], name="tiny", sources=[],
                   tasks=[TaskSpec("t", "classification", rows="t", target="label",
                                   classes=["a", "b"])])
    return out


def edit_manifest(root: Path, change) -> Path:
    path = root / "dataset.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_round_trip_gives_the_writers_types(tmp_path):
    ds = open_dataset(tiny_dataset(tmp_path / "d"))
    spec = ds.task_spec("t")
    assert isinstance(spec, TaskSpec) and spec.classes == ["a", "b"]
    assert spec.counts == {"test": {"a": 1, "b": 1}, "train": {"a": 2, "b": 2}}
    assert ds.meta.arrays["image"].shape == [N, 4, 4, 3]
    assert [int(ds.array("image")[i, 0, 0, 0]) for i in range(N)] == list(range(N))


@pytest.mark.parametrize("name", ["../../evil", "a/b", "..", "x\\y"])
def test_export_refuses_class_names_that_are_not_file_names(name, tmp_path, capsys):
    root = tiny_dataset(tmp_path / "d")
    edit_manifest(root, lambda m: m["tasks"]["t"]["classes"].__setitem__(0, name))
    code = main(["export", str(root), "--out", str(tmp_path / "x" / "y"), "--format", "png"])
    err = one_line(capsys)
    assert code == 1 and "dataset.json: tasks.t.classes[0]" in err and "plain file name" in err
    assert not (tmp_path / "evil").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_array_files_must_lie_inside_the_dataset(where, tmp_path):
    other = tiny_dataset(tmp_path / "other")
    root = tiny_dataset(tmp_path / "d")
    target = other / "arrays" / "image.npy"
    if where == "absolute":
        edit_manifest(root, lambda m: m["arrays"]["image"].update(file=str(target)))
    elif where == "dotdot":
        edit_manifest(root, lambda m: m["arrays"]["image"].update(
            file="../other/arrays/image.npy"))
    else:
        (root / "arrays" / "image.npy").unlink()
        os.symlink(target, root / "arrays" / "image.npy")
    with pytest.raises(InputError, match=r"dataset.json: arrays.image.file.*outside"):
        open_dataset(root).array("image")


def test_a_huge_label_space_is_refused_before_anything_is_allocated(tmp_path, capsys):
    root = tiny_dataset(tmp_path / "d")
    edit_manifest(root, lambda m: m["tasks"]["t"].update(
        classes=[f"c{i}" for i in range(50_000)]))
    assert main(["info", str(root)]) == 1
    err = one_line(capsys)
    assert "tasks.t.classes lists 50000 classes" in err and str(MAX_CLASSES) in err


def test_sizes_are_checked_against_the_files_on_disk(tmp_path):
    root = tiny_dataset(tmp_path / "d")
    np.save(root / "arrays" / "image.npy", np.zeros((N, 400, 400, 3), np.uint8))
    with pytest.raises(InputError, match=r"holds uint8 \[6, 400, 400, 3\].*\[6, 4, 4, 3\]"):
        open_dataset(root).array("image")
    root = tiny_dataset(tmp_path / "e")
    edit_manifest(root, lambda m: m.update(num_samples=10 ** 9) or
                  m["arrays"]["image"].update(shape=[10 ** 9, 4, 4, 3]))
    with pytest.raises(InputError, match="has 6 rows but"):
        _ = open_dataset(root).index
    with pytest.raises(InputError, match="holds uint8"):
        open_dataset(root).array("image")
    root = tiny_dataset(tmp_path / "f")
    edit_manifest(root, lambda m: m["arrays"]["image"].update(shape=[5, 4, 4, 3]))
    with pytest.raises(InputError, match=r"arrays.image.shape\[0\] is 5 but num_samples is 6"):
        open_dataset(root)


def test_mapping_rows_must_be_plain_class_names(tmp_path):
    from rsbench.datasets.builders.msc import read_mapping

    csv = tmp_path / "map.csv"
    csv.write_text("shared_class,merced\nfarm,agricultural\n../../x,forest\n")
    with pytest.raises(InputError, match=r"map.csv, row 2 .*shared_class: '\.\./\.\./x' is not "
                                         "a plain file name"):
        read_mapping(csv, ["merced"])


def test_out_inside_a_source_folder_is_refused(tmp_path):
    from rsbench.datasets.builders.scene_build import check_out_outside

    src = tmp_path / "UCMerced_LandUse"
    src.mkdir()
    with pytest.raises(UsageError, match="lies inside the source folder"):
        check_out_outside(src / "Images" / "msc", [src])
    check_out_outside(tmp_path / "msc", [src])


def test_stride_zero_is_refused_before_anything_is_written(tmp_path, capsys):
    write_pair(tmp_path / "GID", "a", to_rgb(np.ones((64, 64), np.int64)))
    args = ["build-psc", "--gid", str(tmp_path / "GID"), "--classes", "5", "--out",
            str(tmp_path / "o"), "--size", "32", "--stride", "0"]
    assert main(args) == 2
    assert "--stride must be at least 1" in one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_an_error_after_staging_began_does_not_block_the_corrected_command(tmp_path, capsys):
    idx = np.tile(np.repeat(np.arange(1, 16), 10), (64, 1))[:, :128]
    write_pair(tmp_path / "GID", "a", to_rgb(idx, classes=15))
    args = ["build-psc", "--gid", str(tmp_path / "GID"), "--classes", "5", "--out",
            str(tmp_path / "o"), "--size", "32"]
    assert main(args) == 1  # found while tiling: staging had begun
    assert "try --classes 15" in one_line(capsys)
    assert not (tmp_path / "o").exists()  # nothing finished: the build removes what it began
    # the user repairs the label file and reruns the same command, without --resume
    write_pair(tmp_path / "GID", "a", to_rgb(np.ones((64, 128), np.int64)))
    assert main(args) == 0, one_line(capsys)
    assert open_dataset(tmp_path / "o").meta.num_samples > 0


def test_info_on_an_interrupted_build_says_what_resume_will_do(tmp_path, capsys):
    with DatasetWriter(tmp_path / "b", builder="build-psc", params={}) as w:
        w.part_writer("first").close()
    assert main(["info", str(tmp_path / "b")]) == 1
    err = one_line(capsys)
    assert "--resume" in err and "build-psc kept 1 finished part(s)" in err


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    with DatasetWriter(tmp_path / "b", builder="build-psc", params={}):
        with pytest.raises(UsageError, match=rf"{tmp_path / 'b'} is in use by process "
                                             rf"{os.getpid()}"):
            DatasetWriter(tmp_path / "b", builder="build-psc", params={}, resume=True)
        write_pair(tmp_path / "GID", "a", to_rgb(np.ones((64, 64), np.int64)))
        done = subprocess.run([sys.executable, "-m", "rsbench", "build-psc", "--gid",
                               str(tmp_path / "GID"), "--classes", "5", "--out",
                               str(tmp_path / "b"), "--size", "32", "--resume"],
                              capture_output=True, text=True)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
        assert f"in use by process {os.getpid()}" in done.stderr
    # the holder is gone: the same command now runs
    DatasetWriter(tmp_path / "b", builder="build-psc", params={}, resume=True).close()


def test_a_build_in_progress_is_not_called_interrupted(tmp_path):
    with DatasetWriter(tmp_path / "b", builder="build-psc", params={}) as w:
        w.part_writer("first").close()
        with pytest.raises(InputError, match=rf"being built right now by process {os.getpid()} "
                                             r"\(rsbench build-psc\)"):
            open_dataset(tmp_path / "b")
    with pytest.raises(InputError, match="unfinished build"):
        open_dataset(tmp_path / "b")
