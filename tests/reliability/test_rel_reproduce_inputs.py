"""`rsbench reproduce` given what a user can mistype (issue 21 §3b): one line, exit 1."""

from __future__ import annotations

from rsbench.cli.main import main


def test_reproduce_data_folder_that_does_not_exist_is_one_line(tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["-q", "reproduce", "mini-msc", "--data", str(tmp_path / "nope" / "none"),
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.strip().splitlines()
    assert lines == [f"rsbench: error: --data {tmp_path / 'nope' / 'none'}: no such folder; "
                     "build the dataset there first (e.g. rsbench build-msc ... --out DIR) or "
                     "give the folder a builder wrote"], captured
    assert captured.out == "" and not out.exists()  # nothing planned, nothing written


def test_status_of_a_runs_folder_that_does_not_exist_is_one_line(tmp_path, capsys):
    code = main(["status", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "does not exist" in err[0]


def test_slurm_options_that_cannot_be_right_are_one_line(tmp_path, capsys):
    from rsbench.launch.options import mem_gb, sbatch_lines, time_minutes

    assert time_minutes("90") == 90 and time_minutes("2-00:00:00") == 2880
    assert time_minutes("01:30:00") == 90 and time_minutes("10:30") == 11
    assert mem_gb("32G") == 32 and mem_gb("16384M") == 16
    assert sbatch_lines(("qos=high", "--exclusive")) == {"qos": "high", "exclusive": ""}
    data = tmp_path / "d"
    data.mkdir()
    for bad, word in ((["--time", "soon"], "--time"), (["--mem", "lots"], "--mem"),
                      (["--sbatch", "=x"], "--sbatch")):
        code = main(["-q", "reproduce", "mini-msc", "--data", str(data), "--out",
                     str(tmp_path / "runs"), "--launcher", "submitit-local", *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and word in err[0], err
