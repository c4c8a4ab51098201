"""Cropping and bicubic resizing the way the SR literature does it.

The published bicubic baselines and LR inputs are made with MATLAB's `imresize` on uint8 images, after
`modcrop` of the ground truth; PIL's antialiased bicubic reproduces `imresize`, so resizing goes through PIL,
rounding to 8 bit after every resize of an 8-bit image as MATLAB does on uint8 (util/images/metrics.py).
"""
from __future__ import annotations

import dataclasses
from typing import Tuple, TypeVar

import numpy as np
import torch
from PIL import Image

from .pixels import from_uint, quantize, to_uint
from .sr_io import SRImage

__all__ = ["modcrop", "resize_bicubic", "resize_lanczos", "bicubic_downscale", "bicubic_upscale"]

_Cropped = TypeVar("_Cropped", torch.Tensor, SRImage, Image.Image)


def _check_scale(scale: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")


def modcrop(x: _Cropped, scale: int) -> _Cropped:
    """Crop H and W down to multiples of `scale`, keeping the top-left corner (MATLAB `modcrop`).

    The SR literature modcrops the ground truth before making the low-resolution input, so that LR -> SR
    gives back exactly the HR size; evaluating on an uncropped ground truth shifts the results.
    Accepts a `(..., H, W)` tensor, an SRImage (its alpha is cropped too) or a PIL image (the training
    loaders' HR images), and returns the same kind.
    """
    _check_scale(scale)
    if isinstance(x, SRImage):
        return dataclasses.replace(x, pixels=modcrop(x.pixels, scale),
                                   alpha=None if x.alpha is None else modcrop(x.alpha, scale))
    if isinstance(x, Image.Image):
        w, h = x.size
        return x.crop((0, 0, w - w % scale, h - h % scale))
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"modcrop expects a (..., H, W) tensor, an SRImage or a PIL image, got {type(x).__name__}")
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
        arr = to_uint(x, 8)  # (H, W, C) uint8: the image MATLAB's imresize would get
        src = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)  # 'L' or 'RGB'
        out = np.asarray(src.resize(size, Image.Resampling.BICUBIC))  # uint8, rounded and clamped by PIL
        return from_uint(out, 8)
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


def resize_lanczos(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """`(C, H, W)` float -> `(C, H', W')` float32 at `size` = (W', H') with PIL's Lanczos, neither rounded nor clamped.

    The resize after a network's native scale (scripts/upscale.py --outscale 3.5). Lanczos (3 lobes) keeps
    more of the detail the network made than bicubic, which blurs at non-integer factors; Real-ESRGAN uses
    OpenCV's Lanczos for the same step. PIL's is preferred to OpenCV's because it widens its kernel when
    shrinking (an x4 network asked for x2), where OpenCV aliases. Each channel goes through float mode 'F',
    so 16-bit precision survives; Lanczos overshoots at edges, so the caller clamps (quantize does).
    """
    w, h = size
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        raise ValueError(f"size must be two positive ints (W, H), got {size!r}")
    out = torch.empty((x.shape[0], h, w), dtype=torch.float32)
    for c, plane in enumerate(x.detach().cpu()):  # one (H, W) plane at a time: bounded memory on large outputs
        src = Image.fromarray(np.ascontiguousarray(plane.numpy(), dtype=np.float32))  # mode 'F'
        out[c] = torch.from_numpy(np.array(src.resize((w, h), Image.Resampling.LANCZOS), dtype=np.float32))
    return out


def bicubic_downscale(img: SRImage, scale: int) -> SRImage:
    """Bicubic downscale by an integer factor, the SR literature's degradation; W and H must be multiples of
    `scale` (modcrop first)."""
    _check_scale(scale)
    w, h = img.size
    if w % scale or h % scale:
        raise ValueError(f"bicubic_downscale: a {w}x{h} (W x H) image is not a multiple of the scale {scale}; "
                         f"modcrop(img, {scale}) first")
    return resize_bicubic(img, (w // scale, h // scale))


def bicubic_upscale(img: SRImage, scale: int) -> SRImage:
    """Bicubic upscale by an integer factor: the classic SR baseline (and how an alpha channel is upscaled)."""
    _check_scale(scale)
    w, h = img.size
    return resize_bicubic(img, (w * scale, h * scale))
