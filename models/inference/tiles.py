"""Applying a super-resolution generator to images of any size with bounded memory.

`upscale_tiled` cuts the LR image into tiles of `tile` x `tile` pixels, runs each tile with `tile_pad` pixels of
real context around it, keeps the upscaled centre and pastes it into the output on the CPU. Only one padded
tile is on the device at a time, so device memory depends on `tile`, not on the photo. The generators are
fully convolutional with zero padding, so when `tile_pad` covers the network's receptive-field radius (its
registration's `context`, models/archs/registration.py: SRResNet x4 40 LR pixels, MSRResNet 35, SRVGGNetCompact
with 32 convolutions 34) each output pixel sees exactly the inputs it would see in one pass over the whole
image, and the tiled result equals the untiled one up to floating-point rounding. `default_tile_pad` is that
radius, up to MAX_EXACT_PAD. RRDBNet's radius (23 blocks: 349 LR pixels) would make a 192-pixel tile compute
about 20 times its own area, so its tiles get MAX_EXACT_PAD of context and are NOT exact: an output pixel
near a tile's edge misses inputs beyond the pad, whose weight in it depends on the trained weights. The
price of exactness is the overlap: a tile of T pixels with P of context computes up to (T + 2P)^2 pixels for
T^2 kept (192 with 40: twice the convolution work); larger tiles lower it at the cost of memory.

Split tiles (`head_tile` > 0; models/inference/split_tiles.py, issue 23 item 4) lower it at the same memory for
the generators with an LR trunk and an HR head (SRResNet, MSRResNet, RRDBNet at x4): the head, where the memory
is, runs on small inner tiles with its own 2-3 pixels of context, so the outer tiles, which pay the whole
context, can be several times larger (each architecture's measured default: its registration's `tile`,
docs/benchmarks.md, which also gives the overlap at it). They are exact for the same reason plain tiles are,
and RRDBNet's trunk gets the capped context, as its plain tiles do. Callables without a trunk and a head (the
onnxruntime backend's OnnxGenerator) and SRVGGNetCompact, whose activations are all at the LR size, keep plain
tiles; the onnxruntime backend gets its own default tile (`backend_tile`). On the host, the output is what
bounds memory: `super_resolve` keeps it as integer levels of the input's bit depth, rounded
piece by piece, so a 2000x1500 photo x4 takes 144 MB (8 bit) beside the tile's activations, not 576 MB.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from ..archs import registration
from ..archs.registry import GENERATORS
from .split_tiles import splittable, upscale_split

Span = Tuple[int, int]


# The most context `default_tile_pad` gives a tile: enough for every generator here but RRDBNet, whose exact
# context (349 LR pixels) would cost ((192 + 698) / 192)^2 = 21 times a 192-pixel tile's work.
MAX_EXACT_PAD = 40


# The smallest --tile: each tile also computes `tile_pad` pixels of context on every side, so a tile of T costs
# (T + 2P)^2 / T^2 times its own pixels: 33 times at 8 with 19 of context (gan-translate-x4), 1,521 times at 1
# (a 24x20 photo then took 960 s). Below 8 the cost only grows; small tiles above it get a warning instead
# (`tile_warnings`), since tests and small devices have uses for them.
MIN_TILE = 8
# Overlap above which a tiling is worth a warning: the tiles compute more than 4 times the useful pixels.
COSTLY_OVERLAP = 4.0


def tile_problem(tile: int, tile_pad: Optional[int] = None) -> Optional[str]:
    """Why `tile` (and `tile_pad`) cannot be used, as one phrase naming the option, or None."""
    if tile < 0 or (tile_pad is not None and tile_pad < 0):
        return "--tile and --tile_pad must be >= 0"
    if 0 < tile < MIN_TILE:
        return (f"--tile {tile} is below {MIN_TILE} LR pixels: each tile would compute its context "
                f"(--tile_pad on every side) many times over; use --tile {MIN_TILE} or more, or 0 for the whole image")
    return None


def tile_warnings(netG: str, kwargs: Mapping[str, Any], tile: int, tile_pad: int) -> List[str]:
    """What a user should know about tiles of `tile` with `tile_pad` of context for generator `netG`: context
    below the radius that makes tiles exact (seams: breaks of 80-90 levels in straight edges were seen at
    --tile_pad 0), and tiles that compute more than COSTLY_OVERLAP times the useful pixels."""
    if tile == 0:
        return []
    said = []
    exact = default_tile_pad(netG, kwargs)
    if tile_pad < exact:
        said.append(f"--tile_pad {tile_pad} is below the {exact} LR pixels of context {netG} needs for exact tiles: "
                    f"the result may show seams along the tiles' edges")
    overlap = ((tile + 2 * tile_pad) / tile) ** 2
    if overlap > COSTLY_OVERLAP:
        said.append(f"--tile {tile} with {tile_pad} pixels of context computes up to {overlap:.0f} times the "
                    f"useful pixels: a larger --tile is faster, if memory allows")
    return said


def default_tile_pad(netG: str, kwargs: Mapping[str, Any]) -> int:
    """The tile context for generator `netG` built with `kwargs`: its receptive-field radius (exact tiles),
    at most MAX_EXACT_PAD; MAX_EXACT_PAD where the registration does not say."""
    radius = registration.context(GENERATORS, netG, kwargs)
    return MAX_EXACT_PAD if radius is None else min(radius, MAX_EXACT_PAD)


def backend_tile(netG: str, tile: int, backend: str, scale: int) -> int:
    """The tile for `backend` at `scale`: where the whole network runs on each tile (plain tiles: the onnxruntime
    backend has no trunk and head to split, and a registration's `split_scales` may leave scales out) and `tile`
    is generator `netG`'s registered default, which is sized for split tiles, the registration's `plain_tile`
    (measured like it: docs/benchmarks.md). A --tile of another value is the user's and stays."""
    meta = GENERATORS.meta(netG)
    plain = backend == "onnxruntime" or scale not in meta.get("split_scales", (scale,))
    if plain and tile == meta.get("option_defaults", {}).get("tile"):
        return int(meta.get("plain_tile", tile))
    return tile


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
    head_tile: int = 0,
) -> torch.Tensor:
    """Run `net` on `lr` (N, C, h, w) and return (N, C_out, h * scale, w * scale) float32 on the CPU.

    `tile` 0 (or an image no larger than one tile) runs the whole image in one pass. The caller sets the
    network's mode (eval for BatchNorm's running statistics, which are what make tiles independent).
    `finish`, when given, maps each piece of the output, (N, C_out, h', w') float32 on the CPU, to what is kept
    of it, of any channels and dtype, before it is pasted: `super_resolve` keeps integer levels, so the full-size
    output is never held as floats beside a tile's activations.
    `head_tile` > 0, for a network with a trunk and a head (`split_tiles.splittable`): split tiles, the trunk on
    tiles of `tile`, the head on tiles of `head_tile` (models/inference/split_tiles.py); else plain tiles.
    """
    if lr.dim() != 4:
        raise ValueError(f"upscale_tiled expects an (N, C, h, w) batch, got shape {tuple(lr.shape)}")
    if min(tile, tile_pad, head_tile) < 0:
        raise ValueError(f"tile, tile_pad and head_tile must be >= 0, got {tile}, {tile_pad} and {head_tile}")
    finish = finish if finish is not None else (lambda piece: piece)
    n, _, h, w = lr.shape
    if tile and head_tile and splittable(net):
        return upscale_split(net, lr, scale, tile, tile_pad, head_tile, device, finish)
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
