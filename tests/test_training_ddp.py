"""DDP: `torchrun --nproc-per-node 2` on CPU with the gloo backend, on a tiny dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import training_fixtures as tf

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent

ENTRY = """
import sys, training_fixtures as tf
tf.register()
from rsbench.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_two_process_gloo_run_trains_and_evaluates_every_test_sample(tmp_path):
    data = tf.write_msc(tmp_path / "mini-msc", per_class=5)
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{PROJECT}", "OMP_NUM_THREADS": "1",
           "RSBENCH_QUIET": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(entry), "run", "mini-msc", "--model", "tiny", "--data", str(data),
           "--out", str(tmp_path / "runs"), "--epochs", "1", "--batch-size", "8",
           "--workers", "0", "--device", "cpu", "--lr", "0.01"]
    # input stays 224 (the benchmark's) on purpose: exercises on-device resizing as well
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    run = tf.run_dir(tmp_path / "runs", "mini-msc", "tiny")
    m = json.loads((run / "metrics.json").read_text())
    assert m["complete"] and m["world_size"] == 2
    index = tf.index_of(data)
    for task in ("merced", "aid", "nwpu"):
        # the two ranks evaluate disjoint halves; their summed confusion covers every test row
        n_test = int(((index["task"] == task) & (index["split"] == "test")).sum())
        assert m["tasks"][task]["samples"] == n_test
    hist = (run / "history.csv").read_text().splitlines()
    header, first = hist[0].split(","), hist[1].split(",")
    # global batch 8 = 4 per rank; 2 steps per epoch (largest task: 16 train rows), 3 tasks
    assert int(first[header.index("samples")]) == 2 * 3 * 8
    assert p.stdout.count("mini-msc tiny seed 0") == 1  # only rank 0 reports
