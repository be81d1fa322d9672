"""Classification maps of a TAIGA test region (HSI paper, Fig. 10) from a finished run.

Patch classifiers (centre-pixel models): every pixel of the region whose full window lies
inside the stored raster is predicted as the centre of its own window (what they are trained
for). Dense models (``per_pixel``): the region is tiled with windows at the dataset's stride and
each pixel takes the prediction of the window whose centre is nearest, as the per-pixel test
scoring does (:func:`rsbench.training.taiga.owned_pixels`). The ground truth comes from the
``targets_cls`` raster. Writes one PNG per categorical variable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rsbench.datasets.format.reader import open_dataset
from rsbench.errors import InputError, UsageError
from rsbench.progress import progress


def load_run_model(run: Path, data, device: torch.device):
    """The run's model with its last checkpoint's weights, in eval mode (rebuilt from the run
    folder alone; the checkpoint is read without running any code it may hold)."""
    from rsbench.training.run_config import read_run_config
    from rsbench.training.run_folder import ModelMismatch, rebuild_model

    conf_path = run / "config.json"
    if not conf_path.exists() or not (run / "checkpoint.pt").exists():
        raise InputError(f"{run} holds no config.json and checkpoint.pt; give a run folder "
                         "written by `rsbench run taiga`")
    typed = read_run_config(conf_path)  # every field used below checked, before any build
    check_same_windows(typed, data)
    bands = int(data.manifest["arrays"]["image"]["shape"][-1])
    trained = typed.model_spec.kwargs.get("in_channels", bands)
    try:
        if trained != bands:
            raise ModelMismatch("other bands")
        model, conf = rebuild_model(run, legacy_kwargs={"in_channels": bands})
    except ModelMismatch:
        raise InputError(f"{run} was trained on other data than {data.root} ({bands} bands "
                         f"here); give --data the dataset it was trained on "
                         f"({typed.data or 'see its config.json'})") from None
    return model.to(device).eval(), conf


def centre_logits(pred: torch.Tensor) -> torch.Tensor:
    """(B, K) logits of the window's centre pixel from centre (B, K) or per-pixel (B, K, H, W)
    outputs (the dense models of the per-pixel taiga benchmarks predict whole windows)."""
    if pred.ndim == 4:
        return pred[:, :, pred.shape[-2] // 2, pred.shape[-1] // 2]
    return pred


def check_same_windows(typed, data) -> None:
    """The map's windows must be those the run trained on: the same patch size and bands as
    recorded in the run's config.json (``dataset_windows``). The folder named there is never
    opened: a received run folder must not make rsbench read a path the user did not give."""
    from rsbench.training.run_config import dataset_windows

    ours, theirs = dataset_windows(data.manifest), typed.windows
    if not ours or not theirs:
        return  # not a TAIGA dataset, or a run from before windows were recorded
    for key, value in theirs.items():
        if ours.get(key) != value:
            raise InputError(f"{data.root} has other {key} ({ours.get(key)}) than the dataset "
                             f"{typed.path.parent} was trained on ({value}); give --data that "
                             "dataset")


def test_region(data, size: int) -> tuple[int, int, int, int]:
    """A square of ``size`` px around the densest cluster of test-window centres."""
    idx = data.index
    test = idx[idx["split"] == "test"]
    if test.empty:
        raise InputError(f"{data.root} has no test windows to map")
    r = int(np.median(test["win_row"] + test["win_h"] // 2))
    c = int(np.median(test["win_col"] + test["win_w"] // 2))
    h, w = data.manifest["arrays"]["image"]["shape"][:2]
    r0 = int(np.clip(r - size // 2, 0, max(0, h - size)))
    c0 = int(np.clip(c - size // 2, 0, max(0, w - size)))
    return r0, min(h, r0 + size), c0, min(w, c0 + size)


def tile_windows(region: tuple[int, int, int, int], patch: int, stride: int,
                 shape: tuple[int, int]) -> np.ndarray:
    """(n, 4) windows (row, col, h, w) inside a raster of ``shape`` whose centres step by
    ``stride`` over ``region`` (the last row and column of fitting centres included), so that
    every region pixel that has a fitting window is covered."""
    half = patch // 2

    def centres(a: int, b: int, size: int) -> list[int]:
        lo, hi = max(a, half), min(b, size - half) - 1
        if hi < lo:
            return []
        out = list(range(lo, hi + 1, max(1, stride)))
        return out + [hi] if out[-1] != hi else out
    rows, cols = centres(region[0], region[1], shape[0]), centres(region[2], region[3], shape[1])
    return np.array([(r - half, c - half, patch, patch) for r in rows for c in cols],
                    dtype=np.int64).reshape(-1, 4)


@torch.no_grad()
def predict_region(model, data, region: tuple[int, int, int, int], tasks: Sequence[str],
                   device: torch.device, batch: int = 256) -> dict[str, np.ndarray]:
    """Predicted class indices over ``region`` (255 where no window fits): centre pixels of
    one window per pixel, or stitched window maps for dense models (module docstring)."""
    img = data.array("image")
    p = int(data.manifest.get("taiga", {}).get("patch") or data.index["win_h"].iloc[0])
    half = p // 2
    stats = data.manifest["taiga"]["image_stats"]
    lo = torch.tensor(stats["min"], dtype=torch.float32, device=device).view(1, -1, 1, 1)
    rng = (torch.tensor(stats["max"], dtype=torch.float32, device=device).view(1, -1, 1, 1)
           - lo).clamp_min(1e-6)
    r0, r1, c0, c1 = region
    h, w = img.shape[:2]
    out = {t: np.full((r1 - r0, c1 - c0), 255, np.uint8) for t in tasks}
    if getattr(model, "per_pixel", False):
        from rsbench.training.taiga import owned_pixels

        stride = min(p, int(data.manifest.get("taiga", {}).get("stride") or half))
        wins = tile_windows(region, p, stride, (h, w))
        masks = owned_pixels(wins)
        for s in progress(range(0, len(wins), batch), desc="map",
                          total=-(-len(wins) // batch)):
            chunk = wins[s:s + batch]
            x = np.stack([img[r:r + p, c:c + p] for r, c, _, _ in chunk])
            pred = model((torch.from_numpy(x).to(device).permute(0, 3, 1, 2).float() - lo)
                         / rng, list(tasks))
            for t in tasks:
                labels = pred[t].argmax(1).cpu().numpy().astype(np.uint8)
                for (r, c, _, _), m, lab in zip(chunk, masks[s:s + batch], labels):
                    # the window's owned pixels that fall inside the region
                    a, b, e, f = max(r, r0), min(r + p, r1), max(c, c0), min(c + p, c1)
                    if a >= b or e >= f:
                        continue
                    keep = m[a - r:b - r, e - c:f - c]
                    out[t][a - r0:b - r0, e - c0:f - c0][keep] = lab[a - r:b - r,
                                                                     e - c:f - c][keep]
        return out
    coords = [(r, c) for r in range(max(r0, half), min(r1, h - half))
              for c in range(max(c0, half), min(c1, w - half))]
    for s in progress(range(0, len(coords), batch), desc="map", total=-(-len(coords) // batch)):
        chunk = coords[s:s + batch]
        x = np.stack([img[r - half:r + half + 1, c - half:c + half + 1] for r, c in chunk])
        xt = (torch.from_numpy(x).to(device).permute(0, 3, 1, 2).float() - lo) / rng
        pred = model(xt, list(tasks))
        for t in tasks:
            labels = centre_logits(pred[t]).argmax(1).cpu().numpy().astype(np.uint8)
            for (r, c), v in zip(chunk, labels):
                out[t][r - r0, c - c0] = v
    return out


def write_maps(run: str | Path, data_path: str | Path, out: str | Path | None = None,
               size: int = 64, device: str = "cpu") -> list[Path]:
    """Ground truth vs prediction maps of a test region, one PNG per categorical variable."""
    from rsbench.plots.hsi_figures import plot_class_maps

    run = Path(run)
    if size < 8:
        raise UsageError(f"--size {size} is too small; use at least 8 pixels")
    data = open_dataset(data_path)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                       else ("cpu" if device == "auto" else device))
    model, conf = load_run_model(run, data, dev)
    tasks = [t for t, spec in data.tasks.items() if spec["type"] == "classification"
             and t in model.tasks]
    region = test_region(data, size)
    preds = predict_region(model, data, region, tasks, dev)
    truth_all = data.array("targets_cls")
    out_dir = Path(out) if out else run
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    r0, r1, c0, c1 = region
    for t in tasks:
        spec = data.task(t)
        truth = np.asarray(truth_all[r0:r1, c0:c1, int(spec.get("channel", 0))])
        path = out_dir / f"map_{t}.png"
        plot_class_maps(truth, preds[t], spec["classes"], path,
                        f"{conf['model']} on {t}, rows {r0}:{r1}, cols {c0}:{c1}",
                        ignore=spec.get("ignore_index"))
        written.append(path)
    return written
