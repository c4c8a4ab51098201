"""Reading and writing images for super-resolution without losing what they are.

The training loaders (util/images/reading.py) turn every file into 8-bit RGB, the reference's behaviour, which
is right for feeding pretrained networks but wrong for SR inference and evaluation: a greyscale photo should
come back greyscale, a transparent logo should keep its alpha, and a 16-bit scan should not be cut to 8 bit
on the way in or out. `read_image` keeps the kind of the file in an `SRImage` (colour or grey, optional alpha,
bit depth), and `write_image` writes a PNG of the same kind.

How `read_image` handles each kind of file (the contents decide, never the extension):

  ==========================  ====================================================================================
  file                        SRImage
  ==========================  ====================================================================================
  RGB (8 bit)                 C = 3, bit_depth 8
  greyscale 'L', 1-bit '1'    C = 1, bit_depth 8 (1-bit: 0 / 1)
  palette 'P'                 C = 3 palette colours; with a transparency entry, plus alpha
  RGBA, LA, 'PA'              colour (C = 3 or 1) plus alpha, colours exactly as stored (not premultiplied)
  grey / RGB + tRNS key       the colour key becomes an alpha channel (0 where the colour equals it), 8 or 16 bit
  CMYK, YCbCr, LAB, HSV       PIL's conversion to RGB (no colour management; ICC profiles are ignored)
  16-bit grey 'I;16*', 'I'    C = 1, bit_depth 16, exact: value / 65535 (32-bit 'I' is clipped to 0..65535)
  16-bit RGB / RGBA / LA PNG  C = 3 / 3 + alpha / 1 + alpha, bit_depth 16, exact: decoded by OpenCV (PIL would
  16-bit RGB / RGBA TIFF      keep only the high byte of each sample)
  32-bit float 'F'            C = 1, bit_depth 16: divided by its range (0..1, 0..255 or 0..65535, the smallest
                              that holds its largest value; util/images/reading.float_to_unit), on the 16-bit grid.
                              Negative, NaN or infinite values, or values above 65535: DataError naming the file
  EXIF orientation tag        applied, for 8- and 16-bit files: the image comes back upright
  multi-frame (TIFF, WebP)    first frame only
  missing, corrupt, empty,    DataError "cannot read image PATH: REASON; remove or replace the file", exactly as
  not an image, too large     the training loader reports it (util/images/reading.read_error)
  ==========================  ====================================================================================

Pixels are float32 in [0, 1] on the grid of their bit depth (k / 255 or k / 65535, util/images/pixels.py), so
a read-then-write round trip is bit-exact. 16-bit files other than plain grey go through OpenCV both ways,
except that OpenCV cannot write 16-bit grey + alpha, which pypng writes.
"""
from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from typing import IO, Any, Optional, Tuple

import cv2
import numpy as np
import png
import torch
from PIL import Image, ImageOps

from util.fileio import atomic_write

from .pixels import check_bit_depth, from_uint, to_uint
from .reading import READ_ERRORS, WIDE_GREY_MODES, check_readable, float_to_unit, read_error

logger = logging.getLogger(__name__)

__all__ = ["SRImage", "decode_image", "encode_png", "encode_tiff", "read_image", "write_bytes", "write_image",
           "to_pil_8bit"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Channels stored by the PNG colour types that PIL narrows to 8 bit at depth 16: RGB, grey + alpha, RGBA.
_PNG_WIDE_COLOUR_CHANNELS = {2: 3, 4: 2, 6: 4}
_TIFF_BITS_PER_SAMPLE = 258
_EXIF_ORIENTATION = 0x0112


@dataclass
class SRImage:
    """An image as SR inference needs it: colour or grey pixels, an optional alpha, and the file's bit depth.

    pixels:    `(C, H, W)` float in [0, 1], C = 1 (greyscale) or 3 (RGB); float32 when read from a file.
    alpha:     `(1, H, W)` float in [0, 1] or None. Kept apart from the colours because SR networks take RGB
               (or Y); the alpha is resized on its own and put back when writing.
    bit_depth: 8 or 16: the grid `write_image` rounds to, so a 16-bit input stays 16-bit.
    """

    pixels: torch.Tensor
    alpha: Optional[torch.Tensor] = None
    bit_depth: int = 8

    def __post_init__(self) -> None:
        p = self.pixels
        if not isinstance(p, torch.Tensor) or p.dim() != 3 or p.shape[0] not in (1, 3):
            shape = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
            raise ValueError(f"SRImage.pixels must be a (C, H, W) tensor with C = 1 or 3, got {shape}")
        if not p.is_floating_point():
            raise ValueError(f"SRImage.pixels must be floating point in [0, 1], got {p.dtype}")
        if self.alpha is not None:
            a = self.alpha
            expected = (1,) + tuple(p.shape[1:])
            if not isinstance(a, torch.Tensor) or tuple(a.shape) != expected:
                shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
                raise ValueError(f"SRImage.alpha must be a {expected} tensor like the pixels, got {shape}")
            if not a.is_floating_point():
                raise ValueError(f"SRImage.alpha must be floating point in [0, 1], got {a.dtype}")
        check_bit_depth(self.bit_depth, "SRImage.bit_depth")

    @property
    def size(self) -> Tuple[int, int]:
        """(W, H), PIL's order."""
        return int(self.pixels.shape[2]), int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """Colour channels (1 or 3), not counting the alpha."""
        return int(self.pixels.shape[0])


# ---- reading -------------------------------------------------------------------------------------------------


def _wide_colour_channels(img: Image.Image, data: bytes) -> int:
    """Channels stored in a 16-bit colour (or grey + alpha) PNG or TIFF, which PIL narrows to 8 bit; 0 otherwise.

    PIL reports these files as 8-bit modes, so the depth is read from the PNG header (IHDR is the first chunk)
    or from the TIFF's BitsPerSample tag.
    """
    if img.format == "PNG" and len(data) >= 26 and data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        bit_depth, colour_type = data[24], data[25]
        return _PNG_WIDE_COLOUR_CHANNELS.get(colour_type, 0) if bit_depth == 16 else 0
    if img.format == "TIFF" and img.mode in ("RGB", "RGBA"):
        bits = img.tag_v2.get(_TIFF_BITS_PER_SAMPLE, 8)  # type: ignore[attr-defined]
        return len(img.mode) if set(np.atleast_1d(bits).tolist()) == {16} else 0
    return 0


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1..8), 1 when absent or unreadable (a malformed EXIF block is ignored)."""
    try:
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception as e:  # EXIF parsers fail in many ways; orientation is best effort, as in load_image
        logger.debug("ignoring unreadable EXIF data: %s", e)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient_tensor(t: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation to a `(C, H, W)` tensor as ImageOps.exif_transpose does to a PIL image."""
    if orientation == 2:  # mirrored horizontally
        return t.flip(-1)
    if orientation == 3:  # rotated 180
        return t.flip(-2, -1)
    if orientation == 4:  # mirrored vertically
        return t.flip(-2)
    if orientation == 5:  # PIL TRANSPOSE
        return t.transpose(-2, -1)
    if orientation == 6:  # PIL ROTATE_270 (90 degrees clockwise)
        return torch.rot90(t, -1, dims=(-2, -1))
    if orientation == 7:  # PIL TRANSVERSE
        return t.transpose(-2, -1).flip(-2, -1)
    if orientation == 8:  # PIL ROTATE_90 (90 degrees counter-clockwise)
        return torch.rot90(t, 1, dims=(-2, -1))
    return t


def _key_alpha(values: np.ndarray, key: Any) -> Optional[np.ndarray]:
    """Alpha `(H, W)` uint16 from a tRNS colour key over uint16 `values` `(H, W)` or `(H, W, C)`: 0 where all
    channels equal the key, else 65535; None when `key` is absent or is a palette table."""
    if key is None or isinstance(key, bytes):  # bytes: a palette table, not a key
        return None
    key_arr = np.atleast_1d(np.asarray(key, dtype=np.int64))
    v = values if values.ndim == 3 else values[:, :, None]  # (H, W, C)
    if key_arr.size != v.shape[2]:
        return None
    transparent = np.all(v.astype(np.int64) == key_arr.reshape(1, 1, -1), axis=2)  # (H, W)
    return np.where(transparent, 0, 65535).astype(np.uint16)


def _decode_wide_colour(data: bytes, stored_channels: int, orientation: int, key: Any) -> SRImage:
    """A 16-bit RGB / RGBA / grey + alpha file, exactly: OpenCV returns its uint16 samples where PIL keeps 8 bits.

    `key` is PIL's reading of a PNG tRNS chunk (an RGB colour key in 16-bit units) or None. Raises ValueError
    (reported by read_image as a DataError naming the file) when OpenCV cannot decode the bytes.
    """
    raw = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)  # (H, W, C) B, G, R (, A)
    if raw is None:
        raise ValueError("OpenCV cannot decode its 16-bit samples")
    if raw.dtype != np.uint16:  # an OpenCV that narrows to 8 bit would silently lose the low byte
        raise ValueError(f"OpenCV decodes its 16-bit samples as {raw.dtype}, not uint16")
    if raw.ndim == 2 or raw.shape[2] not in (3, 4):
        raise ValueError(f"OpenCV decodes it to an unexpected {raw.shape} array")
    if stored_channels == 2:
        samples = raw[:, :, [0, 3]]  # OpenCV spreads grey + alpha over B, G, R, A: (H, W, 2) grey, alpha
    else:
        samples = raw[:, :, [2, 1, 0, 3][:raw.shape[2]]]  # (H, W, 3 or 4) R, G, B (, A)
        alpha = _key_alpha(samples, key) if samples.shape[2] == 3 else None  # OpenCV may apply tRNS itself
        if alpha is not None:
            samples = np.concatenate([samples, alpha[:, :, None]], axis=2)
    values = _orient_tensor(from_uint(samples, 16), orientation)  # (C, H, W), C = 2, 3 or 4
    if values.shape[0] in (2, 4):
        return SRImage(values[:-1].contiguous(), values[-1:].contiguous(), 16)
    return SRImage(values.contiguous(), None, 16)


def _from_pil(img: Image.Image) -> SRImage:
    """Decoded, upright PIL image of any mode -> SRImage (the table in the module docstring)."""
    transparency = img.info.get("transparency")
    if img.mode in WIDE_GREY_MODES:
        values = np.clip(np.asarray(img, dtype=np.int64), 0, 65535).astype(np.uint16)  # (H, W)
        alpha = _key_alpha(values, transparency)
        return SRImage(from_uint(values, 16), None if alpha is None else from_uint(alpha, 16), 16)
    if img.mode == "F":  # more precision than 8 bits: kept on the 16-bit grid, like a 16-bit file
        levels = np.rint(float_to_unit(np.asarray(img)) * 65535.0).astype(np.uint16)  # (H, W)
        return SRImage(from_uint(levels, 16), None, 16)
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("L", "RGB") and transparency is not None:
        img = img.convert("LA" if img.mode == "L" else "RGBA")  # PIL applies the colour key
    elif img.mode == "P":
        img = img.convert("RGBA" if transparency is not None else "RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    elif img.mode == "La":
        img = img.convert("LA")
    elif img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if img.mode == "RGBa" else "RGB")
    t = from_uint(np.asarray(img), 8)  # (C, H, W)
    if img.mode in ("LA", "RGBA"):
        return SRImage(t[:-1].contiguous(), t[-1:].contiguous(), 8)
    return SRImage(t, None, 8)


def read_image(path: str) -> SRImage:
    """Read an image file as an SRImage, keeping grey / colour, alpha and 16-bit precision (module docstring).

    The whole file is decoded here, so a truncated or corrupt file fails now with its name. Raises DataError
    naming `path` (and what to do) for a missing, unreadable, empty, corrupt or non-image file, or an image
    larger than twice PIL.Image.MAX_IMAGE_PIXELS; the messages are those of the training loader's load_image.
    """
    path = os.fspath(path)
    check_readable(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()  # once: PIL and (for 16-bit colour files) OpenCV decode the same bytes
    except OSError as exc:
        raise read_error(path, exc) from exc
    return decode_image(data, path)


def decode_image(data: bytes, name: str) -> SRImage:
    """The SRImage of a whole file's bytes (`read_image` without the file: an upload to the service), with
    read_image's rules and errors; `name` is what a DataError calls the image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # PIL checks the size limit and the whole file, also for the files OpenCV decodes
            wide = _wide_colour_channels(img, data)
            if wide:
                return _decode_wide_colour(data, wide, _orientation(img), img.info.get("transparency"))
            upright = ImageOps.exif_transpose(img)
            return _from_pil(upright if upright is not None else img)
    except READ_ERRORS as exc:
        raise read_error(name, exc, data[:16]) from exc


# ---- writing -------------------------------------------------------------------------------------------------


def _encode_png16(samples: np.ndarray) -> bytes:
    """A 16-bit PNG of `(H, W, C)` uint16 samples, C = 1, 2, 3 or 4 (grey, grey + alpha, RGB, RGBA).

    PIL writes 16 bits for plain grey only. OpenCV writes 1, 3 or 4 channels (in B, G, R, A order); grey +
    alpha, which it cannot write, goes through pypng.
    """
    h, w, c = samples.shape
    if c == 2:
        out = io.BytesIO()
        png.Writer(w, h, greyscale=True, alpha=True, bitdepth=16).write(out, samples.reshape(h, w * 2))  # grey, alpha
        return out.getvalue()
    bgr = samples[:, :, [2, 1, 0, 3][:c]] if c >= 3 else samples[:, :, 0]  # (H, W, C) or (H, W)
    ok, encoded = cv2.imencode(".png", bgr)  # OpenCV's defaults: on a 16-bit photo 3x faster than zlib level 6
    if not ok:
        raise OSError(f"OpenCV could not encode a {w}x{h} 16-bit PNG with {c} channels")
    return encoded.tobytes()


def _with_alpha(img: SRImage) -> torch.Tensor:
    """Colour and alpha stacked: `(C + 1, H, W)`, or the pixels alone when there is no alpha."""
    if img.alpha is None:
        return img.pixels
    return torch.cat([img.pixels.detach().cpu(), img.alpha.detach().cpu().to(img.pixels.dtype)], dim=0)


def _pil_8bit(img: SRImage) -> Image.Image:
    """'L', 'LA', 'RGB' or 'RGBA' uint8 PIL image of `img`, each value rounded to 8 bits."""
    arr = to_uint(_with_alpha(img), 8)  # (H, W, C)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def encode_png(img: SRImage) -> bytes:
    """`img` as the bytes of a PNG of the same kind (write_image's rules; the service answers these bytes)."""
    if img.bit_depth != 8:
        return _encode_png16(to_uint(_with_alpha(img), 16))
    out = io.BytesIO()
    _pil_8bit(img).save(out, format="PNG")
    return out.getvalue()


def write_image(path: str, img: SRImage) -> None:
    """Write `img` as a PNG of the same kind, atomically (a killed run never leaves half a file).

    Greyscale stays one channel ('L', or 16-bit grey), RGB stays RGB, the alpha is kept (LA / RGBA) and a
    16-bit image stays 16-bit. Values are rounded to the bit depth, round(x * (2^bits - 1)), after clamping to
    [0, 1]. `path` must end in .png: the other formats cannot hold 16 bits or an alpha everywhere, and a PNG
    under a .jpg name would mislead.
    """
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() != ".png":
        raise ValueError(f"write_image writes PNG files; give {path!r} a .png suffix")
    write_bytes(path, encode_png(img))
    logger.debug("wrote %s (%d channels%s, %d bit)", path, img.channels, " + alpha" if img.alpha is not None else "",
                 img.bit_depth)


def write_bytes(path: str, data: bytes) -> None:
    """Write an encoded image's bytes to `path`, atomically."""
    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write)


def encode_tiff(img: SRImage) -> bytes:
    """`img` as the bytes of a TIFF of the same kind (grey, RGB, with alpha; 8 or 16 bit), through OpenCV, which
    writes 16-bit colour TIFFs that PIL cannot (scripts/upscale.py --ext tiff: 16-bit TIFF in, 16-bit TIFF out,
    as Real-ESRGAN's users keep scans)."""
    levels = to_uint(_with_alpha(img), img.bit_depth)  # (H, W, C) RGB(A) or grey(+alpha)
    if levels.shape[2] == 2:  # grey + alpha: OpenCV has no 2-channel TIFF; grey replicated, as to_pil_8bit does
        levels = np.concatenate([levels[:, :, :1]] * 3 + [levels[:, :, 1:]], axis=2)
    order = {1: None, 3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}[levels.shape[2]]
    ok, encoded = cv2.imencode(".tiff", levels[:, :, 0] if order is None else cv2.cvtColor(levels, order))
    if not ok:
        raise ValueError(f"OpenCV could not encode a {img.size[0]}x{img.size[1]} TIFF")
    return encoded.tobytes()


def write_tiff(path: str, img: SRImage) -> None:
    """Write `img` as a TIFF of the same kind (`encode_tiff`), atomically."""
    write_bytes(os.fspath(path), encode_tiff(img))


def to_pil_8bit(img: SRImage) -> Image.Image:
    """An 8-bit PIL copy for display (HTML pages, dashboards): 'L', 'RGB' or 'RGBA'.

    Values are rounded to 8 bits. Grey with alpha becomes 'RGBA' (grey replicated), since 'LA' is not
    understood by every viewer and encoder.
    """
    if img.channels == 1 and img.alpha is not None:
        img = SRImage(img.pixels.expand(3, -1, -1), img.alpha, img.bit_depth)
    return _pil_8bit(img)
