"""Ctrl-C prints the command that continues the work, and that command finishes it; a full
disk is one line naming the path and the space, and leaves no temporary files behind (issue
14, items 7 and 9)."""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
import training_fixtures as tf

from reliability.hardening_data import (
    TAIGA_BUILD,
    merced_source,
    one_line,
    taiga_dataset,
    taiga_source,
)
from rsbench.cli.main import cli, main
from rsbench.datasets.format.reader import open_dataset


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().err


def resume_args(line: str) -> list[str]:
    """The arguments of the command printed after 'continue with: rsbench'."""
    assert "continue with: rsbench " in line, line
    words = shlex.split(line.split("continue with: ", 1)[1])
    assert words[0] == "rsbench" and "--resume" in words
    return words[1:]


@pytest.fixture(scope="module")
def taiga(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("taiga")
    src = taiga_source(root / "src")
    return src, taiga_dataset(src, root / "ds")


def test_ctrl_c_in_a_build_prints_the_resume_command_that_finishes_it(taiga, tmp_path, capsys,
                                                                      monkeypatch):
    src, reference = taiga
    out = tmp_path / "o"

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("rsbench.datasets.builders.taiga.select_windows", ctrl_c)
    code, err = run_cli(["-q", "build-taiga", "--taiga", str(src), "--out", str(out),
                         *TAIGA_BUILD], capsys)
    monkeypatch.undo()
    assert code == 130, err
    args = resume_args(one_line(err))
    assert main(args) == 0
    pd.testing.assert_frame_equal(open_dataset(out).index, open_dataset(reference).index)
    np.testing.assert_array_equal(open_dataset(out).array("image"),
                                  open_dataset(reference).array("image"))


def test_ctrl_c_in_a_run_prints_the_resume_command_that_finishes_it(tmp_path, capsys,
                                                                    monkeypatch):
    import torch

    from rsbench.training import checkpoint as ckpt_mod

    torch.set_num_threads(1)
    tf.register()
    msc = tf.write_msc(tmp_path / "mini-msc", per_class=5)
    real_save = ckpt_mod.save_checkpoint

    def save_then_ctrl_c(path, payload):
        real_save(path, payload)
        raise KeyboardInterrupt  # Ctrl-C right after the first epoch's checkpoint

    monkeypatch.setattr(ckpt_mod, "save_checkpoint", save_then_ctrl_c)
    run = ["-q", "run", "mini-msc", "--model", "tiny", "--data", str(msc), "--epochs", "2",
           "--batch-size", "4", "--input-size", "32", "--max-train-batches", "1",
           "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "runs")]
    code, err = run_cli(run, capsys)
    assert code == 130, err
    args = resume_args(one_line(err))
    monkeypatch.setattr(ckpt_mod, "save_checkpoint", real_save)
    assert main(args) == 0
    assert len(list((tmp_path / "runs").rglob("metrics.json"))) == 1


def test_ctrl_c_elsewhere_says_interrupted_only(capsys, monkeypatch):
    @click.command("sleepy")
    def sleepy():
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.commands, "sleepy", sleepy)
    code, err = run_cli(["sleepy"], capsys)
    assert code == 130 and one_line(err) == "rsbench: interrupted"


# ------------------------------------------------------------------ full disk


def test_full_disk_is_named_and_its_temporary_files_removed(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"

    @click.command("fill")
    @click.option("--out")
    def fill(out):  # writes part of an array, then the disk is full (injected ENOSPC)
        tmp = Path(out) / "arrays" / "image.npy.tmp"
        tmp.parent.mkdir(parents=True)
        tmp.write_bytes(b"\0" * 3_000_000)
        part = Path(out) / ".staging" / "parts" / "a.tmp"
        part.mkdir(parents=True)
        (part / "image.bin").write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    monkeypatch.setitem(cli.commands, "fill", fill)
    code, err = run_cli(["fill", "--out", str(out)], capsys)
    line = one_line(err)
    assert code == 1 and "no space left" in line and str(out / "arrays" / "image.npy.tmp") in line
    assert "MB free" in line and "more than 3.0 MB" in line
    assert not list(out.rglob("*.tmp")) and (out / ".staging" / "parts").is_dir()


@pytest.mark.parametrize("error", [
    OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"),  # pyarrow
    RuntimeError("write failed: No space left on device"),  # a library wrapping the OS error
])
def test_full_disk_reported_by_a_library_without_errno(error, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"

    @click.command("fill")
    @click.option("--out")
    def fill(out):
        Path(out).mkdir()
        (Path(out) / "index.parquet.tmp").write_bytes(b"\0" * 150_000)
        raise error

    monkeypatch.setitem(cli.commands, "fill", fill)
    code, err = run_cli(["fill", "--out", str(out)], capsys)
    line = one_line(err)
    assert code == 1 and "no space left" in line and str(out) in line and "0.1 MB" in line
    assert list(out.iterdir()) == []


def test_full_disk_before_finalize_names_the_space_needed(tmp_path, capsys, monkeypatch):
    import rsbench.diskspace as diskspace

    src = merced_source(tmp_path / "src")
    out = tmp_path / "msc"
    build = ["-q", "build-msc", "--merced", str(src), "--out", str(out), "--size", "32"]
    real_usage = shutil.disk_usage

    def nearly_full(path):
        return real_usage(path)._replace(free=1_000_000)

    monkeypatch.setattr(diskspace.shutil, "disk_usage", nearly_full)
    code, err = run_cli(build, capsys)
    line = one_line(err)
    assert code == 1 and str(out / "arrays") in line and "needs 0.1 MB" in line
    assert "1.0 MB free" in line and "--resume" in line
    assert not (out / "dataset.json").exists() and not list(out.rglob("*.tmp"))
    monkeypatch.setattr(diskspace.shutil, "disk_usage", real_usage)
    assert main([*build, "--resume"]) == 0
    assert open_dataset(out).manifest["num_samples"] == 42


@pytest.fixture
def tmpfs(tmp_path):
    """``mount_tmpfs(size)``: a small tmpfs (root and a kernel that allows mounting), else the
    test is skipped."""
    mounts = []

    def mount_tmpfs(size: str) -> Path:
        mount = tmp_path / f"disk{len(mounts)}"
        mount.mkdir()
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(mount)], capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
        mounts.append(mount)
        return mount

    yield mount_tmpfs
    for mount in mounts:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_on_a_real_small_tmpfs_then_resume(tmpfs, tmp_path, capsys):
    disk = tmpfs("1m")
    src = merced_source(tmp_path / "src", per_class=8, size=64)  # ~2 MB of staged images
    out = disk / "msc"
    build = ["-q", "build-msc", "--merced", str(src), "--out", str(out), "--size", "64"]
    code, err = run_cli(build, capsys)
    line = one_line(err)
    assert code == 1 and ("no space left" in line or "needs" in line) and str(out) in line
    assert not list(out.rglob("*.tmp")) and not (out / "dataset.json").exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    assert main([*build, "--resume"]) == 0
    assert open_dataset(out).manifest["num_samples"] == 21 * 8


def _tiny_run(msc: Path, out: Path) -> list[str]:
    return ["-q", "run", "mini-msc", "--model", "tiny", "--data", str(msc), "--epochs", "1",
            "--batch-size", "4", "--input-size", "32", "--max-train-batches", "1",
            "--workers", "0", "--device", "cpu", "--out", str(out)]


def test_a_checkpoint_filling_the_disk_is_one_line_and_leaves_no_tmp(tmpfs, tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    tf.register()
    msc = tf.write_msc(tmp_path / "mini-msc", per_class=5)
    disk = tmpfs("40k")  # room for the run folder, not for the checkpoint
    code, err = run_cli(_tiny_run(msc, disk / "runs"), capsys)
    line = one_line(err)
    assert code == 1 and "no space left" in line and "checkpoint.pt" in line
    assert "--resume" in line
    assert not list(disk.rglob("*.tmp")) and not list(disk.rglob("metrics.json"))
    subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
    assert main([*_tiny_run(msc, disk / "runs"), "--resume"]) == 0
    assert len(list(disk.rglob("metrics.json"))) == 1


def test_a_checkpoint_write_failing_on_a_full_disk_injected(tmp_path, monkeypatch):
    """The same without mounting: torch reports ENOSPC as a RuntimeError; the disk is then
    (reported) full."""
    import rsbench.diskspace as diskspace
    from rsbench.errors import InputError
    from rsbench.training import checkpoint as ckpt_mod

    def failing_save(payload, path):
        Path(path).write_bytes(b"\0" * 200_000)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    real_usage = shutil.disk_usage
    monkeypatch.setattr(ckpt_mod.torch, "save", failing_save)
    monkeypatch.setattr(diskspace.shutil, "disk_usage",
                        lambda p: real_usage(p)._replace(free=4096))
    with pytest.raises(InputError, match=r"no space left .*checkpoint\.pt .*0\.2 MB written"):
        ckpt_mod.save_checkpoint(tmp_path / "checkpoint.pt", {"x": 1})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(diskspace.shutil, "disk_usage", real_usage)  # a disk with room:
    with pytest.raises(RuntimeError):  # the failure is not blamed on space
        ckpt_mod.save_checkpoint(tmp_path / "checkpoint.pt", {"x": 1})
