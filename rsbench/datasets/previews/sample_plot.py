"""One sample of a built dataset as a matplotlib Figure, the way TorchGeo's ``plot()`` shows it.

Scene classification: the image titled with its class name. PSC: image, mask coloured with the
manifest's class colours, a legend of the classes present, the scene label as title. TAIGA: an
RGB composite of the hyperspectral window (bands nearest 640/550/460 nm when the manifest has
wavelengths; otherwise the bands at 60 %, 35 % and 10 % of the stored band range, as R, G, B),
each channel stretched over the training mean ± 2 std of its band (the manifest's band
statistics; the window's 2nd-98th percentile when they are missing); the categorical label
windows coloured (ignore = white); the continuous targets' values at the window centre (red
cross) in physical units, and, when the task plotted is continuous, its window as a map. Figures use the Agg canvas
without pyplot, so no GUI state is touched; Jupyter displays them all the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rsbench.errors import UsageError

RGB_NM = (640.0, 550.0, 460.0)  # red, green, blue targets for the TAIGA composite
RGB_FRACTIONS = (0.6, 0.35, 0.1)  # fallback: position in the stored band range, R, G, B
IGNORE_RGB = (255, 255, 255)


def _figure(ncols: int, width: float = 3.6, height: float = 3.9):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def palette(classes: list[str], colors: list | None) -> np.ndarray:
    """N×3 uint8 class colours: the manifest's, else matplotlib's tab20 (class 0 of a PSC mask,
    'unlabelled', keeps the manifest's colour, black in rsbench's builders)."""
    if colors:
        pal = np.asarray(colors, dtype=np.uint8)[:, :3]
        if len(pal) >= len(classes):
            return pal
    from matplotlib import colormaps

    tab = colormaps["tab20"]
    return np.array([[round(255 * c) for c in tab(k % 20)[:3]] for k in range(len(classes))],
                    dtype=np.uint8)


def colour_mask(mask: np.ndarray, pal: np.ndarray, ignore: int | None = None) -> np.ndarray:
    """Index mask → H×W×3 uint8 image; ``ignore`` and out-of-palette indices are white."""
    lut = np.full((256, 3), IGNORE_RGB, dtype=np.uint8)
    lut[: len(pal)] = pal
    if ignore is not None and 0 <= ignore < 256:
        lut[ignore] = IGNORE_RGB
    return lut[np.asarray(mask, dtype=np.int64).clip(0, 255)]


def stretch(img: np.ndarray, valid: np.ndarray | None = None,
            limits: list[tuple[float, float]] | None = None) -> np.ndarray:
    """H×W×C → float [0, 1], each channel between ``limits[c]`` or else its 2nd and 98th
    percentile of the valid pixels; invalid pixels white."""
    img = img.astype(np.float64)
    out = np.zeros_like(img)
    sel = valid if valid is not None and valid.any() else np.ones(img.shape[:2], bool)
    for c in range(img.shape[2]):
        lo, hi = limits[c] if limits else np.percentile(img[..., c][sel], (2, 98))
        out[..., c] = np.clip((img[..., c] - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    out[~sel] = 1.0
    return out


def display_image(img: np.ndarray) -> np.ndarray:
    """What to show of a stored image: uint8 RGB as is, the last three bands of a wider uint8
    image (as the PSC previews), anything else stretched."""
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.shape[2] > 3:
        img = img[..., -3:]
    return img if img.dtype == np.uint8 else stretch(img)


def rgb_bands(taiga: dict, nbands: int) -> tuple[list[int], str]:
    """Indices into the stored bands for R, G, B and a sentence saying how they were chosen."""
    wl = taiga.get("wavelengths")
    if wl and len(wl) == nbands:
        w = np.asarray(wl, dtype=np.float64)
        units = str(taiga.get("wavelength_units") or "")
        nm = w * 1000.0 if units.lower().startswith("micro") or w.max() < 100 else w
        idx = [int(np.abs(nm - t).argmin()) for t in RGB_NM]
        return idx, "RGB = " + ", ".join(f"{nm[i]:.0f} nm" for i in idx)
    idx = [round(f * (nbands - 1)) for f in RGB_FRACTIONS]
    return idx, "RGB = stored bands " + ", ".join(str(i) for i in idx) + " (no wavelengths)"


def taiga_limits(taiga: dict, idx: list[int]) -> list[tuple[float, float]] | None:
    """Stretch limits of the composite's bands: training mean ± 2 std (the manifest's band
    statistics), so every window of a dataset is shown on the same scale."""
    st = taiga.get("image_stats") or {}
    mean, std = st.get("mean"), st.get("std")
    if not mean or not std or max(idx) >= min(len(mean), len(std)):
        return None
    return [(mean[i] - 2 * std[i], mean[i] + 2 * std[i]) for i in idx]


def _legend(ax, names: list[str], pal: np.ndarray, present: list[int],
            ignored: bool = False) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=pal[k] / 255.0, edgecolor="black", linewidth=0.4,
                     label=names[k]) for k in present]
    if ignored:
        handles.append(Patch(facecolor=np.array(IGNORE_RGB) / 255.0, edgecolor="black",
                             linewidth=0.4, label="ignore (no label)"))
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                  ncol=2, fontsize=7, frameon=False)


def _panel(ax, img, title: str | None, show_titles: bool, **kw) -> Any:
    im = ax.imshow(img, interpolation="nearest", **kw)
    ax.set_xticks([])  # a thin frame, so white (ignore / no data) pixels keep their extent
    ax.set_yticks([])
    if show_titles and title:
        ax.set_title(title, fontsize=9)
    return im


def plot_sample(ds, index: int, show_titles: bool = True, suptitle: str | None = None):
    """The Figure of sample ``index`` of TaskDataset ``ds`` (see the module docstring)."""
    if not -len(ds) <= index < len(ds):
        raise UsageError(f"sample index {index} is out of range: task {ds.task!r} has "
                         f"{len(ds)} samples here; use 0..{len(ds) - 1}")
    index = index % len(ds)
    row = int(ds.rows[index])
    if "taiga" in ds.data.manifest:
        fig = _plot_taiga(ds, row, show_titles)
    elif any(t["type"] == "segmentation" for t in ds.siblings.values()):
        fig = _plot_psc(ds, row, show_titles)
    else:
        fig = _plot_scene(ds, row, show_titles)
    if suptitle is not None:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _class_title(ds, row: int) -> str:
    parts = []
    for name, t in ds.siblings.items():
        if t["type"] == "classification":
            k = int(ds.data.index[t["target"]].iloc[row])
            label = t["classes"][k] if 0 <= k < len(t["classes"]) else f"ignore ({k})"
            parts.append(label if len(ds.siblings) == 1 else f"{name}: {label}")
    return "; ".join(parts)


def _plot_scene(ds, row: int, show_titles: bool):
    fig, (ax,) = _figure(1)
    img = np.asarray(ds.data.sample_array(ds.image_array, row))
    _panel(ax, display_image(img), _class_title(ds, row), show_titles)
    return fig


def _plot_psc(ds, row: int, show_titles: bool):
    fig, (ax_img, ax_mask) = _figure(2, height=4.6)
    img = np.asarray(ds.data.sample_array(ds.image_array, row))
    _panel(ax_img, display_image(img), _class_title(ds, row) or "image", show_titles)
    seg = next(t for t in ds.siblings.values() if t["type"] == "segmentation")
    mask = np.asarray(ds.data.sample_array(seg["target"], row))
    pal = palette(seg["classes"], seg.get("colors"))
    ignore = seg.get("ignore_index")
    _panel(ax_mask, colour_mask(mask, pal, ignore), "mask", show_titles)
    present = [int(k) for k in np.unique(mask) if k < len(pal) and k != ignore]
    _legend(ax_mask, seg["classes"], pal, present)
    return fig


def _physical(t: dict, scaled: float) -> float:
    return scaled * (t["max"] - t["min"]) + t["min"]


def _plot_taiga(ds, row: int, show_titles: bool):
    data, m = ds.data, ds.data.manifest["taiga"]
    cube = np.asarray(data.sample_array(ds.image_array, row))
    idx, how = rgb_bands(m, cube.shape[2])
    valid = (cube != 0).any(axis=2)
    cats = [(n, t) for n, t in ds.siblings.items() if t["type"] == "classification"]
    conts = [(n, t) for n, t in ds.siblings.items() if t["type"] == "regression"]
    focus = ds.siblings[ds.task]
    show_map = focus["type"] == "regression"
    fig, axes = _figure(1 + len(cats) + int(show_map) + 1, width=3.4, height=4.4)
    limits = taiga_limits(m, idx)
    _panel(axes[0], stretch(cube[..., idx], valid, limits), "image, " + how
           + ("\n(training mean ± 2 std)" if limits else "\n(2-98 % of the window)"), show_titles)
    centre = (cube.shape[1] // 2, cube.shape[0] // 2)  # x, y of the pixel the index targets are
    axes[0].plot(*centre, marker="+", color="red", markersize=10)
    cls = np.asarray(data.sample_array("targets_cls", row)) if cats else None
    for ax, (name, t) in zip(axes[1:], cats):
        lab = cls[..., t.get("channel", 0)]
        pal = palette(t["classes"], t.get("colors"))
        ignore = t.get("ignore_index")
        _panel(ax, colour_mask(lab, pal, ignore), name, show_titles)
        _legend(ax, t["classes"], pal, [int(k) for k in np.unique(lab) if k < len(pal)
                                        and k != ignore], ignored=bool((lab == ignore).any()))
    k = 1 + len(cats)
    if show_map:
        reg = np.asarray(data.sample_array("targets_reg", row))[..., focus.get("channel", 0)]
        phys = _physical(focus, reg.astype(np.float64))
        im = _panel(axes[k], np.ma.masked_invalid(phys), f"{ds.task} [{focus.get('unit', '')}]",
                    show_titles, cmap="viridis")
        fig.colorbar(im, ax=axes[k], orientation="horizontal", fraction=0.05, pad=0.04)
        k += 1
    lines = []
    for name, t in conts:
        v = float(data.index[t["target"]].iloc[row])
        unit = t.get("unit", "")
        lines.append(f"{name}: " + ("no data" if np.isnan(v) else
                                    f"{_physical(t, v):.3g} {unit}".rstrip()))
    ax = axes[k]
    ax.set_axis_off()
    if show_titles:
        ax.set_title("window centre", fontsize=9)
    ax.text(0.0, 1.0, "\n".join(lines) or "no continuous targets", va="top", ha="left",
            fontsize=7, family="monospace", transform=ax.transAxes)
    return fig
