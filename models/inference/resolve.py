"""A super-resolution generator applied to one image: grey, alpha and 16 bit kept, memory bounded by tiles.

`super_resolve` applies a generator to an SRImage (grey, alpha and 16 bit kept) at its native scale or, for
an output size that is not a multiple of the input's (scripts/upscale.py --outscale 3.5), at the native
scale followed by one Lanczos resize of the unrounded output (util/images.resize_lanczos).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from util.images import SRImage, quantize, resize_bicubic, resize_lanczos
from util.images.pixels import from_uint, to_uint

from .tiles import upscale_tiled

Size = Tuple[int, int]  # (W, H), PIL's order
ALPHA_UPSAMPLERS = ("bicubic", "realesrgan")  # how an alpha channel is upscaled (Real-ESRGAN's --alpha_upsampler)


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
    pre_pad: int = 0,
    alpha_upsampler: str = "bicubic",
    head_tile: int = 0,
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
    `pre_pad` is Real-ESRGAN's --pre_pad: that many LR pixels mirrored (reflect) onto the right and bottom edges
    only, and cut from the output. `alpha_upsampler` "realesrgan" sends the alpha channel through the network too,
    as a greyscale image (Real-ESRGAN's default), instead of resizing it with bicubic. `head_tile`: split tiles
    (`upscale_tiled`).
    """
    native = (lr.size[0] * scale, lr.size[1] * scale)
    size = native if size is None else size
    x = lr.pixels.unsqueeze(0) * 2 - 1  # (1, C, h, w) in [-1, 1]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if edge_pad < 0 or pre_pad < 0:
        raise ValueError(f"edge_pad and pre_pad must be >= 0, got {edge_pad} and {pre_pad}")
    if alpha_upsampler not in ALPHA_UPSAMPLERS:
        raise ValueError(f"alpha_upsampler must be one of {ALPHA_UPSAMPLERS}, got {alpha_upsampler!r}")
    pre_pad = min(pre_pad, x.shape[2] - 1, x.shape[3] - 1)  # reflection needs fewer pixels than the side has
    if pre_pad:
        x = torch.nn.functional.pad(x, (0, pre_pad, 0, pre_pad), mode="reflect")  # (1, 3, h + q, w + q)
    if edge_pad:
        x = torch.nn.functional.pad(x, (edge_pad,) * 4, mode="replicate")  # (1, 3, h + q + 2 p, w + q + 2 p)
    cut = edge_pad * scale  # output pixels of the edge padding, on each side; the pre-padding is past native

    def unpad(t: torch.Tensor) -> torch.Tensor:  # (1, C, H + 2 cut + Q, W + 2 cut + Q) -> (1, C, H, W)
        return t[:, :, cut:cut + native[1], cut:cut + native[0]]

    def to_unit(piece: torch.Tensor) -> torch.Tensor:  # (1, 3, h', w') in [-1, 1] -> (1, C, h', w') in [0, 1]
        piece = piece.add_(1).div_(2).clamp_(0, 1)
        return luma(piece) if lr.channels == 1 else piece

    alpha = None
    if lr.alpha is not None and alpha_upsampler == "realesrgan":  # the alpha as a grey image through the network
        alpha = super_resolve(net, SRImage(lr.alpha, None, lr.bit_depth), scale, tile, tile_pad, device, size,
                              edge_pad, pre_pad, head_tile=head_tile).pixels
    elif lr.alpha is not None:
        alpha = resize_bicubic(SRImage(lr.alpha, None, lr.bit_depth), size).pixels
    if size == native:
        # Each piece is rounded to the bit depth as it comes and kept as integer levels: the float output of a
        # 2000x1500 photo x4 is 576 MB, its 8-bit levels 144 MB, and that is what bounds test.py's memory.
        def to_levels(piece: torch.Tensor) -> torch.Tensor:  # (1, C, h', w') uint8 / uint16
            return torch.from_numpy(to_uint(to_unit(piece)[0], lr.bit_depth)).permute(2, 0, 1).unsqueeze(0)

        levels = unpad(upscale_tiled(net, x, scale, tile, tile_pad, device, finish=to_levels,
                                     head_tile=head_tile))  # (1, C, H, W)
        return SRImage(from_uint(levels[0].permute(1, 2, 0).numpy(), lr.bit_depth), alpha, lr.bit_depth)
    sr = to_unit(unpad(upscale_tiled(net, x, scale, tile, tile_pad, device, head_tile=head_tile)))  # (1, C, H, W)
    pixels = resize_lanczos(sr[0], size).contiguous()  # (C, H', W'); Lanczos overshoots a little, quantize clamps
    return SRImage(quantize(pixels, lr.bit_depth, out=pixels), alpha, lr.bit_depth)
