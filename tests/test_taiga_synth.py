"""Synthetic TAIGA: real ENVI layout (read back by rasterio and by rsbench), stands, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from rsbench.datasets.sources.envi import EnviRaster, band_descriptions, parse_header_text
from rsbench.datasets.sources.taiga import BAND_NAMES, CUBE_NAMES, STANDS_NAME, find_taiga
from rsbench.datasets.synth.taiga import LABEL_BUFFER, synth_taiga
from rsbench.errors import InputError


@pytest.fixture(scope="module")
def taiga_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("taiga")
    synth_taiga(out, size=(150, 170), bands=24, stands=16, seed=3)
    return out


def test_headers_read_back(taiga_dir):
    cube_hdr, stands_hdr = find_taiga(taiga_dir)
    assert cube_hdr.name == CUBE_NAMES[0] + ".hdr" and stands_hdr.name == STANDS_NAME + ".hdr"
    cube, stands = EnviRaster.open(cube_hdr), EnviRaster.open(stands_hdr)
    assert (cube.interleave, cube.dtype.str, cube.bands) == ("bsq", "<i2", 24)
    assert (stands.interleave, stands.dtype.str, stands.bands) == ("bip", "<i4", 14)
    assert stands.band_names == BAND_NAMES
    wl = cube.wavelengths()
    assert wl is not None and np.all(np.diff(wl) > 0) and 0.39 < wl[0] < wl[-1] < 1.01
    desc = band_descriptions(stands)
    assert desc["fertility_class"]["type"] == "categorical"
    assert desc["soil_class"]["values"]["2"] == "Organic"
    assert desc["basal_area*100_[m2/ha]"]["unit"] == [0.01, "m2/ha"]
    # written as TAIGA does: the JSON without its outermost braces
    raw = parse_header_text(stands_hdr.read_text())["band descriptions"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    # GDAL reads the same files: same pixels, band names, wavelengths, georeference
    with rasterio.open(cube.data) as ds:
        assert ds.count == 24 and ds.dtypes[0] == "int16" and ds.crs.to_epsg() == 32635
        assert abs(ds.transform.a - 0.7) < 1e-9
        np.testing.assert_array_equal(ds.read(window=((40, 60), (30, 55))).transpose(1, 2, 0),
                                      cube.read_rows(40, 60, c0=30, c1=55))
        assert ds.tags(1)["wavelength"].startswith(f"{wl[0]:.4f}") or \
            f"{wl[0]:.4f}" in json.dumps(ds.tags())
    with rasterio.open(stands.data) as ds:
        assert list(ds.descriptions) == BAND_NAMES
        np.testing.assert_array_equal(ds.read(window=((10, 90), (0, 170))).transpose(1, 2, 0),
                                      stands.read_rows(10, 90))


def test_stands_are_polygons_with_shared_variables(taiga_dir):
    lab = EnviRaster.open(taiga_dir / f"{STANDS_NAME}.hdr").read_rows(0, 150)
    sid = lab[..., 13]
    ids = np.unique(sid[sid > 0])
    assert len(ids) >= 8
    for s in ids:
        vals = lab[sid == s][:, :13]
        assert (vals == vals[0]).all(), f"stand {s} has pixels with different variables"
    # unlabelled gaps between stands (roads) and category 0 only where there is no stand
    assert (sid == 0).sum() > 0 and (lab[sid > 0][:, 1] > 0).all()


def test_nodata_border_and_label_buffer(taiga_dir):
    cube = EnviRaster.open(taiga_dir / f"{CUBE_NAMES[0]}.hdr").read_rows(0, 150)
    sid = EnviRaster.open(taiga_dir / f"{STANDS_NAME}.hdr").read_rows(0, 150)[..., 13]
    nodata = (cube == 0).all(-1)
    assert nodata[0].all() and nodata[:, 0].all() and 0.05 < nodata.mean() < 0.6
    assert not (cube[~nodata] == 0).all(-1).any()
    # every labelled pixel has a fully valid (2*22+1)^2 window around it
    rr, cc = np.nonzero(sid > 0)
    pad = np.pad(nodata, LABEL_BUFFER, constant_values=True)
    ii = np.cumsum(np.cumsum(np.pad(pad, ((1, 0), (1, 0))), 0), 1)
    k = 2 * LABEL_BUFFER + 1
    s = ii[rr + k, cc + k] - ii[rr, cc + k] - ii[rr + k, cc] + ii[rr, cc]
    assert (s == 0).all()


def test_spectra_depend_on_stand_variables(taiga_dir):
    cube = EnviRaster.open(taiga_dir / f"{CUBE_NAMES[0]}.hdr").read_rows(0, 150).astype(float)
    lab = EnviRaster.open(taiga_dir / f"{STANDS_NAME}.hdr").read_rows(0, 150)
    sid = lab[..., 13]
    # per-stand mean NDVI (NIR against red, unchanged by illumination) rises with the stand's LAI
    wl = EnviRaster.open(taiga_dir / f"{CUBE_NAMES[0]}.hdr").wavelengths()
    red, nir = np.abs(wl - 0.675).argmin(), np.abs(wl - 0.85).argmin()
    ids = np.unique(sid[sid > 0])
    ids = ids[[lab[sid == s][0, 2] > 0 for s in ids]]  # stands with trees
    lai = np.array([lab[sid == s][0, 11] for s in ids])
    px = [cube[sid == s] for s in ids]
    mean_ndvi = np.array([((p[:, nir] - p[:, red]) / (p[:, nir] + p[:, red])).mean() for p in px])
    assert np.corrcoef(lai, mean_ndvi)[0, 1] > 0.5


def test_every_continuous_variable_is_a_function_of_the_spectra(tmp_path):
    """What the synthetic TAIGA is for: a model can learn each variable from the image. A
    linear fit on the log of each stand's mean spectrum, made on half of the stands, predicts
    every continuous variable (clipped at its 98th percentile, as build-taiga does) of the
    other half (R² > 0.3; 0.47..0.95 measured over seeds 0..3, the least being stem density;
    the generator before variables were tied to the spectra gave stem density 0.05..0.23)."""
    synth_taiga(tmp_path, size=(256, 256), bands=8, stands=300, seed=0)
    cube = EnviRaster.open(tmp_path / f"{CUBE_NAMES[0]}.hdr").read_rows(0, 256).astype(float)
    lab = EnviRaster.open(tmp_path / f"{STANDS_NAME}.hdr").read_rows(0, 256)
    sid = lab[..., 13]
    ids = [s for s in np.unique(sid[sid > 0]) if lab[sid == s][0, 2] > 0]  # stands with trees
    assert len(ids) > 120
    x = np.log(np.array([cube[sid == s].mean(0) for s in ids]))
    y = np.array([lab[sid == s][0, 3:13] for s in ids], dtype=float)
    y = np.minimum(y, np.percentile(y, 98, axis=0))
    a = np.c_[np.ones(len(x)), x]
    half = np.arange(len(ids)) % 2 == 0
    r2 = []
    for fit, held in ((half, ~half), (~half, half)):
        coef, *_ = np.linalg.lstsq(a[fit], y[fit], rcond=None)
        err = y[held] - a[held] @ coef
        r2.append(1 - (err ** 2).sum(0) / ((y[held] - y[held].mean(0)) ** 2).sum(0))
    r2 = np.mean(r2, 0)
    assert (r2 > 0.3).all(), dict(zip(BAND_NAMES[3:13], r2.round(2)))


def test_deterministic_by_seed(tmp_path, taiga_dir):
    synth_taiga(tmp_path / "a", size=(150, 170), bands=24, stands=16, seed=3)
    synth_taiga(tmp_path / "b", size=(150, 170), bands=24, stands=16, seed=4)
    for name in (CUBE_NAMES[0], STANDS_NAME):
        assert (tmp_path / "a" / name).read_bytes() == (taiga_dir / name).read_bytes()
        assert (tmp_path / "b" / name).read_bytes() != (taiga_dir / name).read_bytes()


def test_truncated_or_missing_files_are_reported(tmp_path, taiga_dir):
    bad = tmp_path / "bad"
    synth_taiga(bad, size=(80, 80), bands=8, stands=5, seed=0)
    data = bad / CUBE_NAMES[0]
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(InputError, match="truncated"):
        EnviRaster.open(bad / f"{CUBE_NAMES[0]}.hdr")
    (bad / f"{STANDS_NAME}.hdr").unlink()
    with pytest.raises(InputError, match=STANDS_NAME):
        find_taiga(bad)
