"""A build killed at each step of finalize resumes to the same dataset (issue 14, item 2).

The kill is injected (an exception, or ``os._exit`` in a child process for a hard kill with no
clean-up) at every step boundary of :func:`rsbench.datasets.format.finalize.finalize`, including
between the moves of the staged rasters, where the old finalize became unresumable.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from rsbench.datasets import open_dataset
from rsbench.datasets.builders.taiga import build_taiga
from rsbench.datasets.format import finalize as fin
from rsbench.datasets.format.staging import resume_plan
from rsbench.errors import InputError

from .conftest import OPTS, OPTS_CLI, assert_same_dataset

# every step; "cleanup" (after the manifest) is covered by the hard-kill test below
KILL_POINTS = ["move image", "move targets_cls", "move targets_reg", *fin.STEPS[:-1]]


class Killed(BaseException):
    pass


def test_kill_at_every_finalize_step_resumes_identically(tiny_taiga, taiga_reference, tmp_path,
                                                         monkeypatch):
    """Killed at step 1, resumed and killed at step 2, ... : each resume starts from exactly
    the state a kill at the previous step leaves, so every step's state is resumed once."""
    out = tmp_path / "taiga"
    seen = []
    for i, point in enumerate(KILL_POINTS):
        def kill(step: str, point=point) -> None:
            seen.append(step)
            if step == point:
                raise Killed(step)

        monkeypatch.setattr(fin, "reached", kill)
        with pytest.raises(Killed):
            build_taiga(tiny_taiga, out, resume=i > 0, **OPTS)
        plan = resume_plan(out)
        if point == "manifest":
            assert "nothing to do" in plan  # committed: a resume only removes leftovers
            assert (out / ".staging").exists()
            open_dataset(out).summary()
        else:
            assert not (out / "dataset.json").exists()
            assert "--resume redoes finalize" in plan and "reading no source again" in plan
            with pytest.raises(InputError, match="--resume"):
                open_dataset(out)
    monkeypatch.undo()
    assert set(KILL_POINTS) <= set(seen)
    build_taiga(tiny_taiga, out, resume=True, **OPTS)
    assert_same_dataset(out, taiga_reference)


@pytest.mark.parametrize("point", ["move targets_cls", "cleanup"])
def test_hard_kill_in_finalize_then_cli_resume(point, tiny_taiga, taiga_reference, tmp_path):
    """``os._exit`` skips every ``finally`` (lock release, thread shut-down): still resumable,
    and a resume of a committed dataset says there is nothing to do and exits 0."""
    out = tmp_path / "taiga"
    code = (
        "import os\n"
        "from rsbench.datasets.format import finalize as fin\n"
        "from rsbench.datasets.builders.taiga import build_taiga\n"
        f"fin.reached = lambda step: os._exit(9) if step == {point!r} else None\n"
        f"build_taiga({str(tiny_taiga)!r}, {str(out)!r}, **{OPTS!r})\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    cli = [sys.executable, "-m", "rsbench", "--quiet", "build-taiga", "--taiga",
           str(tiny_taiga), "--out", str(out), *OPTS_CLI, "--resume"]
    done = subprocess.run(cli, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    if point == "cleanup":
        assert "nothing to do" in done.stderr
    assert_same_dataset(out, taiga_reference)
