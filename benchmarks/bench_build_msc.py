"""Benchmark `build-msc` and the built arrays against decoding JPEGs (issue 3).

On a synthetic NWPU-sized source (256×256 JPEGs, 45 classes):
1. floor: decode + resize (Pillow, antialiased bicubic) every JPEG in a plain loop;
2. `build_msc` with 1 and with all workers: its parallel stage (decode, pixel hash, resize,
   stage parts) alone, and the whole command (+ gather into arrays, splits, previews);
3. reader: samples/s of `TaskDataset` over the built uint8 arrays vs a dataset that decodes and
   resizes the JPEG for every sample (what training would do without the build step).

Usage: python benchmarks/bench_build_msc.py [--per-class 20] [--size 224] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from rsbench.datasets.builders.msc import build_msc, plan_full
from rsbench.datasets.builders.scene_build import write_parts
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.datasets.sources.scene_images import RESAMPLE
from rsbench.datasets.sources.scenes import read_scene_dataset
from rsbench.datasets.synth.scenes import synth_scenes
from rsbench.progress import set_quiet


def decode_resize_loop(paths: list[Path], size: int) -> float:
    """Seconds to decode and resize every path with Pillow in a plain loop."""
    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            np.asarray(im.convert("RGB").resize((size, size), RESAMPLE))
    return time.perf_counter() - t0


def read_samples(dataset, order: np.ndarray) -> float:
    t0 = time.perf_counter()
    for i in order:
        s = dataset[int(i)]
        s["image"].float()  # touch the pixels as a training step would
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--per-class", type=int, default=20, help="images per NWPU class")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    set_quiet(True)
    import torch

    from rsbench.datasets.torch_dataset import TaskDataset

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth_scenes(tmp / "src", "nwpu", per_class=args.per_class)
        paths = [im.path for im in read_scene_dataset(tmp / "src", "nwpu").images]
        n = len(paths)
        decode_resize_loop(paths[:20], args.size)  # warm the file cache
        floor = decode_resize_loop(paths, args.size)
        timings, stage = {}, {}
        source = read_scene_dataset(tmp / "src", "nwpu")
        for w in sorted({1, args.workers}):
            # the scalable stage alone: decode, hash, resize and stage parts
            writer = DatasetWriter(tmp / f"stage{w}", builder="bench", params={})
            t0 = time.perf_counter()
            write_parts(writer, [plan_full(source)], (args.size, args.size), w)
            stage[w] = time.perf_counter() - t0
            # the whole command: + gather into arrays, splits, duplicates, previews, manifest
            t0 = time.perf_counter()
            build_msc(tmp / f"msc{w}", {"nwpu": tmp / "src"}, size=(args.size, args.size),
                      workers=w)
            timings[w] = time.perf_counter() - t0

        built = TaskDataset(tmp / "msc1", "nwpu", None)
        labels = built.data.index["label"].to_numpy()

        class DecodeEachTime(torch.utils.data.Dataset):
            def __len__(self):
                return n

            def __getitem__(self, i):
                with Image.open(paths[i]) as im:
                    arr = np.asarray(im.convert("RGB").resize((args.size, args.size), RESAMPLE))
                return {"image": torch.from_numpy(arr).permute(2, 0, 1),
                        "label": torch.as_tensor(labels[i])}

        order = np.random.default_rng(0).permutation(n)
        read_samples(built, order[:50])
        t_arrays = read_samples(built, order)
        t_decode = read_samples(DecodeEachTime(), order)

    print(f"\nNWPU-sized synthetic source: {n} JPEGs 256x256 -> {args.size}x{args.size}, "
          f"{os.cpu_count()} CPU cores\n")
    print("| step | images/s | vs Pillow decode+resize loop |")
    print("|---|---:|---:|")
    print(f"| Pillow decode + resize, plain loop (floor) | {n / floor:.0f} | 1.00 |")
    for w in timings:
        ws = f"{w} worker{'s' if w > 1 else ''}"
        print(f"| decode+hash+resize+stage stage, {ws} | {n / stage[w]:.0f} | "
              f"{floor / stage[w]:.2f} |")
        print(f"| whole build-msc command, {ws} | {n / timings[w]:.0f} | "
              f"{floor / timings[w]:.2f} |")
    print("\n| reader | samples/s | vs decoding each time |")
    print("|---|---:|---:|")
    print(f"| decode + resize the JPEG per sample | {n / t_decode:.0f} | 1.0 |")
    print(f"| TaskDataset over built uint8 arrays | {n / t_arrays:.0f} | "
          f"{t_decode / t_arrays:.1f} |")


if __name__ == "__main__":
    main()
