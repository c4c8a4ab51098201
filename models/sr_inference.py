"""Applying a super-resolution generator to images of any size with bounded memory.

`upscale_tiled` cuts the LR image into tiles of `tile` x `tile` pixels, runs each tile with `tile_pad` pixels of
real context around it, keeps the upscaled centre and pastes it into the output on the CPU. Only one padded
tile is on the device at a time, so device memory depends on `tile`, not on the photo. The generators are
fully convolutional with zero padding, so when `tile_pad` covers the network's receptive-field radius (its
registration's `context`, models/architecture.py: SRResNet x4 40 LR pixels, MSRResNet 35, SRVGGNetCompact
with 32 convolutions 34) each output pixel sees exactly the inputs it would see in one pass over the whole
image, and the tiled result equals the untiled one up to floating-point rounding. `default_tile_pad` is that
radius, up to MAX_EXACT_PAD. RRDBNet's radius (23 blocks: 349 LR pixels) would make a 192-pixel tile compute
about 20 times its own area, so its tiles get MAX_EXACT_PAD of context and are NOT exact: an output pixel
near a tile's edge misses inputs beyond the pad, whose weight in it depends on the trained weights. The
price of exactness is the overlap: a tile of T pixels with P of context computes up to (T + 2P)^2 pixels for
T^2 kept (192 with 40: twice the convolution work); larger tiles lower it at the cost of memory. On the host, the
output is what bounds memory: `super_resolve` keeps it as integer levels of the input's bit depth, rounded
piece by piece, so a 2000x1500 photo x4 takes 144 MB (8 bit) beside the tile's activations, not 576 MB.

`super_resolve` applies a generator to an SRImage (grey, alpha and 16 bit kept) at its native scale or, for
an output size that is not a multiple of the input's (scripts/upscale.py --outscale 3.5), at the native
scale followed by one Lanczos resize of the unrounded output (util/images.resize_lanczos).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from util.images import SRImage, quantize, resize_bicubic, resize_lanczos
from util.images.pixels import from_uint, to_uint

from . import architecture
from .generators import GENERATORS

Span = Tuple[int, int]
Size = Tuple[int, int]  # (W, H), PIL's order


# The most context `default_tile_pad` gives a tile: enough for every generator here but RRDBNet, whose exact
# context (349 LR pixels) would cost ((192 + 698) / 192)^2 = 21 times a 192-pixel tile's work.
MAX_EXACT_PAD = 40


def default_tile_pad(netG: str, kwargs: Mapping[str, Any]) -> int:
    """The tile context for generator `netG` built with `kwargs`: its receptive-field radius (exact tiles),
    at most MAX_EXACT_PAD; MAX_EXACT_PAD where the registration does not say."""
    radius = architecture.context(GENERATORS, netG, kwargs)
    return MAX_EXACT_PAD if radius is None else min(radius, MAX_EXACT_PAD)


def tile_spans(length: int, tile: int, tile_pad: int) -> Iterator[Tuple[Span, Span]]:
    """Along one side of `length` pixels: each tile's (start, end), and the (start, end) of the tile with
    `tile_pad` pixels of context on each side, clipped at the image's borders."""
    for start in range(0, length, tile):
        end = min(start + tile, length)
        yield (start, end), (max(start - tile_pad, 0), min(end + tile_pad, length))


@torch.no_grad()
def upscale_tiled(
    net: nn.Module,
    lr: torch.Tensor,
    scale: int,
    tile: int = 0,
    tile_pad: int = 40,
    device: torch.device = torch.device("cpu"),
    finish: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> torch.Tensor:
    """Run `net` on `lr` (N, C, h, w) and return (N, C_out, h * scale, w * scale) float32 on the CPU.

    `tile` 0 (or an image no larger than one tile) runs the whole image in one pass. The caller sets the
    network's mode (eval for BatchNorm's running statistics, which are what make tiles independent).
    `finish`, when given, maps each piece of the output, (N, C_out, h', w') float32 on the CPU, to what is kept
    of it, of any channels and dtype, before it is pasted: `super_resolve` keeps integer levels, so the full-size
    output is never held as floats beside a tile's activations.
    """
    if lr.dim() != 4:
        raise ValueError(f"upscale_tiled expects an (N, C, h, w) batch, got shape {tuple(lr.shape)}")
    if tile < 0 or tile_pad < 0:
        raise ValueError(f"tile and tile_pad must be >= 0, got {tile} and {tile_pad}")
    finish = finish if finish is not None else (lambda piece: piece)
    n, _, h, w = lr.shape
    if tile == 0 or (h <= tile and w <= tile):
        return finish(net(lr.to(device)).float().cpu())
    out = None
    for (y0, y1), (py0, py1) in tile_spans(h, tile, tile_pad):
        for (x0, x1), (px0, px1) in tile_spans(w, tile, tile_pad):
            result = net(lr[:, :, py0:py1, px0:px1].to(device))  # (N, C_out, (py1-py0)*s, (px1-px0)*s)
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            piece = finish(result[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale].float().cpu())
            del result
            if out is None:
                out = torch.empty((n, piece.shape[1], h * scale, w * scale), dtype=piece.dtype)
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = piece
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
    size: Optional[Size] = None,
    edge_pad: int = 0,
) -> SRImage:
    """The SR of `lr` by an RGB generator, as the same kind of image at `scale` times the size, or at `size`.

    A greyscale image goes through the network as R = G = B and comes back as the luma of the output; an alpha
    channel is not the network's business and is resized with bicubic on its own; the result is rounded to
    the input's bit depth (8 or 16). `size` (W, H), when it differs from `scale` times the input's: the
    network's output is resized to it with Lanczos before the rounding, and the alpha goes there in one step.
    `edge_pad` LR pixels are added around the image by repeating its edge pixels (the boundary rule of the
    bicubic degradation) and their output cut away again: the network then sees image-like context instead
    of its zero padding along the borders, which removes the "frame" a briefly trained generator draws there
    (docs/sr_results.md, scripts/sr_border.py; Real-ESRGAN's inference pre-pads for the same reason).
    """
    native = (lr.size[0] * scale, lr.size[1] * scale)
    size = native if size is None else size
    x = lr.pixels.unsqueeze(0) * 2 - 1  # (1, C, h, w) in [-1, 1]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if edge_pad < 0:
        raise ValueError(f"edge_pad must be >= 0, got {edge_pad}")
    if edge_pad:
        x = torch.nn.functional.pad(x, (edge_pad,) * 4, mode="replicate")  # (1, 3, h + 2 p, w + 2 p)
    cut = edge_pad * scale  # output pixels of the padding, on each side

    def unpad(t: torch.Tensor) -> torch.Tensor:  # (1, C, H + 2 cut, W + 2 cut) -> (1, C, H, W)
        return t[:, :, cut:t.shape[2] - cut, cut:t.shape[3] - cut] if cut else t

    def to_unit(piece: torch.Tensor) -> torch.Tensor:  # (1, 3, h', w') in [-1, 1] -> (1, C, h', w') in [0, 1]
        piece = piece.add_(1).div_(2).clamp_(0, 1)
        return luma(piece) if lr.channels == 1 else piece

    alpha = None if lr.alpha is None else resize_bicubic(SRImage(lr.alpha, None, lr.bit_depth), size).pixels
    if size == native:
        # Each piece is rounded to the bit depth as it comes and kept as integer levels: the float output of a
        # 2000x1500 photo x4 is 576 MB, its 8-bit levels 144 MB, and that is what bounds test.py's memory.
        def to_levels(piece: torch.Tensor) -> torch.Tensor:  # (1, C, h', w') uint8 / uint16
            return torch.from_numpy(to_uint(to_unit(piece)[0], lr.bit_depth)).permute(2, 0, 1).unsqueeze(0)

        levels = unpad(upscale_tiled(net, x, scale, tile, tile_pad, device, finish=to_levels))  # (1, C, H, W)
        return SRImage(from_uint(levels[0].permute(1, 2, 0).numpy(), lr.bit_depth), alpha, lr.bit_depth)
    sr = to_unit(unpad(upscale_tiled(net, x, scale, tile, tile_pad, device)))  # (1, C, H, W) on the CPU
    pixels = resize_lanczos(sr[0], size).contiguous()  # (C, H', W'); Lanczos overshoots a little, quantize clamps
    return SRImage(quantize(pixels, lr.bit_depth, out=pixels), alpha, lr.bit_depth)
