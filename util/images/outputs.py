"""The files a batch image tool writes (scripts/upscale.py): each result's format, its name, and the writing.

Real-ESRGAN's inference script, which the users of scripts/upscale.py know, writes `<stem>_<suffix>.<ext>`
into an output folder, in the input's format by default, and switches to PNG where the format cannot hold the
result. This module keeps those rules and adds what that script lacks: a result never loses its kind (grey,
alpha, 16 bit) silently, and two inputs never write the same file.

What each output format holds (`--ext`; `auto` is the input's own format when it is one of these, else PNG):

  ======  =====  =====  ======  ==============================================================================
  format  grey   alpha  16 bit  notes
  ======  =====  =====  ======  ==============================================================================
  png     yes    yes    yes     lossless; util/images/sr_io.write_image
  jpg     yes    no     no      quality `quality` (95 by default, OpenCV's default that Real-ESRGAN writes with)
  webp    RGB    yes    no      lossy at `quality`; WebP has no grey mode, so grey is stored as R = G = B
  tiff    yes    yes    yes     lossless; util/images/sr_io.write_tiff (grey with alpha as RGBA)
  ======  =====  =====  ======  ==============================================================================

A result the chosen format cannot hold (an alpha channel in JPEG, 16 bits in JPEG or WebP) is written as PNG
instead, and `choose_format` says why, so the caller can tell the user; Real-ESRGAN does this for RGBA.

Names (`output_stems`): `<stem>_<suffix>`, or `<stem>` with an empty suffix. Inputs whose stems are equal
ignoring case (photo.jpg and photo.PNG: one file on case-insensitive disks) keep their extension in the name
(photo_jpg_out, photo_PNG_out) whatever the output format, so a name never depends on what an image holds; a
name still taken gets -2, -3, ... Every write is atomic (util/fileio): an interrupted run leaves whole files.
"""
from __future__ import annotations

import collections
import io
import logging
import os
from typing import List, Optional, Sequence, Tuple

from PIL import Image

from .sr_io import SRImage, encode_png, encode_tiff, to_pil_8bit, write_bytes

logger = logging.getLogger(__name__)

__all__ = ["OUTPUT_FORMATS", "can_write", "cannot_hold", "choose_format", "encode_image", "output_stems",
           "requested_format", "save_image"]

OUTPUT_FORMATS = ("png", "jpg", "webp", "tiff")
DEFAULT_QUALITY = 95
_PIL_FORMATS = {"jpg": "JPEG", "webp": "WEBP"}
# Input suffixes whose format can be the output's with --ext auto.
_SOURCE_FORMATS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff"}


def cannot_hold(img: SRImage, fmt: str) -> Optional[str]:
    """Why format `fmt` cannot hold `img` (e.g. "JPEG has no alpha channel"), or None when it can."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if fmt in ("png", "tiff"):
        return None
    name = _PIL_FORMATS[fmt]
    if img.bit_depth != 8:
        return f"{name} holds 8 bits per channel, not {img.bit_depth}"
    if fmt == "jpg" and img.alpha is not None:
        return "JPEG has no alpha channel"
    return None


def requested_format(requested: str, source: str) -> str:
    """The format asked for: `requested` itself, or with 'auto' that of `source` (the input's path) when it is
    png, jpg / jpeg, webp or tiff, else PNG. A result is written in it, or as PNG when it cannot hold the image."""
    if requested == "auto":
        return _SOURCE_FORMATS.get(os.path.splitext(source)[1].lower(), "png")
    if requested in OUTPUT_FORMATS:
        return requested
    raise ValueError(f"unknown output format {requested!r}; choose auto or one of {', '.join(OUTPUT_FORMATS)}")


def choose_format(img: SRImage, requested: str, source: str) -> Tuple[str, Optional[str]]:
    """The format to write `img` in, and why it is PNG instead of the one asked for (None when it is not).

    `requested`: 'auto' (the format of `source`, the input's path, when it is png, jpg / jpeg or webp; PNG for
    any other input) or one of OUTPUT_FORMATS.
    """
    fmt = requested_format(requested, source)
    reason = cannot_hold(img, fmt)
    return ("png", reason) if reason else (fmt, None)


def encode_image(img: SRImage, fmt: str, quality: int = DEFAULT_QUALITY) -> bytes:
    """`img` as the bytes of a `fmt` file (one of OUTPUT_FORMATS): what `save_image` writes, and what the service
    answers. PNG and TIFF keep every kind (encode_png, encode_tiff); JPEG and WebP are 8-bit files at `quality`
    (1-100). ValueError for another format or a kind the format cannot hold (`choose_format` picks one that can).
    """
    if fmt == "png":
        return encode_png(img)
    if fmt == "tiff":
        return encode_tiff(img)
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    reason = cannot_hold(img, fmt)
    if reason:
        raise ValueError(f"cannot encode it as {fmt}: {reason}; write it as PNG")
    pil = to_pil_8bit(img)  # 'L', 'RGB' or 'RGBA', rounded to 8 bits
    if fmt == "webp" and pil.mode == "L":
        pil = pil.convert("RGB")  # WebP has no grey mode
    out = io.BytesIO()
    pil.save(out, format=_PIL_FORMATS[fmt], quality=quality)
    return out.getvalue()


def save_image(path: str, img: SRImage, quality: int = DEFAULT_QUALITY) -> None:
    """Write `img` in the format of `path`'s suffix (.png, .jpg / .jpeg, .webp, .tiff / .tif), atomically.

    The bytes are `encode_image`'s. Raises ValueError, before writing anything, for a suffix of another format
    or a kind the format cannot hold (`choose_format` picks one that can).
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    fmt = {".jpeg": "jpg", ".tif": "tiff"}.get(suffix, suffix.lstrip("."))
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"save_image writes {', '.join(OUTPUT_FORMATS)} files; {path!r} has the suffix {suffix!r}")
    try:
        data = encode_image(img, fmt, quality)
    except ValueError as e:
        raise ValueError(f"cannot write {path}: {e}") from None
    write_bytes(path, data)
    logger.debug("wrote %s (%s, quality %d)", path, fmt, quality)


def output_stems(sources: Sequence[str], suffix: str) -> List[str]:
    """File names without extension for the results of `sources` (paths), one each, in order, all different.

    `<stem>_<suffix>` (`<stem>` when `suffix` is empty); stems shared ignoring case keep the input's extension
    (photo.jpg, photo.png -> photo_jpg_out, photo_png_out); a name still taken gets -2, -3, ... Names are
    compared ignoring case, so results do not overwrite each other on case-insensitive disks either.
    """
    parts = [os.path.splitext(os.path.basename(os.fspath(s))) for s in sources]
    shared = collections.Counter(stem.casefold() for stem, _ in parts)
    taken: set = set()
    names: List[str] = []
    for stem, ext in parts:
        base = f"{stem}_{ext.lstrip('.')}" if shared[stem.casefold()] > 1 and ext else stem
        base = f"{base}_{suffix}" if suffix else base
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.casefold())
        names.append(name)
    return names


def can_write(fmt: str) -> bool:
    """Whether this PIL build can write `fmt` (its WebP support is optional; PNG and TIFF are written without it)."""
    return fmt in ("png", "tiff") or _PIL_FORMATS[fmt] in Image.SAVE
