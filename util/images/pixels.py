"""Converting pixel values between float tensors in [0, 1] and the integer grids of 8- and 16-bit files.

One formula for every conversion, round(clamp(x, 0, 1) * (2^bits - 1)) computed in float64, so that reading,
writing, resizing and measuring agree bit for bit (a read-then-write round trip is exact). The work is done a
slice of rows at a time: the float64 copies of a whole 8K output at once took 2.4 GB.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

__all__ = ["BIT_DEPTHS", "check_bit_depth", "quantize", "to_uint", "from_uint", "rows_per_slice"]

BIT_DEPTHS = (8, 16)

# About 4M values (32 MB in float64) converted at a time.
_SLICE_VALUES = 1 << 22


def check_bit_depth(bit_depth: int, what: str = "bit_depth") -> None:
    """ValueError unless `bit_depth` is one this toolkit reads and writes (8 or 16)."""
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"{what} must be 8 or 16, got {bit_depth!r}")


def quantize(x: torch.Tensor, bit_depth: int, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Round `x` (values in [0, 1]) to the nearest level of a `bit_depth`-bit image, k / (2^bits - 1), clamped.

    What writing and re-reading a file would do to the values; measure an SR output only after this (the
    published numbers are on 8-bit outputs). Computed in float64, returned in `x`'s dtype; `x` is not changed,
    unless it is `out` (contiguous, `x`'s shape and dtype): rounding a large output in place saves a copy of it.
    """
    check_bit_depth(bit_depth)
    levels = float(2**bit_depth - 1)
    if out is None:
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    elif out.shape != x.shape or out.dtype != x.dtype or not out.is_contiguous():
        raise ValueError(f"quantize: out must be a contiguous {x.dtype}{tuple(x.shape)} tensor, got "
                         f"{out.dtype}{tuple(out.shape)}")
    for src, dst in zip(x.detach().reshape(-1).split(_SLICE_VALUES), out.view(-1).split(_SLICE_VALUES)):
        dst.copy_(src.to(torch.float64, copy=True).clamp_(0.0, 1.0).mul_(levels).round_().div_(levels))
    return out


def rows_per_slice(values_per_row: int) -> int:
    """Rows of an image converted at a time: about 4M values."""
    return max(1, _SLICE_VALUES // max(1, values_per_row))


def to_uint(x: torch.Tensor, bit_depth: int) -> np.ndarray:
    """`(C, H, W)` float in [0, 1] -> `(H, W, C)` uint8 / uint16 array, rounded (not truncated) and clamped.

    Raises ValueError for NaN or infinite values, which no pixel grid can hold. Checked slice by slice too: a
    whole-image isfinite takes 1.7 times the image's size (a float copy and two masks: 960 MB for 8000x6000 RGB).
    """
    levels = float(2**bit_depth - 1)
    src = x.detach().cpu()  # (C, H, W)
    channels, height, width = src.shape
    out = np.empty((height, width, channels), dtype=np.uint8 if bit_depth == 8 else np.uint16)
    rows = rows_per_slice(channels * width)
    for y0 in range(0, height, rows):
        k = src[:, y0:y0 + rows].to(torch.float64, copy=True)  # (C, rows, W)
        if not bool(torch.isfinite(k).all()):
            raise ValueError("image values contain NaN or infinity; cannot convert them to pixels")
        k.clamp_(0.0, 1.0).mul_(levels).round_()
        out[y0:y0 + k.shape[1]] = k.permute(1, 2, 0).numpy()
    return out


def from_uint(values: np.ndarray, bit_depth: int) -> torch.Tensor:
    """`(H, W)` or `(H, W, C)` integer array on the 0..2^bits-1 scale -> `(C, H, W)` float32 in [0, 1].

    Divided in float64 and then rounded to float32, so k / 255 and k / 65535 are the nearest float32 values.
    """
    v = np.asarray(values)
    if v.ndim == 2:
        v = v[:, :, None]  # (H, W, 1)
    levels = float(2**bit_depth - 1)
    height, width, channels = v.shape
    out = torch.empty((channels, height, width), dtype=torch.float32)
    rows = rows_per_slice(channels * width)
    for y0 in range(0, height, rows):
        chunk = torch.from_numpy(np.ascontiguousarray(v[y0:y0 + rows].transpose(2, 0, 1), dtype=np.float64))
        out[:, y0:y0 + rows] = chunk / levels
    return out
