"""Applying a super-resolution generator to images of any size with bounded memory.

`upscale_tiled` cuts the LR image into tiles of `tile` x `tile` pixels, runs each tile with `tile_pad` pixels of
real context around it, keeps the upscaled centre and pastes it into the output on the CPU. Only one padded
tile is on the device at a time, so device memory depends on `tile`, not on the photo. The generators are
fully convolutional with zero padding, so when `tile_pad` covers the network's receptive-field radius
(SRResNet x4: 40 LR pixels) each output pixel sees exactly the inputs it would see in one pass over the
whole image, and the tiled result equals the untiled one up to floating-point rounding.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import torch
import torch.nn as nn

from util.images import SRImage, bicubic_upscale, quantize

Span = Tuple[int, int]


def _tiles(length: int, tile: int) -> Iterator[Span]:
    for start in range(0, length, tile):
        yield start, min(start + tile, length)


@torch.no_grad()
def upscale_tiled(
    net: nn.Module,
    lr: torch.Tensor,
    scale: int,
    tile: int = 0,
    tile_pad: int = 40,
    device: torch.device = torch.device("cpu"),
) -> torch.Tensor:
    """Run `net` on `lr` (N, C, h, w) and return (N, C_out, h * scale, w * scale) float32 on the CPU.

    `tile` 0 (or an image no larger than one tile) runs the whole image in one pass. The caller sets the
    network's mode (eval for BatchNorm's running statistics, which are what make tiles independent).
    """
    if lr.dim() != 4:
        raise ValueError(f"upscale_tiled expects an (N, C, h, w) batch, got shape {tuple(lr.shape)}")
    if tile < 0 or tile_pad < 0:
        raise ValueError(f"tile and tile_pad must be >= 0, got {tile} and {tile_pad}")
    n, _, h, w = lr.shape
    if tile == 0 or (h <= tile and w <= tile):
        return net(lr.to(device)).float().cpu()
    out = None
    for y0, y1 in _tiles(h, tile):
        for x0, x1 in _tiles(w, tile):
            # The tile plus up to `tile_pad` pixels of context on each side, clipped at the image borders.
            py0, py1 = max(y0 - tile_pad, 0), min(y1 + tile_pad, h)
            px0, px1 = max(x0 - tile_pad, 0), min(x1 + tile_pad, w)
            result = net(lr[:, :, py0:py1, px0:px1].to(device))  # (N, C_out, (py1-py0)*s, (px1-px0)*s)
            if out is None:
                out = torch.empty((n, result.shape[1], h * scale, w * scale), dtype=torch.float32)
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                result[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale].float().cpu()
            del result
    assert out is not None
    return out


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) with ITU-R 601 weights, as PIL's convert('L'): greyscale in, greyscale out."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(dim=1, keepdim=True)


def super_resolve(
    net: nn.Module,
    lr: SRImage,
    scale: int,
    tile: int = 0,
    tile_pad: int = 40,
    device: torch.device = torch.device("cpu"),
) -> SRImage:
    """The SR of `lr` by an RGB generator, as the same kind of image at `scale` times the size.

    A greyscale image goes through the network as R = G = B and comes back as the luma of the output; an alpha
    channel is not the network's business and is upscaled with bicubic on its own; the result is rounded to
    the input's bit depth (8 or 16).
    """
    x = lr.pixels.unsqueeze(0) * 2 - 1  # (1, C, h, w) in [-1, 1]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    sr = upscale_tiled(net, x, scale, tile, tile_pad, device).add_(1).div_(2).clamp_(0, 1)  # (1, 3, H, W) on the CPU
    if lr.channels == 1:
        sr = luma(sr)
    alpha = None if lr.alpha is None else bicubic_upscale(SRImage(lr.alpha, None, lr.bit_depth), scale).pixels
    return SRImage(quantize(sr[0], lr.bit_depth), alpha, lr.bit_depth)
