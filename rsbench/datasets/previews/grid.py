"""A thumbnail grid saved as a PNG with a title and a label per row, drawn with Pillow.

Montages are mostly pixels: Pillow writes them several times faster than a matplotlib figure
(and needs no matplotlib import), so every builder's example montage goes through here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def save_labelled_grid(path: Path, grid: np.ndarray, row_labels: list[str], title: str,
                       row_height: int, font_size: int = 13) -> None:
    """Save ``grid`` (H, W, 3 uint8) with ``title`` on top and ``row_labels[k]`` left of the
    k-th band of ``row_height`` pixels."""
    font = ImageFont.load_default(size=font_size)
    label_w = 12 + max((int(font.getlength(t)) for t in row_labels), default=0)
    title_h = font_size + 11
    canvas = Image.new("RGB", (max(label_w + grid.shape[1], int(font.getlength(title)) + 12),
                               title_h + grid.shape[0]), "white")
    canvas.paste(Image.fromarray(grid), (label_w, title_h))
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 5), title, fill="black", font=font)
    for k, text in enumerate(row_labels):
        draw.text((label_w - 6, title_h + k * row_height + row_height // 2), text,
                  fill="black", font=font, anchor="rm")
    canvas.save(path, optimize=False)
