"""Bad input from the audit of issue 21 (section 3b): each case is the one line the user sees,
its exit code, and nothing that looks complete left behind."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import training_fixtures as tf

from reliability.hardening_data import TAIGA_BUILD, merced_source, one_line, taiga_source
from rsbench.cli.main import main
from rsbench.datasets.sources.envi import EnviRaster, format_header
from rsbench.errors import InputError

from .conftest import OPTS_CLI, assert_same_dataset

CUBE = "20170615_reflectance_mosaic_128b"
HOUSTON = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "houston-crop" \
    / "houston_dataset.mat"
ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def taiga_src(tmp_path_factory) -> Path:
    return taiga_source(tmp_path_factory.mktemp("taiga") / "src")


def edited_copy(src: Path, dst: Path, name: str, old: str, new: str) -> Path:
    """A copy of the TAIGA source whose header ``name``.hdr has ``old`` replaced by ``new``."""
    shutil.copytree(src, dst)
    hdr = dst / f"{name}.hdr"
    text = hdr.read_text()
    assert old in text
    hdr.write_text(text.replace(old, new))
    return dst


# ------------------------------------------------------------------ ENVI headers


@pytest.mark.parametrize("old, new, expect", [
    ("interleave = bsq", "interleave = bil", "'interleave = bil' does not fit"),
    ("interleave = bsq", "interleave = bip", "'interleave = bip' does not fit"),
    ("samples = 160", "samples = abc", "'samples = abc' is not a whole number; set it to the "
                                       "number of columns"),
    ("samples = 160", "samples = -128", "'samples = -128' is not at least 1"),
    ("header offset = 0", "header offset = -16", "'header offset = -16' is not at least 0"),
    ("byte order = 0", "byte order = 7", "'byte order = 7' must be 0 (little-endian) or 1"),
    ("lines = 140", "lines = 139", "holds 716800 bytes but"),
])
def test_envi_header_that_cannot_be_right_is_one_line(taiga_src, tmp_path, capsys, old, new,
                                                      expect):
    src = edited_copy(taiga_src, tmp_path / "src", CUBE, old, new)
    out = tmp_path / "out"
    code, err = run_cli(["-q", "build-taiga", "--taiga", str(src), "--out", str(out),
                         *TAIGA_BUILD], capsys)
    line = one_line(err)
    assert code == 1 and expect in line and CUBE in line, line
    if "interleave" in new:
        assert "than read as bsq; set 'interleave = bsq'" in line
    assert not out.exists()


def _write_envi(folder: Path, cube: np.ndarray, written: str, declared: str) -> Path:
    """``cube`` (lines, samples, bands) written in layout ``written`` under a header that says
    ``declared``."""
    folder.mkdir(parents=True)
    order = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[written]
    np.ascontiguousarray(cube.transpose(order)).astype(cube.dtype.newbyteorder("<")) \
        .tofile(folder / "x")
    code = {"u2": 12, "i2": 2, "i4": 3, "u1": 1}[cube.dtype.str[1:]]
    (folder / "x.hdr").write_text(format_header({
        "samples": cube.shape[1], "lines": cube.shape[0], "bands": cube.shape[2],
        "header offset": 0, "data type": code, "interleave": declared, "byte order": 0}))
    return folder / "x.hdr"


@pytest.fixture(scope="module")
def cubes(taiga_src) -> dict[str, np.ndarray]:
    """Rasters of known layout: the real Houston crop (if present) and the synthetic TAIGA's
    two rasters (a reflectance cube and a raster of unrelated forest variables)."""
    out = {}
    if HOUSTON.exists():
        from scipy.io import loadmat

        out["houston"] = loadmat(HOUSTON)["hyprImg"]
    for name in (CUBE, "forestdata_stands"):
        r = EnviRaster.open(taiga_src / f"{name}.hdr")
        out[name] = r.read_rows(0, r.lines)
    return out


def test_interleave_check_accepts_every_correct_header(cubes, tmp_path):
    """No false positive: each raster in each layout, declared right, opens and reads back."""
    if "houston" not in cubes:
        pytest.skip(f"real Houston crop not found at {HOUSTON}")
    for name, cube in cubes.items():
        for layout in ("bsq", "bil", "bip"):
            r = EnviRaster.open(_write_envi(tmp_path / f"{name}-{layout}", cube, layout, layout))
            np.testing.assert_array_equal(r.read_rows(0, r.lines), cube)


@pytest.mark.parametrize("declared", ["bil", "bip"])
def test_bsq_data_declared_bil_or_bip_is_refused(cubes, tmp_path, declared):
    """The audit's case, on the real crop and the synthetic reflectance cube (the forest-variable
    raster is not a spectrum; for it only mix-ups both smoothness models see are refused)."""
    for name in ("houston", CUBE):
        if name not in cubes:
            continue
        hdr = _write_envi(tmp_path / name, cubes[name], "bsq", declared)
        with pytest.raises(InputError, match=rf"'interleave = {declared}' does not fit .* "
                                             r"set 'interleave = bsq'"):
            EnviRaster.open(hdr)
        shutil.rmtree(tmp_path / name)


def test_noise_is_never_refused(tmp_path):
    """Data with no spatial or spectral structure gives every layout the same score."""
    noise = np.random.default_rng(1).integers(1, 1000, (50, 60, 10)).astype(np.int16)
    for layout in ("bil", "bip"):
        EnviRaster.open(_write_envi(tmp_path / layout, noise, "bsq", layout))


# ------------------------------------------------------------------ Ctrl-C (real SIGINT)


def _build_with_sigint_at(point: str, src: Path, out: Path) -> subprocess.CompletedProcess:
    """build-taiga as its own process (argv as the console script), sent a real SIGINT by
    itself when finalize reaches ``point``."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        from rsbench.datasets.format import finalize as fin
        def reached(step):
            if step == {point!r}:
                os.kill(os.getpid(), signal.SIGINT)
        fin.reached = reached
        sys.argv = ["rsbench", "-q", "build-taiga", "--taiga", {str(src)!r}, "--out",
                    {str(out)!r}, *{OPTS_CLI!r}]
        from rsbench.cli.main import main
        sys.exit(main())
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("point", ["arrays", "manifest"])
def test_sigint_in_finalize_prints_the_resume_line_and_resumes(point, tiny_taiga,
                                                               taiga_reference, tmp_path):
    """"arrays" lands while the preview thread draws: the build used to hang there (a Ctrl-C
    inside an import left CPython's import lock held) or abort with SIGABRT."""
    out = tmp_path / "taiga"
    done = _build_with_sigint_at(point, tiny_taiga, out)
    assert done.returncode == 130, (done.returncode, done.stderr)
    line = one_line(done.stderr)
    assert line.startswith("rsbench: interrupted; continue with: rsbench ") and "--resume" in line
    if point != "manifest":
        assert not (out / "dataset.json").exists()
    assert main(shlex.split(line.split("continue with: ", 1)[1])[1:]) == 0
    assert_same_dataset(out, taiga_reference)


def test_ctrl_c_inside_an_import_is_held_until_the_import_returns(tmp_path):
    """The main thread imports a slow module; SIGINT arrives mid-import: the import completes
    (the module is whole in sys.modules) and KeyboardInterrupt follows right after."""
    (tmp_path / "slowmod.py").write_text("import time\ntime.sleep(0.6)\nDONE = True\n")
    code = textwrap.dedent("""
        import os, signal, sys, threading, time
        from rsbench.interrupts import ctrl_c_outside_imports
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            with ctrl_c_outside_imports():
                import slowmod
                time.sleep(5)
        except KeyboardInterrupt:
            took = time.monotonic() - t0
            print("interrupted", sys.modules["slowmod"].DONE, took < 2)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["interrupted", "True", "True"]


def test_ctrl_c_while_joining_a_thread_waits_for_it(tmp_path):
    """SIGINT while the main thread joins a running thread (finalize waiting for the previews):
    Python 3.11 would mark the thread stopped and finalize under it (SIGABRT in matplotlib's C++
    code); the KeyboardInterrupt now comes after the thread has really ended."""
    code = textwrap.dedent("""
        import os, signal, sys, threading, time
        from rsbench.interrupts import ctrl_c_outside_imports
        done = []
        worker = threading.Thread(target=lambda: (time.sleep(0.6), done.append(1)))
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            with ctrl_c_outside_imports():
                worker.start()
                worker.join()
                time.sleep(5)
        except KeyboardInterrupt:
            print("interrupted", done == [1], worker.is_alive())
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["interrupted", "True", "False"]


def test_ctrl_c_after_the_command_returned_keeps_its_exit_code(tmp_path):
    """A SIGINT while Python tears down (after the work is done) used to kill the process with
    -2 and no word; the command's own exit code now stands."""
    code = textwrap.dedent("""
        import os, signal, sys, time
        sys.argv = ["rsbench", "--version"]
        from rsbench.cli.main import main
        code = main()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        sys.exit(code)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0 and "rsbench" in done.stdout, (done.returncode, done.stderr)


# ------------------------------------------------------------------ --splits


def test_splits_from_a_device_or_fifo_is_refused_without_reading(taiga_src, tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for bad in ("/dev/zero", str(fifo)):
        out = tmp_path / "out"
        code, err = run_cli(["-q", "build-taiga", "--taiga", str(taiga_src), "--out", str(out),
                             "--splits", bad, *TAIGA_BUILD], capsys)
        assert code == 1 and one_line(err) == (f"rsbench: error: --splits {bad} is not a regular "
                                               "file; give the splits.csv of a dataset (columns "
                                               "key, split)")
        assert not out.exists()


def test_splits_larger_than_any_split_file_is_refused(taiga_src, tmp_path, capsys):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:  # sparse: no disk used
        f.truncate(300 << 20)
    code, err = run_cli(["-q", "build-taiga", "--taiga", str(taiga_src), "--out",
                         str(tmp_path / "out"), "--splits", str(big), *TAIGA_BUILD], capsys)
    line = one_line(err)
    assert code == 1 and f"--splits {big} holds 315 MB" in line and "268 MB at most" in line
    assert not (tmp_path / "out").exists()


def test_splits_with_no_training_sample_builds_nothing(tmp_path, capsys):
    src = merced_source(tmp_path / "src")
    ref = tmp_path / "ref"
    assert main(["-q", "build-msc", "--merced", str(src), "--out", str(ref), "--size", "32"]) == 0
    table = pd.read_csv(ref / "splits.csv")
    table["split"] = "test"
    table.to_csv(tmp_path / "all-test.csv", index=False)
    out = tmp_path / "out"
    code, err = run_cli(["-q", "build-msc", "--merced", str(src), "--out", str(out), "--size",
                         "32", "--splits", str(tmp_path / "all-test.csv")], capsys)
    line = one_line(err)
    assert code == 1 and f"--splits {tmp_path / 'all-test.csv'} puts no sample in train" in line
    assert not out.exists()


# ------------------------------------------------------------------ received dataset folders


def _edit_manifest(root: Path, change) -> None:
    m = json.loads((root / "dataset.json").read_text())
    change(m)
    (root / "dataset.json").write_text(json.dumps(m))


def _bad_label(root: Path) -> None:
    idx = pd.read_parquet(root / "index.parquet")
    idx.loc[0, "label"] = 7  # merced has 3 classes
    idx.to_parquet(root / "index.parquet")


def _duplicate_class(m: dict) -> None:
    m["tasks"]["merced"]["classes"][1] = m["tasks"]["merced"]["classes"][0]


@pytest.mark.parametrize("damage, expect", [
    (_bad_label, "index.parquet: column 'label' holds label 7 for task 'merced', which has 3 "
                 "classes (0..2)"),
    (lambda r: _edit_manifest(r, lambda m: m["arrays"]["image"].update(layout="tiles")),
     "dataset.json: arrays.image.layout 'tiles' is not 'sample' or 'raster'"),
    (lambda r: _edit_manifest(r, _duplicate_class),
     "dataset.json: tasks.merced.classes names 'merced_c0' twice"),
])
def test_damaged_dataset_is_refused_before_training(damage, expect, tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    tf.register()
    data = tf.write_msc(tmp_path / "mini-msc", per_class=5)
    damage(data)
    runs = tmp_path / "runs"
    code, err = run_cli(["-q", "run", "mini-msc", "--model", "tiny", "--data", str(data),
                         "--epochs", "1", "--batch-size", "4", "--input-size", "32",
                         "--max-train-batches", "1", "--workers", "0", "--device", "cpu",
                         "--out", str(runs)], capsys)
    line = one_line(err)
    assert code == 1 and expect in line, line
    assert not list(runs.rglob("metrics.json")) and not list(runs.rglob("checkpoint.pt"))


# ------------------------------------------------------------------ source folders


def test_non_utf8_file_name_in_a_source_folder_is_named(tmp_path, capsys):
    src = merced_source(tmp_path / "src")
    folder = next(src.rglob("agricultural00.tif")).parent
    bad = folder / os.fsdecode(b"bad\xff\xfename.tif")
    shutil.copy(folder / "agricultural00.tif", bad)
    out = tmp_path / "out"
    code, err = run_cli(["-q", "build-msc", "--merced", str(src), "--out", str(out), "--size",
                         "32"], capsys)
    line = one_line(err)
    assert code == 1 and f"{folder}/bad\\xff\\xfename.tif has a file name that is not UTF-8" \
        in line and "rename them to UTF-8" in line
    assert not out.exists()
    bad.rename(folder / "renamed.tif")  # the fix the line names works
    assert main(["-q", "build-msc", "--merced", str(src), "--out", str(out), "--size", "32"]) == 0
    json.loads((out / "dataset.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ options and reports


@pytest.mark.parametrize("existing", [False, True])
def test_stride_beyond_the_labelled_area_leaves_no_staging(taiga_src, tmp_path, capsys,
                                                           existing):
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    code, err = run_cli(["-q", "build-taiga", "--taiga", str(taiga_src), "--out", str(out),
                         "--patch", "9", "--stride", "10000", "--bands", "0:16"], capsys)
    line = one_line(err)
    assert code == 2 and "--stride 10000 leaves no window centre inside the labelled area" in line
    assert not out.exists() if not existing else not (out / ".staging").exists()
    assert main(["-q", "build-taiga", "--taiga", str(taiga_src), "--out", str(out),
                 *TAIGA_BUILD]) == 0  # the corrected command just works


def test_report_plot_with_non_finite_metrics_warns_nothing(tmp_path, capsys):
    for method, seeds in {"mtln": (0, 1), "single-task": (0,)}.items():
        for seed in seeds:
            d = tmp_path / "runs" / "msc" / method / str(seed)
            d.mkdir(parents=True)
            (d / "config.json").write_text("{}")
            tasks = {"merced": {"oa": float("nan")}, "aid": {"oa": "nan"},
                     "nwpu": {"oa": 0.8 if seed == 0 else float("inf")}}
            (d / "metrics.json").write_text(json.dumps({
                "complete": True, "benchmark": "msc", "method": method, "seed": seed,
                "tasks": tasks, "parameters": {"total": 10, "breakdown": {"total": 10}}}))
    png = tmp_path / "msc.png"
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["report", str(tmp_path / "runs"), "--table", "msc", "--plot", str(png),
                     "--ci"])
    captured = capsys.readouterr()
    assert code == 0 and png.stat().st_size > 2000
    assert [str(w.message) for w in caught] == []
    assert "nan" not in captured.out.lower() and "inf" not in captured.out.lower()
    mtln = next(ln for ln in captured.out.splitlines() if ln.startswith("| MTLN"))
    assert mtln.split("|")[1:4] == [" MTLN ", " – ", " – "]  # Merced, AID: no finite value
    assert "80.00" in mtln.split("|")[4]  # NWPU: the one finite seed
    assert "not finite numbers" in captured.out


def test_non_utf8_gid_file_name_is_named(tmp_path, capsys):
    from rsbench.datasets.synth.gid import synth_gid

    root = tmp_path / "gid"
    synth_gid(root, classes=5, images=2, size=(240, 256), seed=1)
    scheme = root / "Large-scale Classification_5classes"
    stem = sorted(p.stem for p in (scheme / "image_RGB").glob("*.tif"))[0]
    bad = os.fsdecode(b"bad\xff") + stem  # an image and its label, both with the bad name
    shutil.copy(scheme / "image_RGB" / f"{stem}.tif", scheme / "image_RGB" / f"{bad}.tif")
    shutil.copy(scheme / "label_5classes" / f"{stem}_label.tif",
                scheme / "label_5classes" / f"{bad}_label.tif")
    out = tmp_path / "out"
    code, err = run_cli(["-q", "build-psc", "--gid", str(root), "--classes", "5", "--out",
                         str(out)], capsys)
    line = one_line(err)
    assert code == 1 and f"image_RGB/bad\\xff{stem}.tif has a file name that is not UTF-8" \
        in line and "rename them to UTF-8" in line, line
    assert not out.exists()
    for sub, suffix in (("image_RGB", ""), ("label_5classes", "_label")):
        (scheme / sub / f"{bad}{suffix}.tif").rename(scheme / sub / f"renamed{suffix}.tif")
    assert main(["-q", "build-psc", "--gid", str(root), "--classes", "5", "--out", str(out)]) == 0
    sources = json.loads((out / "dataset.json").read_text(encoding="utf-8"))["sources"]
    assert sum("renamed" in s["path"] for s in sources) == 2  # the renamed pair was built
