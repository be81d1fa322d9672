"""Advisory folder locks: a second process is refused with one line; a dead holder never blocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsbench.errors import UsageError
from rsbench.locking import LOCK_NAME, folder_lock

PROJECT = Path(__file__).resolve().parents[2]

_HOLD = ("import sys, time; from pathlib import Path; from rsbench.locking import folder_lock\n"
         "with folder_lock(Path(sys.argv[1]), 'holder test'):\n"
         "    Path(sys.argv[2]).write_text('held')\n"
         "    time.sleep(float(sys.argv[3]))\n")


def _holder(folder: Path, flag: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), str(flag), str(seconds)],
                            env=env)
    deadline = time.time() + 60
    while not flag.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert flag.exists()
    return proc


def test_a_second_process_is_refused_naming_the_folder_and_pid(tmp_path):
    folder = tmp_path / "run"
    proc = _holder(folder, tmp_path / "flag", 60)
    try:
        with pytest.raises(UsageError) as err:
            with folder_lock(folder, "second"):
                pass
        msg = str(err.value)
        assert "\n" not in msg and str(folder) in msg
        assert f"process {proc.pid}" in msg and "holder test" in msg
    finally:
        proc.kill()
        proc.wait()
    # the holder was killed: its lock is gone with it
    with folder_lock(folder, "third"):
        assert (folder / LOCK_NAME).read_text().startswith(f"{os.getpid()} third")


def test_lock_is_released_after_the_block_and_on_errors(tmp_path):
    with pytest.raises(RuntimeError):
        with folder_lock(tmp_path / "x", "a"):
            raise RuntimeError("boom")
    with folder_lock(tmp_path / "x", "b"):
        pass
    assert (tmp_path / "x" / LOCK_NAME).read_text() == ""  # no stale holder recorded
