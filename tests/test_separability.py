"""JM distance and Transformed Divergence: closed forms, direct NumPy, conditioning, real HSI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsbench.errors import InputError
from rsbench.plots.heatmaps import plot_heatmaps
from rsbench.separability import (
    ClassStats,
    class_statistics,
    format_table,
    least_separable,
    pair_measures,
    separability_table,
)

HOUSTON = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "houston-crop" \
    / "houston_dataset.mat"


def direct(m1, s1, m2, s2):
    """The issue's formulas, written literally with inverses and determinants."""
    d = (m1 - m2)[:, None]
    s = (s1 + s2) / 2
    b = (d.T @ np.linalg.inv(s) @ d).item() / 8 + 0.5 * np.log(
        np.linalg.det(s) / np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    i1, i2 = np.linalg.inv(s1), np.linalg.inv(s2)
    dv = 0.5 * np.trace((s1 - s2) @ (i2 - i1)) + 0.5 * np.trace((i1 + i2) @ d @ d.T)
    return 2 * (1 - np.exp(-b)), 2 * (1 - np.exp(-dv / 8)), b, dv


def random_spd(p, rng, cond=10.0):
    q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    return q @ np.diag(np.geomspace(1, cond, p)) @ q.T


def test_equal_covariances_closed_form():
    rng = np.random.default_rng(0)
    s = random_spd(6, rng)
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    maha2 = (m1 - m2) @ np.linalg.solve(s, m1 - m2)
    r = pair_measures(ClassStats(100, m1, s), ClassStats(100, m2, s))
    assert r["B"] == pytest.approx(maha2 / 8)
    assert r["JM"] == pytest.approx(2 * (1 - np.exp(-maha2 / 8)))
    assert r["D"] == pytest.approx(maha2)  # trace term vanishes
    assert r["TD"] == pytest.approx(2 * (1 - np.exp(-maha2 / 8)))


def test_one_band_closed_form_and_identical_classes():
    a, b = ClassStats(50, np.array([1.0]), np.array([[4.0]])), \
        ClassStats(50, np.array([3.0]), np.array([[1.0]]))
    v1, v2 = 4.0, 1.0
    bb = (2.0 ** 2) / (4 * (v1 + v2)) + 0.5 * np.log((v1 + v2) / (2 * np.sqrt(v1 * v2)))
    dd = 0.5 * (v1 - v2) * (1 / v2 - 1 / v1) + 0.5 * (1 / v1 + 1 / v2) * 4.0
    r = pair_measures(a, b)
    assert r["B"] == pytest.approx(bb) and r["D"] == pytest.approx(dd)
    same = pair_measures(a, a)
    assert same["JM"] == pytest.approx(0, abs=1e-12) and same["TD"] == pytest.approx(0, abs=1e-12)


def test_matches_direct_numpy_on_random_data():
    rng = np.random.default_rng(1)
    p = 12
    x1 = rng.multivariate_normal(rng.normal(size=p), random_spd(p, rng), 400)
    x2 = rng.multivariate_normal(rng.normal(size=p) * 0.3, random_spd(p, rng, 50), 300)
    x = np.vstack([x1, x2])
    y = np.r_[np.zeros(400, int), np.ones(300, int)]
    st = class_statistics(x, y, chunk=97)  # streamed in odd chunks
    np.testing.assert_allclose(st[0].mean, x1.mean(0))
    np.testing.assert_allclose(st[1].cov, np.cov(x2.T), rtol=1e-10, atol=1e-12)
    jm, td, b, dv = direct(x1.mean(0), np.cov(x1.T), x2.mean(0), np.cov(x2.T))
    r = pair_measures(st[0], st[1])
    assert r["JM"] == pytest.approx(jm, rel=1e-9) and r["TD"] == pytest.approx(td, rel=1e-9)
    assert r["B"] == pytest.approx(b, rel=1e-9) and r["D"] == pytest.approx(dv, rel=1e-9)


def test_many_correlated_bands_are_numerically_sound():
    """120 strongly correlated bands on very different scales: det() alone over/underflows."""
    rng = np.random.default_rng(2)
    p, n = 120, 3000
    wl = np.linspace(0, 1, p)
    basis = np.stack([np.exp(-((wl - c) / 0.2) ** 2) for c in (0.1, 0.4, 0.7, 0.9)])
    scales = np.geomspace(1e-3, 1e4, p)

    def sample(shift):
        z = rng.normal(size=(n, 4)) + shift
        return (z @ basis + 0.01 * rng.normal(size=(n, p))) * scales

    x = np.vstack([sample(0.0), sample(0.05)])
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    st = class_statistics(x, y)
    assert not np.isfinite(np.linalg.det(st[0].cov)) or np.linalg.det(st[0].cov) in (0.0,)
    r = pair_measures(st[0], st[1])
    assert all(np.isfinite(v) for v in r.values())
    assert 0 < r["JM"] < 2 and 0 < r["TD"] < 2
    # invariant to rescaling the bands (what a careless implementation gets wrong)
    x2 = x / scales * rng.uniform(0.5, 2, p)
    r2 = pair_measures(*class_statistics(x2, y).values())
    assert r2["JM"] == pytest.approx(r["JM"], rel=1e-6)
    assert r2["TD"] == pytest.approx(r["TD"], rel=1e-6)


def test_singular_covariance_needs_a_ridge():
    rng = np.random.default_rng(3)
    p = 30
    few = class_statistics(rng.normal(size=(20, p)), np.zeros(20, int))[0]
    many = class_statistics(rng.normal(size=(500, p)), np.zeros(500, int))[0]
    with pytest.raises(InputError, match="20 pixels for 30 bands.*--ridge"):
        pair_measures(few, many, ("sparse", "dense"))
    # a duplicated band: enough pixels, still singular
    x = rng.normal(size=(500, 5))
    dup = class_statistics(np.c_[x, x[:, :1]], np.zeros(500, int))[0]
    with pytest.raises(InputError, match="singular"):
        pair_measures(dup, class_statistics(rng.normal(size=(500, 6)),
                                            np.zeros(500, int))[0], ("dup", "other"))
    r = pair_measures(few, many, ridge=1e-3)
    assert 0 <= r["JM"] <= 2 and np.isfinite(r["TD"])


def test_tables_and_heatmap(tmp_path):
    rng = np.random.default_rng(4)
    x = np.vstack([rng.normal(size=(200, 4)) + k for k in range(3)])
    y = np.repeat([0, 1, 2], 200)
    t = separability_table(class_statistics(x, y), {0: "a_1", 1: "b", 2: "c"})
    assert len(t) == 3 and list(t.columns) == ["class_a", "class_b", "n_a", "n_b", "JM", "TD"]
    assert t.loc[(t.class_a == "a_1") & (t.class_b == "c"), "JM"].item() > \
        t.loc[(t.class_a == "a_1") & (t.class_b == "b"), "JM"].item()
    assert "| a_1 | b | 200 | 200 |" in format_table(t, "markdown")
    assert r"a\_1 & b & 200 & 200" in format_table(t, "latex")
    assert format_table(t, "csv").splitlines()[0] == "class_a,class_b,n_a,n_b,JM,TD"
    assert least_separable(t, 1)[0].startswith(("a_1 vs b", "b vs c"))
    plot_heatmaps(t, ["a_1", "b", "c"], tmp_path / "h.png", "test")
    assert (tmp_path / "h.png").stat().st_size > 2000


@pytest.mark.realdata
def test_real_houston_crop():
    if not HOUSTON.exists():
        pytest.skip(f"real Houston crop not found at {HOUSTON}")
    from scipy.io import loadmat

    d = loadmat(HOUSTON)
    hsi = d["hyprImg"].astype(np.float64)  # 128 x 128 x 48
    lab = d["clasLabs"]  # 512 x 512, 4x finer grid
    blocks = lab.reshape(128, 4, 128, 4).transpose(0, 2, 1, 3).reshape(128, 128, 16)
    pure = (blocks == blocks[..., :1]).all(-1) & (blocks[..., 0] > 0)
    x, y = hsi[pure], blocks[..., 0][pure].astype(int)
    st = class_statistics(x, y)
    big = {c: f"class {c}" for c, s in st.items() if s.n > 2 * hsi.shape[2]}
    assert len(big) >= 5
    t = separability_table(st, big)
    assert len(t) == len(big) * (len(big) - 1) // 2
    assert t["JM"].between(0, 2).all() and t["TD"].between(0, 2).all()
    assert (t["JM"] > 1.9).mean() > 0.5  # distinct urban materials separate well
    a, b = sorted(big)[:2]
    jm, td, _, _ = direct(st[a].mean, st[a].cov, st[b].mean, st[b].cov)
    row = t[(t.class_a == big[a]) & (t.class_b == big[b])].iloc[0]
    assert row.JM == pytest.approx(jm, rel=1e-6) and row.TD == pytest.approx(td, rel=1e-6)
    small = [c for c, s in st.items() if s.n <= hsi.shape[2]]
    assert small, "the crop has classes with fewer pixels than bands"
    with pytest.raises(InputError, match="--ridge"):
        separability_table(st, {c: f"class {c}" for c in st})
    t_all = separability_table(st, {c: f"class {c}" for c in st}, ridge=1e-4)
    assert np.isfinite(t_all[["JM", "TD"]].to_numpy()).all()


def test_cli_on_built_dataset(tmp_path):
    from rsbench.cli.main import main
    from rsbench.datasets.builders.taiga import build_taiga
    from rsbench.datasets.synth.taiga import synth_taiga

    synth_taiga(tmp_path / "src", size=(140, 160), bands=16, stands=14, seed=5)
    build_taiga(tmp_path / "src", tmp_path / "ds", patch=9, stride=4, bands="0:16")
    out = tmp_path / "sep" / "species.csv"
    rc = main(["separability", str(tmp_path / "ds"), "--variable", "main_tree_species_class",
               "--format", "csv", "--out", str(out)])
    assert rc == 0
    import pandas as pd

    t = pd.read_csv(out)
    assert set(t["variable"]) == {"main_tree_species_class"}
    assert t["JM"].between(0, 2).all() and len(t) >= 1
    assert (tmp_path / "sep" / "species_main_tree_species_class.png").exists()
    assert main(["separability", str(tmp_path / "ds"), "--variable", "basal_area"]) == 1
