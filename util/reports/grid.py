"""Tiling the current visuals into one image, as visdom and TensorBoard show them.

Kept apart from both displays so that each can use it without depending on the other.
"""
from __future__ import annotations

import math
from typing import List

import numpy as np
from PIL import Image

__all__: List[str] = ["PADDING", "effective_ncols", "make_grid"]

PADDING = 2  # pixels between grid tiles, as in the reference's `vis.images(..., padding=2)`


def effective_ncols(ncols: int, n: int) -> int:
    """Tiles per row for `n` images: `ncols` <= 0 (the reference's "one window per image") is one row here."""
    return n if ncols <= 0 else min(ncols, n)


def make_grid(images: List[np.ndarray], ncols: int) -> np.ndarray:
    """Tile H x W x 3 uint8 images into a (3, Hg, Wg) uint8 grid on a white background.

    `ncols` images per row and `PADDING` pixels around every tile, like the reference's
    `vis.images(nrow=ncols, padding=2)` (which pads incomplete rows with white images). Images smaller than
    the largest are scaled up with nearest-neighbour resampling, so pixels stay visible as blocks.
    """
    if not images:
        raise ValueError("make_grid needs at least one image")
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    ncols = effective_ncols(ncols, len(images))
    nrows = int(math.ceil(len(images) / ncols))
    grid = np.full((3, nrows * (h + PADDING) + PADDING, ncols * (w + PADDING) + PADDING), 255, dtype=np.uint8)
    for k, im in enumerate(images):
        if im.shape[:2] != (h, w):
            im = np.asarray(Image.fromarray(im).resize((w, h), Image.Resampling.NEAREST))  # (h, w, 3)
        row, col = divmod(k, ncols)
        top = row * (h + PADDING) + PADDING
        left = col * (w + PADDING) + PADDING
        grid[:, top : top + h, left : left + w] = np.transpose(im, (2, 0, 1))  # (3, h, w)
    return grid
