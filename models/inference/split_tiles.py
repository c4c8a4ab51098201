"""Split tiling: a generator's LR trunk on large tiles, its HR head on small ones, exact and at bounded memory.

Why: in plain tiles (models/inference/tiles.py) the whole generator runs on each tile, and a tile's memory is
dominated by the upsampling stages (64-256 channels at 2x and 4x the size), while almost all the receptive field
comes from the trunk at the LR size, which is cheap in memory. So the tile that memory allows is small (192 LR
pixels), and its context of up to 40 pixels on every side makes it compute about twice the useful work.

Here a network with `trunk(x) -> features` (LR size) and `hr_head(features, x) -> output` (forward is
`hr_head(trunk(x), x)`, and `head_context`, the head's own radius in LR pixels) runs in two nested tilings:
outer tiles of `tile` LR pixels run the trunk with `tile_pad` pixels of context (the head's plus the trunk's)
and keep the features of the tile plus the head's context; the head then runs on inner tiles of `head_tile`
pixels with the head's context, whose HR output is pasted. Only the trunk's activations scale with `tile`, so
the outer tile can be 3-5 times larger at the same memory and the overlap falls (docs/benchmarks.md).

Exact for the same reason plain tiles are: every layer is a zero-padded convolution, a pointwise map, a
pixel shuffle or a nearest / bilinear resize, so a kept feature sees the same inputs it sees in one pass over the
image as long as the trunk's context covers the trunk's radius, and a kept output pixel sees the same features
(and the same LR pixels, for MSRResNet's bilinear input skip) as long as the head's context covers the head's.
At the image's borders windows are clipped, and the layers see the same zero padding (and bilinear's clamped
edge) as they do on the whole image. RRDBNet (23 blocks: radius 349) gets the capped `tile_pad` as plain
tiles do: its trunk's context is short and the result is not exact, as there.
"""
from __future__ import annotations

import functools
from typing import Callable, Iterator, Optional, Tuple

import torch
import torch.nn as nn

from ..archs.value_range import from_unit, is_unit_range_adapted, to_unit

Span = Tuple[int, int]

# LR pixels of a head tile. Chosen by reckoning, not measured: SRResNet x4's head holds about 3,000 floats per LR
# pixel at its peak (the second 256-channel conv at 2x the size, its shuffled copy, PReLU), so a 96-pixel tile with 3 of
# context holds about 125 MiB in fp32, under a tenth of the 2 GiB budget, while its context adds 13% to the head's
# work ((96 + 6)^2 / 96^2; 64: 20%, at half the memory; 128: 10%, at 1.7 times).
HEAD_TILE = 96


def splittable(net: nn.Module) -> bool:
    """Whether `net` can run in split tiles: it has `trunk` and `hr_head`, says its head's radius, and does not
    opt out (`splits` False: SRVGGNetCompact, where it would not save memory; RRDBNet at scales 2 and 1)."""
    return (callable(getattr(net, "trunk", None)) and callable(getattr(net, "hr_head", None))
            and isinstance(getattr(net, "head_context", None), int) and bool(getattr(net, "splits", True)))


def parts(net: nn.Module) -> Tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """`net`'s trunk and head as functions of (net, inputs), compiled when `net` is (`--compile`).

    `nn.Module.compile` compiles the call of the module, that is `forward`, which split tiles never call; without
    this they would run the trunk and the head eagerly. The class's own functions are compiled, once each, and
    called with `net`: nothing is stored on the network (a copy of it, as the EMA makes, would call its
    original's code) and the cache keeps no network alive. Another network of the class reuses the compiled
    code without recompiling. `torch.compile` runs with its defaults, as `--compile` does.
    """
    trunk, head = type(net).trunk, type(net).hr_head
    if getattr(net, "_compiled_call_impl", None) is None:  # what nn.Module.compile sets
        return trunk, head
    return _compiled(trunk), _compiled(head)


@functools.lru_cache(maxsize=None)
def _compiled(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    return torch.compile(function)


def spans(start: int, end: int, tile: int, pad: int, low: int, high: int) -> Iterator[Tuple[Span, Span]]:
    """Tiles of `tile` pixels over [start, end): each tile's (start, end) and the tile with `pad` pixels of context
    on each side, clipped to [low, high] (the image's borders)."""
    for first in range(start, end, tile):
        last = min(first + tile, end)
        yield (first, last), (max(first - pad, low), min(last + pad, high))


@torch.no_grad()
def upscale_split(
    net: nn.Module,
    lr: torch.Tensor,
    scale: int,
    tile: int,
    tile_pad: int,
    head_tile: int,
    device: torch.device,
    finish: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """`net` (`splittable`) on `lr` (N, C, h, w) in outer tiles of `tile` (trunk) and inner tiles of `head_tile`
    (head); returns what `finish` keeps of (N, C_out, h * scale, w * scale), on the CPU, as `upscale_tiled` does.

    `tile_pad` is the whole network's context (as for plain tiles): the head gets its `head_context` of it (all of
    it, when smaller), the trunk the rest. A network adapted to [-1, 1] (models/archs/value_range.py) has its
    range mapped here, once on the way in and once on the way out, since `trunk` and `hr_head` bypass its hooks.
    """
    unit = is_unit_range_adapted(net)
    trunk, head = parts(net)
    head_pad = min(int(net.head_context), tile_pad)
    trunk_pad = tile_pad - head_pad
    n, _, h, w = lr.shape
    out: Optional[torch.Tensor] = None
    for (y0, y1), (ky0, ky1) in spans(0, h, tile, head_pad, 0, h):  # k: the features kept
        for (x0, x1), (kx0, kx1) in spans(0, w, tile, head_pad, 0, w):
            py0, py1, px0, px1 = max(ky0 - trunk_pad, 0), min(ky1 + trunk_pad, h), max(kx0 - trunk_pad, 0), \
                min(kx1 + trunk_pad, w)
            window = lr[:, :, py0:py1, px0:px1].to(device)  # (N, C, py1 - py0, px1 - px0)
            window = to_unit(window) if unit else window
            kept = (slice(None), slice(None), slice(ky0 - py0, ky1 - py0), slice(kx0 - px0, kx1 - px0))
            features = trunk(net, window)[kept]  # (N, F, ky1 - ky0, kx1 - kx0)
            window = window[kept]  # (N, C, ky1 - ky0, kx1 - kx0): the head's input skip
            for (iy0, iy1), (qy0, qy1) in spans(y0, y1, head_tile, head_pad, 0, h):
                for (ix0, ix1), (qx0, qx1) in spans(x0, x1, head_tile, head_pad, 0, w):
                    inner = (slice(None), slice(None), slice(qy0 - ky0, qy1 - ky0), slice(qx0 - kx0, qx1 - kx0))
                    result = head(net, features[inner], window[inner])  # (N, C_out, (qy1-qy0)*s, (qx1-qx0)*s)
                    oy, ox = (iy0 - qy0) * scale, (ix0 - qx0) * scale
                    result = result[:, :, oy:oy + (iy1 - iy0) * scale, ox:ox + (ix1 - ix0) * scale]
                    piece = finish((from_unit(result) if unit else result).float().cpu())
                    del result
                    if out is None:
                        out = torch.empty((n, piece.shape[1], h * scale, w * scale), dtype=piece.dtype)
                    out[:, :, iy0 * scale:iy1 * scale, ix0 * scale:ix1 * scale] = piece
            del features, window
    assert out is not None
    return out
