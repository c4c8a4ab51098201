"""Listing and reading image files.

The reference asserts on a missing folder and lets PIL's exceptions escape from inside a DataLoader worker,
which leaves the user with a traceback that does not say which file is broken. Here every failure that the
user can fix (missing folder, empty folder, unreadable file) is a `DataError` naming the path.
"""
from __future__ import annotations

import logging
import math
import os
from typing import List, Set

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from util.errors import DataError

logger = logging.getLogger(__name__)

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")

# Exceptions PIL (or a plugin of it) raises for files it cannot decode. UnidentifiedImageError is an OSError,
# listed for clarity; DecompressionBombError derives from Exception only.
_READ_ERRORS = (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError)

# 16-bit greyscale modes: PIL's own convert() clips these to 255 instead of scaling them.
_WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def is_image_file(filename: str) -> bool:
    """True when the name ends in one of IMG_EXTENSIONS, ignoring case (photos often come as .JPG)."""
    return filename.lower().endswith(IMG_EXTENSIONS)


def make_dataset(dir: str, max_dataset_size: float = math.inf) -> List[str]:
    """Return the sorted paths of all image files under `dir` (recursive), at most `max_dataset_size` of them.

    The list is sorted before it is truncated, so `--max_dataset_size` picks the same files on every
    machine (the reference truncated in `os.walk` order, which depends on the file system). Hidden files and
    folders (".DS_Store", macOS "._x.jpg" forks, ".ipynb_checkpoints") are skipped: they are never training
    data and the "._" files are not decodable.
    """
    if not os.path.isdir(dir):
        raise DataError(f"dataset folder {dir} does not exist: check --dataroot (and --phase)")
    images: List[str] = []
    seen: Set[str] = set()  # real paths of visited folders, so that symlink loops cannot recurse forever
    for root, dirnames, fnames in os.walk(dir, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        images.extend(
            os.path.join(root, f) for f in fnames if is_image_file(f) and not f.startswith(".")
        )
    if not images:
        exts = ", ".join(e.lstrip(".") for e in IMG_EXTENSIONS)
        raise DataError(f"no images ({exts}) in {dir}: add images or check --dataroot and --phase")
    images.sort()
    if max_dataset_size < len(images):
        images = images[: int(max_dataset_size)]
    return images


def _wide_grey_to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16-bit greyscale (0..65535) to 8 bit (0..255) instead of clipping everything above 255 to white."""
    values = np.asarray(img, dtype=np.float64)  # (H, W)
    values = np.clip(values, 0, 65535) / 257.0  # 65535 / 257 == 255 exactly
    return Image.fromarray(np.rint(values).astype(np.uint8), mode="L")


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL mode to 'RGB' or 'L' the way the reference does (convert), except for 16-bit grey."""
    if img.mode in _WIDE_GREY_MODES:
        img = _wide_grey_to_8bit(img)
    elif img.mode == "P" and "transparency" in img.info:
        # Going through RGBA avoids PIL's warning; the alpha channel is dropped just as convert('RGB') does.
        img = img.convert("RGBA")
    return img.convert(mode)


def load_image(path: str, mode: str = "RGB") -> Image.Image:
    """Open an image fully decoded, upright (EXIF orientation applied) and in `mode` ('RGB' or 'L').

    Decoding happens here (`load()`) rather than lazily in a transform, so that a truncated or corrupt file
    fails with its name instead of deep inside a worker process.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"load_image: mode must be 'RGB' or 'L', not {mode!r}")
    try:
        with Image.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
            upright = upright if upright is not None else img
            return _to_mode(upright, mode)
    except _READ_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        raise DataError(f"cannot read image {path}: {reason}; remove or replace the file") from exc
