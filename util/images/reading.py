"""Listing image files and reading them for training, and the table of how each kind of file is read.

The reference asserts on a missing folder and lets PIL's exceptions escape from inside a DataLoader worker,
which leaves the user with a traceback that does not say which file is broken. Here every failure that the
user can fix (missing folder, empty folder, unreadable file) is a `DataError` naming the path.

How `load_image(path, mode)` handles each kind of file (mode is 'RGB' or 'L'; the datasets always ask for
'RGB'). The file's contents decide the format, never its extension (a PNG named .jpg loads as a PNG).
Conversions are the reference's `Image.open(path).convert(mode)` unless marked "differs", so published
pretrained models see the same pixels.

  ==========================  ====================================================================================
  file                        result
  ==========================  ====================================================================================
  RGB (8 bit)                 loaded as is
  greyscale 'L'               'RGB': the grey value replicated into R, G and B; 'L': as is
  1-bit '1'                   0 / 255
  palette 'P'                 palette colours; with a transparency entry it goes through RGBA first (no PIL
                              warning) and the alpha is dropped, so transparent pixels keep their palette colour
  RGBA, LA                    alpha DROPPED, not composited: R, G, B (or L) are kept exactly as stored, so a fully
                              transparent pixel shows whatever colour it stores (the reference's convert('RGB'))
  CMYK (JPEG, TIFF)           PIL's CMYK -> RGB conversion (no colour management; ICC profiles are ignored)
  16-bit grey 'I;16*', 'I'    differs: scaled, value * 255 / 65535 rounded (65535 -> 255, 32896 -> 128, 257 -> 1);
                              PIL's convert would clip everything above 255 to white. 32-bit 'I' is clipped to
                              0..65535 first
  16-bit RGB / RGBA PNG       PIL decodes these as 8-bit RGB / RGBA keeping the high byte of each sample
                              (value >> 8: 65535 -> 255, 32896 -> 128, 65280 -> 255), then as RGB / RGBA above
  16-bit LA PNG               PIL decodes it as 8-bit RGBA (high byte), then alpha dropped
  32-bit float 'F'            differs: read by its range, the smallest of 0..1, 0..255, 0..65535 that holds its
                              largest value (`float_to_unit`), then round(value * 255 / range); PIL's convert
                              would clip to 0..255, and a float image in [0, 1] would come out black. Negative,
                              NaN or infinite values, or values above 65535: DataError naming the file
  EXIF orientation tag        differs: applied, the image is returned upright (a 40x20 JPEG tagged 6 loads as
                              20x40); a malformed EXIF block is ignored
  multi-frame (TIFF, WebP)    first frame only
  embedded ICC profile        ignored: pixel values are used as stored, as in the reference
  over 2 x MAX_IMAGE_PIXELS   DataError "image is too large (N pixels; the limit is L pixels ...)": PIL refuses it
                              as a possible decompression bomb from the header, before decoding anything (the
                              message says to raise PIL.Image.MAX_IMAGE_PIXELS for trusted files)
  1 to 2 x MAX_IMAGE_PIXELS   loaded, since a 100-megapixel photo is legitimate; PIL's DecompressionBombWarning
                              is left to Python's default filter (shown once per distinct size and process)
  truncated / corrupt         DataError (decoding is forced here, so truncation is caught at load time;
                              ImageFile.LOAD_TRUNCATED_IMAGES is not set)
  zero-byte file              DataError "the file is empty (0 bytes)"
  not an image (text, HTML)   DataError "not an image format PIL can decode (it starts with b'...')"
  missing / unreadable        DataError with the operating system's reason
  ==========================  ====================================================================================

Every DataError reads "cannot read image PATH: REASON; remove or replace the file" (for a too-large image the
advice is to downscale it instead). An image smaller than --crop_size is not a loading error: the crop step of
data/base_dataset.py raises a DataError naming the file.

The datasets reach this module through data/image_folder.py, the reference's import path; SR inference reads
through util/images/sr_io.py, which shares READ_ERRORS and read_error() so that both report a bad file alike.
"""
from __future__ import annotations

import logging
import io
import math
import os
import re
from typing import IO, List, Optional, Set, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from util.errors import DataError
from util.fileio import file_problem

logger = logging.getLogger(__name__)

__all__ = ["IMG_EXTENSIONS", "READ_ERRORS", "WIDE_GREY_MODES", "float_to_unit", "is_image_file", "make_dataset",
           "load_image", "peek_bytes", "peek_image", "read_error"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")

# Exceptions PIL (or a plugin of it) raises for files it cannot decode. UnidentifiedImageError is an OSError,
# listed for clarity; DecompressionBombError derives from Exception only.
READ_ERRORS = (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError)

# 16-bit greyscale modes: PIL's own convert() clips these to 255 instead of scaling them.
WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


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
        raise DataError(f"dataset folder {dir} does not exist: check --dataroot (and --phase)", path=dir)
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
        raise DataError(f"no images ({exts}) in {dir}: add images or check --dataroot and --phase", path=dir)
    images.sort()
    if max_dataset_size < len(images):
        images = images[: int(max_dataset_size)]
    return images


def _wide_grey_to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16-bit greyscale (0..65535) to 8 bit (0..255) instead of clipping everything above 255 to white."""
    values = np.asarray(img, dtype=np.float64)  # (H, W)
    values = np.clip(values, 0, 65535) / 257.0  # 65535 / 257 == 255 exactly
    return Image.fromarray(np.rint(values).astype(np.uint8), mode="L")


# The full-scale values a float image may use: [0, 1] (the usual float convention), 8- and 16-bit levels.
FLOAT_RANGES = (1.0, 255.0, 65535.0)


def float_to_unit(values: np.ndarray) -> np.ndarray:
    """A float image's values `(H, W)` as float64 in [0, 1], divided by its range: the smallest of FLOAT_RANGES
    that holds its largest value (an all-dark 0..255 image whose values stay <= 1 would read as 0..1).

    ValueError (reported as a DataError naming the file) for NaN or infinite values, values below 0 or above
    65535: what such an image means cannot be told, and guessing would produce garbage silently.
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError("a float image with NaN or infinite values cannot be read; convert it to an 8- or 16-bit "
                         "image")
    low, high = float(v.min()), float(v.max())
    if low < 0 or high > FLOAT_RANGES[-1]:
        raise ValueError(f"a float image with values from {low:.6g} to {high:.6g} cannot be read: only the ranges "
                         f"0..1, 0..255 and 0..65535 are understood; convert it to an 8- or 16-bit image")
    full_scale = next(r for r in FLOAT_RANGES if high <= r)
    return v / full_scale


def _float_to_8bit(img: Image.Image) -> Image.Image:
    """Float 'F' -> 8-bit 'L', by the image's range (`float_to_unit`) instead of PIL's clipping to 0..255."""
    return Image.fromarray(np.rint(float_to_unit(np.asarray(img)) * 255.0).astype(np.uint8), mode="L")


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL mode to 'RGB' or 'L' the way the reference does (convert), except for 16-bit grey and
    float images."""
    if img.mode in WIDE_GREY_MODES:
        img = _wide_grey_to_8bit(img)
    elif img.mode == "F":
        img = _float_to_8bit(img)
    elif img.mode == "P" and "transparency" in img.info:
        # Going through RGBA avoids PIL's warning; the alpha channel is dropped just as convert('RGB') does.
        img = img.convert("RGBA")
    return img.convert(mode)


def check_readable(path: str) -> None:
    """Raise the DataError for a path that is not a readable regular file (a folder, a dangling link, a link
    loop, a named pipe, a device such as /dev/zero), before anything opens it: reading a pipe would wait
    forever and a device never ends (util.fileio.file_problem). A missing path is left to the reader, whose
    error says so."""
    problem = file_problem(path) if os.path.lexists(path) else None
    if problem is not None:
        raise DataError(f"cannot read image {path}: it {problem}; remove it or replace it with an image file",
                        path=path)


def peek_image(path: str) -> Optional[Tuple[Tuple[int, int], int]]:
    """(W, H) of the image upright (EXIF orientation applied) and its number of frames, from the header alone,
    nothing decoded; None for what is not a readable image (reading it later says why).

    Lets a batch tool refuse sizes before any work (a result under one pixel, or over its pixel limit) and say
    that an animated file contributes its first frame only."""
    if file_problem(path) is not None:
        return None
    try:
        header = _peek(path)
    except Image.DecompressionBombError:
        return None
    return None if header is None else header[:2]


def peek_bytes(data: bytes, name: str = "upload") -> Optional[Tuple[Tuple[int, int], int, str]]:
    """`peek_image` of a file's bytes (an upload): its upright (W, H), frames and PIL's format name ('PNG',
    'JPEG', ...) from the header, or None for what is not an image. A header over twice PIL's pixel limit, which
    PIL refuses before giving its size, raises read_error's DataError for `name` ("image is too large (N
    pixels ...)"), so a service can answer "too many pixels" rather than "not an image"."""
    try:
        return _peek(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise read_error(name, e) from e


def _peek(source: Union[str, IO[bytes]]) -> Optional[Tuple[Tuple[int, int], int, str]]:
    """The header's facts; None for what PIL cannot read, but a DecompressionBombError propagates."""
    try:
        with Image.open(source) as img:
            w, h = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF Orientation: transposed or rotated by 90 degrees
                w, h = h, w
            return (w, h), int(getattr(img, "n_frames", 1)), str(img.format)
    except Image.DecompressionBombError:
        raise
    except READ_ERRORS:
        return None


def read_error(path: str, exc: BaseException, head: Optional[bytes] = None) -> DataError:
    """The DataError for a file PIL (or another decoder) could not read: "cannot read image PATH: REASON; ADVICE".

    One wording for every reader (load_image here, util/images/sr_io.read_image), so a bad file is reported
    the same way whether a training run or SR inference meets it. `head`: the file's first bytes where they are
    in memory already (an upload), else they are read from `path` to say what the file starts with.
    """
    reason, advice = _reason_and_advice(path, exc, head)
    return DataError(f"cannot read image {path}: {reason}; {advice}", path=path)


def bomb_pixels(exc: Optional[BaseException]) -> Optional[int]:
    """The pixel count PIL states in a DecompressionBombError (it gives no attribute for it), else None."""
    found = re.search(r"\((\d+) pixels\)", str(exc)) if isinstance(exc, Image.DecompressionBombError) else None
    return int(found.group(1)) if found else None


def _reason_and_advice(path: str, exc: BaseException, head: Optional[bytes]) -> Tuple[str, str]:
    """What went wrong reading `path` and what the user can do about it, as two phrases for a DataError."""
    replace = "remove or replace the file"
    if isinstance(exc, Image.DecompressionBombError):
        count = bomb_pixels(exc)
        pixels = f"{count} pixels" if count is not None else "too many pixels"
        limit = Image.MAX_IMAGE_PIXELS
        bound = f"the limit is {2 * limit} pixels, twice PIL.Image.MAX_IMAGE_PIXELS" if limit else "over PIL's limit"
        return (
            f"image is too large ({pixels}; {bound}, a guard against decompression bombs)",
            "downscale it, or raise PIL.Image.MAX_IMAGE_PIXELS if the file is trusted",
        )
    if isinstance(exc, UnidentifiedImageError):
        if head is None:
            try:
                with open(path, "rb") as f:
                    head = f.read(16)
            except OSError:
                head = None
        if head == b"":
            return "the file is empty (0 bytes)", replace
        if head is not None:
            return f"not an image format PIL can decode (it starts with {head!r})", replace
    return (str(exc) or type(exc).__name__).rstrip("."), replace


def load_image(path: str, mode: str = "RGB") -> Image.Image:
    """Open an image fully decoded, upright (EXIF orientation applied) and in `mode` ('RGB' or 'L').

    Decoding happens here (`load()`) rather than lazily in a transform, so that a truncated or corrupt file
    fails with its name instead of deep inside a worker process. Conversions, as in the module docstring:
      * greyscale 'L' / '1': replicated into R, G, B for 'RGB';
      * palette 'P': palette colours (a palette with transparency goes through RGBA; the alpha is dropped);
      * RGBA / LA: the alpha is DROPPED (not composited onto any background), colours kept as stored, as the
        reference's convert('RGB') does, so pretrained models see the same pixels;
      * CMYK: PIL's convert to RGB;
      * 16-bit grey ('I;16', 'I'): scaled to 8 bit, round(v * 255 / 65535), instead of PIL's clipping;
      * float 'F': scaled by its range, 0..1, 0..255 or 0..65535 (`float_to_unit`), instead of PIL's clipping;
      * 16-bit RGB / RGBA PNG: PIL itself decodes them to 8 bit keeping the high byte (v >> 8);
      * EXIF orientation: applied.
    Raises DataError naming `path` for an unreadable, empty, truncated or non-image file, a float image whose
    range cannot be told, and an image of more than 2 x PIL.Image.MAX_IMAGE_PIXELS pixels (decompression bomb;
    between 1x and 2x PIL only warns and the image loads).
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"load_image: mode must be 'RGB' or 'L', not {mode!r}")
    check_readable(path)
    try:
        with Image.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
            upright = upright if upright is not None else img
            return _to_mode(upright, mode)
    except READ_ERRORS as exc:
        raise read_error(path, exc) from exc
