"""Shared test fixtures: paths to the real samples and small synthetic GID sets."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample {path} is absent (it lives outside the repository)")
    return path


@pytest.fixture(scope="session")
def synth_gid5(tmp_path_factory) -> Path:
    from rsbench.datasets.synth.gid import synth_gid

    root = tmp_path_factory.mktemp("gid5")
    synth_gid(root, classes=5, images=3, size=(320, 384), seed=3)
    return root


@pytest.fixture(scope="session")
def synth_gid15(tmp_path_factory) -> Path:
    from rsbench.datasets.synth.gid import synth_gid

    root = tmp_path_factory.mktemp("gid15")
    synth_gid(root, classes=15, images=3, size=(320, 384), seed=4)
    return root
