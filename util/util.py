"""Image conversion and folder helpers shared by training, testing and the web pages.

The conversions follow the reference implementation bit for bit, so that images written by this toolkit
are pixel-identical to the reference's for the same network output.
"""
from __future__ import annotations

import logging
import os
from typing import Iterable, Union

import numpy as np
import torch
from PIL import Image

from .fileio import atomic_save_pil

logger = logging.getLogger(__name__)

__all__ = ["tensor2im", "save_image", "mkdirs", "mkdir"]


def tensor2im(t: Union[torch.Tensor, np.ndarray], imtype: type = np.uint8) -> np.ndarray:
    """Turn a network output in [-1, 1] into an H x W x 3 image array (uint8 by default).

    Accepts a batch `(N, C, H, W)` (only the first image is used, as in the reference, because the
    visualizer shows one example per batch) or a single image `(C, H, W)`. A one-channel image is tiled to
    three channels so that every saved image is RGB.

    The mapping is the reference's: `(x + 1) / 2 * 255` followed by `astype(uint8)`, which TRUNCATES
    (0.0 -> 127.5 -> 127, not 128). Rounding would be more accurate, but truncation is kept on purpose so
    that saved images are pixel-identical to the reference's. Values are clipped to [0, 255] before the
    cast; for inputs in [-1, 1] this changes nothing, and for out-of-range inputs (e.g. a generator without
    a final tanh) it avoids the wrap-around that a bare uint8 cast would produce.

    An `np.ndarray` is assumed to be an image already and is returned unchanged.
    """
    if isinstance(t, np.ndarray):
        return t
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"tensor2im expects a torch.Tensor or np.ndarray, got {type(t).__name__}")
    if t.dim() == 4:  # (N, C, H, W) -> first image of the batch
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"tensor2im expects (N, C, H, W) or (C, H, W), got shape {tuple(t.shape)}")
    x = t.detach().cpu().float().numpy()  # (C, H, W)
    if x.shape[0] == 1:  # greyscale -> RGB
        x = np.tile(x, (3, 1, 1))  # (3, H, W)
    x = (np.transpose(x, (1, 2, 0)) + 1) / 2.0 * 255.0  # (H, W, C) in [0, 255]
    x = np.clip(x, 0.0, 255.0)
    return x.astype(imtype)


def save_image(image: np.ndarray, path: str, aspect_ratio: float = 1.0) -> None:
    """Save an H x W x C (or H x W) uint8 array to `path`, atomically; the format comes from the suffix.

    `aspect_ratio` is the test script's `--aspect_ratio` (width / height of the original pictures): the
    networks work on square crops, and this stretches the result back. > 1 makes the image taller
    (height * ratio), < 1 makes it wider (width / ratio), both with bicubic resampling.
    """
    image_pil = Image.fromarray(image)
    h, w = image.shape[:2]
    if aspect_ratio > 1.0:
        image_pil = image_pil.resize((w, int(h * aspect_ratio)), Image.Resampling.BICUBIC)
    if aspect_ratio < 1.0:
        image_pil = image_pil.resize((int(w / aspect_ratio), h), Image.Resampling.BICUBIC)
    atomic_save_pil(image_pil, path)


def mkdirs(paths: Union[str, Iterable[str]]) -> None:
    """Create each folder in `paths` (a single path or a list of paths), parents included."""
    if isinstance(paths, (str, os.PathLike)):
        mkdir(paths)
        return
    for path in paths:
        mkdir(path)


def mkdir(path: str) -> None:
    """Create `path` and its parents if missing; an existing folder is fine."""
    os.makedirs(path, exist_ok=True)
