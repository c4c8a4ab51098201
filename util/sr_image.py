"""Reading and writing images for super-resolution without losing what they are.

The training loaders (data/image_folder.py) turn every file into 8-bit RGB, the reference's behaviour, which
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
  16-bit RGB / RGBA / LA PNG  C = 3 / 3 + alpha / 1 + alpha, bit_depth 16, exact: decoded by torchvision's
                              decode_png (PIL would keep only the high byte of each sample)
  32-bit float 'F'            PIL's convert('L'), as the training loader: values clipped to 0..255, 8 bit
  EXIF orientation tag        applied, for 8- and 16-bit files: the image comes back upright
  multi-frame (TIFF, WebP)    first frame only
  missing, corrupt, empty,    DataError "cannot read image PATH: REASON; remove or replace the file", exactly as
  not an image, too large     data/image_folder.py reports it (its helpers are reused)
  ==========================  ====================================================================================

Pixels are float32 in [0, 1] on the grid of their bit depth (k / 255 or k / 65535), so a read-then-write round
trip is bit-exact. Resizing follows the SR literature (util/metrics.py): PIL's antialiased bicubic, which
reproduces MATLAB's `imresize`, rounding to 8 bit after every resize of an 8-bit image as MATLAB does on uint8.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import IO, Optional, Tuple, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps

from data.image_folder import _READ_ERRORS, _WIDE_GREY_MODES, _read_error_reason
from util.errors import DataError
from util.fileio import atomic_save_pil, atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "SRImage",
    "read_image",
    "write_image",
    "to_pil_8bit",
    "quantize",
    "modcrop",
    "resize_bicubic",
    "downscale",
    "upscale",
]

_BIT_DEPTHS = (8, 16)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types by number of channels: grey, grey + alpha, RGB, RGB + alpha.
_PNG_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
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
        if self.bit_depth not in _BIT_DEPTHS:
            raise ValueError(f"SRImage.bit_depth must be 8 or 16, got {self.bit_depth!r}")

    @property
    def size(self) -> Tuple[int, int]:
        """(W, H), PIL's order."""
        return int(self.pixels.shape[2]), int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """Colour channels (1 or 3), not counting the alpha."""
        return int(self.pixels.shape[0])


# ---- value grids ---------------------------------------------------------------------------------------------


def quantize(x: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """Round `x` (values in [0, 1]) to the nearest level of a `bit_depth`-bit image, k / (2^bits - 1), clamped.

    What writing and re-reading a file would do to the values; measure an SR output only after this (the
    published numbers are on 8-bit outputs). Computed in float64, returned in `x`'s dtype.
    """
    if bit_depth not in _BIT_DEPTHS:
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    levels = float(2**bit_depth - 1)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    # In slices of 4M values: a float64 copy of a whole 8K output at once would take 0.8 GB.
    for src, dst in zip(x.detach().reshape(-1).split(1 << 22), out.view(-1).split(1 << 22)):
        dst.copy_(src.to(torch.float64, copy=True).clamp_(0.0, 1.0).mul_(levels).round_().div_(levels))
    return out


def _to_uint(x: torch.Tensor, bit_depth: int) -> np.ndarray:
    """`(C, H, W)` float in [0, 1] -> `(H, W, C)` uint8 / uint16 array, rounded (not truncated) and clamped.

    Computed in float64, a slice of rows at a time: whole, the float64 copies of an 8K output took 2.4 GB.
    """
    if not bool(torch.isfinite(x).all()):
        raise ValueError("image values contain NaN or infinity; cannot convert them to pixels")
    levels = float(2**bit_depth - 1)
    src = x.detach().cpu()  # (C, H, W)
    channels, height, width = src.shape
    out = np.empty((height, width, channels), dtype=np.uint8 if bit_depth == 8 else np.uint16)
    rows = _rows_per_slice(channels * width)
    for y0 in range(0, height, rows):
        k = src[:, y0:y0 + rows].to(torch.float64, copy=True)
        k.clamp_(0.0, 1.0).mul_(levels).round_()
        out[y0:y0 + k.shape[1]] = k.permute(1, 2, 0).numpy()
    return out


def _rows_per_slice(values_per_row: int) -> int:
    """Rows of an image converted at a time: about 4M values (32 MB in float64)."""
    return max(1, (1 << 22) // max(1, values_per_row))


def _from_uint(values: np.ndarray, bit_depth: int) -> torch.Tensor:
    """`(H, W)` or `(H, W, C)` integer array on the 0..2^bits-1 scale -> `(C, H, W)` float32 in [0, 1]
    (divided in float64, a slice of rows at a time)."""
    v = np.asarray(values)
    if v.ndim == 2:
        v = v[:, :, None]
    levels = float(2**bit_depth - 1)
    height, width, channels = v.shape
    out = torch.empty((channels, height, width), dtype=torch.float32)
    rows = _rows_per_slice(channels * width)
    for y0 in range(0, height, rows):
        chunk = torch.from_numpy(np.ascontiguousarray(v[y0:y0 + rows].transpose(2, 0, 1), dtype=np.float64))
        out[:, y0:y0 + rows] = chunk / levels
    return out


# ---- reading -------------------------------------------------------------------------------------------------


def _png_header(data: bytes) -> Optional[Tuple[int, int]]:
    """(bit depth, colour type) from a PNG's IHDR, which the format requires to be the first chunk."""
    if len(data) >= 26 and data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        return data[24], data[25]
    return None


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


def _key_alpha(values: np.ndarray, key) -> Optional[np.ndarray]:
    """Alpha (H, W) float64 in {0, 1} from a tRNS colour key: 0 where all channels equal the key."""
    if key is None or isinstance(key, bytes):  # bytes: a palette table, not a key
        return None
    key_arr = np.atleast_1d(np.asarray(key, dtype=np.int64))
    v = values.astype(np.int64)
    if v.ndim == 2:
        v = v[:, :, None]
    if key_arr.size != v.shape[2]:
        return None
    transparent = np.all(v == key_arr.reshape(1, 1, -1), axis=2)
    return np.where(transparent, 0.0, 1.0)


def _decode_png16(data: bytes, path: str, orientation: int, key) -> SRImage:
    """A 16-bit RGB / RGBA / grey+alpha PNG, exactly: torchvision returns uint16 samples where PIL keeps 8 bits.

    `key` is PIL's reading of a tRNS chunk (an RGB colour key in 16-bit units) or None.
    """
    try:
        from torchvision.io import ImageReadMode, decode_png
    except ImportError as e:  # torchvision deprecates its image codecs from 0.29 on
        raise DataError(
            f"cannot read image {path}: 16-bit colour PNGs need torchvision.io.decode_png, which this torchvision "
            f"lacks ({e}); convert the file to 8 bit or install a torchvision that has it",
            path=path,
        ) from e
    try:
        with warnings.catch_warnings():
            # torchvision >= 0.29 warns that its codecs are deprecated (for TorchCodec, which has no PNG decoder
            # of 16-bit samples); a future torchvision without them is caught by the ImportError above.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchvision\.io")
            raw = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read image {path}: {reason}; remove or replace the file", path=path) from e
    if raw.dtype != torch.uint16:  # a torchvision that narrows to 8 bit would silently lose the low byte
        raise DataError(
            f"cannot read image {path}: this torchvision decodes 16-bit PNGs as {raw.dtype}, not uint16; "
            "install torchvision >= 0.21 to read it exactly",
            path=path,
        )
    samples = raw.to(torch.int64)  # (C, H, W), C = 2, 3 or 4
    if samples.shape[0] == 3:
        alpha = _key_alpha(samples.permute(1, 2, 0).numpy(), key)  # (H, W) or None
        if alpha is not None:
            samples = torch.cat([samples, torch.from_numpy(alpha * 65535).to(torch.int64)[None]])
    values = _orient_tensor(samples.to(torch.float64) / 65535.0, orientation).to(torch.float32)
    if values.shape[0] in (2, 4):
        return SRImage(values[:-1].contiguous(), values[-1:].contiguous(), 16)
    return SRImage(values.contiguous(), None, 16)


def _from_pil(img: Image.Image) -> SRImage:
    """Decoded, upright PIL image of any mode -> SRImage (the table in the module docstring)."""
    transparency = img.info.get("transparency")
    if img.mode in _WIDE_GREY_MODES:
        values = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)  # (H, W)
        alpha = _key_alpha(values, transparency)
        return SRImage(
            _from_uint(values, 16),
            None if alpha is None else torch.from_numpy(alpha[None]).to(torch.float32),
            16,
        )
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode == "F":
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
    arr = np.asarray(img)  # (H, W) or (H, W, C) uint8
    t = _from_uint(arr, 8)  # (C, H, W)
    if img.mode in ("LA", "RGBA"):
        return SRImage(t[:-1].contiguous(), t[-1:].contiguous(), 8)
    return SRImage(t, None, 8)


def read_image(path: str) -> SRImage:
    """Read an image file as an SRImage, keeping grey / colour, alpha and 16-bit precision (module docstring).

    The whole file is decoded here, so a truncated or corrupt file fails now with its name. Raises DataError
    naming `path` (and what to do) for a missing, unreadable, empty, corrupt or non-image file, or an image
    larger than twice PIL.Image.MAX_IMAGE_PIXELS; the messages are those of data/image_folder.load_image.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()  # once: PIL and (for 16-bit colour PNGs) torchvision decode the same bytes
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            header = _png_header(data) if img.format == "PNG" else None
            if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
                return _decode_png16(data, path, _orientation(img), img.info.get("transparency"))
            upright = ImageOps.exif_transpose(img)
            return _from_pil(upright if upright is not None else img)
    except _READ_ERRORS as exc:
        reason, advice = _read_error_reason(path, exc)
        raise DataError(f"cannot read image {path}: {reason}; {advice}", path=path) from exc


# ---- writing -------------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _encode_png16(samples: np.ndarray) -> bytes:
    """A 16-bit PNG from `(H, W, C)` uint16 samples, C = 1, 2, 3 or 4 (grey, grey + alpha, RGB, RGBA).

    Neither PIL (8-bit RGB only) nor torchvision's encode_png (uint8 only, checked with 0.29) writes 16-bit
    colour, and the format is simple: IHDR, one IDAT of zlib-compressed rows each led by filter byte 0
    (none), big-endian samples, IEND.
    """
    h, w, c = samples.shape
    rows = np.empty((h, 1 + w * c * 2), dtype=np.uint8)  # (H, 1 + 2 W C): filter byte + big-endian samples
    rows[:, 0] = 0
    rows[:, 1:] = samples.astype(">u2").view(np.uint8).reshape(h, w * c * 2)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, _PNG_COLOUR_TYPE[c], 0, 0, 0)  # deflate, adaptive filter, no interlace
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def _with_alpha(img: SRImage) -> torch.Tensor:
    """Colour and alpha stacked: `(C + 1, H, W)`, or the pixels alone when there is no alpha."""
    if img.alpha is None:
        return img.pixels
    return torch.cat([img.pixels.detach().cpu(), img.alpha.detach().cpu().to(img.pixels.dtype)], dim=0)


def _pil_8bit(img: SRImage) -> Image.Image:
    """'L', 'LA', 'RGB' or 'RGBA' uint8 PIL image of `img`, each value rounded to 8 bits."""
    arr = _to_uint(_with_alpha(img), 8)  # (H, W, C)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


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
    if img.bit_depth == 8:
        atomic_save_pil(_pil_8bit(img), path, format="PNG")
    elif img.channels == 1 and img.alpha is None:
        grey = _to_uint(img.pixels, 16)[:, :, 0]  # (H, W) uint16
        atomic_save_pil(Image.fromarray(grey), path, format="PNG")  # PIL 'I;16' -> 16-bit greyscale PNG
    else:
        data = _encode_png16(_to_uint(_with_alpha(img), 16))

        def write(fh: IO[bytes]) -> None:
            fh.write(data)

        atomic_write(path, write)
    logger.debug("wrote %s (%d channels%s, %d bit)", path, img.channels, " + alpha" if img.alpha is not None else "",
                 img.bit_depth)


def to_pil_8bit(img: SRImage) -> Image.Image:
    """An 8-bit PIL copy for display (HTML pages, dashboards): 'L', 'RGB' or 'RGBA'.

    Values are rounded to 8 bits. Grey with alpha becomes 'RGBA' (grey replicated), since 'LA' is not
    understood by every viewer and encoder.
    """
    if img.channels == 1 and img.alpha is not None:
        img = SRImage(img.pixels.expand(3, -1, -1), img.alpha, img.bit_depth)
    return _pil_8bit(img)


# ---- geometry ------------------------------------------------------------------------------------------------

_Cropped = TypeVar("_Cropped", torch.Tensor, SRImage)


def _check_scale(scale: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")


def modcrop(x: _Cropped, scale: int) -> _Cropped:
    """Crop H and W down to multiples of `scale`, keeping the top-left corner (MATLAB `modcrop`).

    The SR literature modcrops the ground truth before making the low-resolution input, so that LR -> SR
    gives back exactly the HR size; evaluating on an uncropped ground truth shifts the results.
    Accepts a `(..., H, W)` tensor or an SRImage (its alpha is cropped too).
    """
    _check_scale(scale)
    if isinstance(x, SRImage):
        return dataclasses.replace(x, pixels=modcrop(x.pixels, scale),
                                   alpha=None if x.alpha is None else modcrop(x.alpha, scale))
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"modcrop expects a (..., H, W) tensor or an SRImage, got {type(x).__name__}")
    h, w = x.shape[-2], x.shape[-1]
    return x[..., : h - h % scale, : w - w % scale]


def _resize_plane_float(plane: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """One `(H, W)` float plane resized through PIL mode 'F' (float32, no rounding) -> float64 `(H', W')`."""
    src = Image.fromarray(np.ascontiguousarray(plane.detach().cpu().numpy().astype(np.float32)))  # mode 'F'
    out = src.resize(size, Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(out, dtype=np.float64))


def _resize_channels(x: torch.Tensor, size: Tuple[int, int], bit_depth: int) -> torch.Tensor:
    """`(C, H, W)` float in [0, 1] -> `(C, H', W')` float32, resized and re-quantised to `bit_depth`."""
    if bit_depth == 8:
        arr = _to_uint(x, 8)  # (H, W, C) uint8: the image MATLAB's imresize would get
        src = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)  # 'L' or 'RGB'
        out = np.asarray(src.resize(size, Image.Resampling.BICUBIC))  # uint8, rounded and clamped by PIL
        return _from_uint(out, 8)
    planes = [_resize_plane_float(p, size) for p in quantize(x, 16)]  # each (H', W')
    return quantize(torch.stack(planes), 16).to(torch.float32)  # bicubic overshoots: clamp and round


def resize_bicubic(img: SRImage, size: Tuple[int, int]) -> SRImage:
    """Resize to `size` = (W, H) with PIL's antialiased bicubic, which reproduces MATLAB's `imresize`.

    An 8-bit image goes through uint8 'L' / 'RGB' PIL images, so every output value is rounded to 8 bits as
    MATLAB's imresize on uint8 does (the published bicubic baselines and LR inputs are made that way). A
    16-bit image goes channel by channel through float mode 'F' and is then rounded to 16 bits. The alpha is
    resized the same way on its own.
    """
    w, h = size
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        raise ValueError(f"size must be two positive ints (W, H), got {size!r}")
    pixels = _resize_channels(img.pixels, (w, h), img.bit_depth)
    alpha = None if img.alpha is None else _resize_channels(img.alpha, (w, h), img.bit_depth)
    return SRImage(pixels, alpha, img.bit_depth)


def downscale(img: SRImage, scale: int) -> SRImage:
    """Bicubic downscale by an integer factor; W and H must be multiples of `scale` (modcrop first)."""
    _check_scale(scale)
    w, h = img.size
    if w % scale or h % scale:
        raise ValueError(
            f"downscale: a {w}x{h} (W x H) image is not a multiple of the scale {scale}; modcrop(img, {scale}) first"
        )
    return resize_bicubic(img, (w // scale, h // scale))


def upscale(img: SRImage, scale: int) -> SRImage:
    """Bicubic upscale by an integer factor: the classic SR baseline."""
    _check_scale(scale)
    w, h = img.size
    return resize_bicubic(img, (w * scale, h * scale))
