"""The receptive-field radius every upscaling generator declares (its registration's `context`) is the real one,
and tiled inference with that much context gives the whole-image result.

The radius is checked against the network itself: the gradient of an aligned block of output pixels with
respect to the input is non-zero exactly on the input pixels the block depends on, so its extent beyond the
block is the context that block needs. Every upscaling generator of the registry is checked at every scale it
makes, in its tiny construction (the declared formula is the same for every depth).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Dict, List, Tuple

import pytest
import torch
import torch.nn as nn

from models import networks
from models.archs import registration
from models.networks import GENERATORS
from models.inference.tiles import default_tile_pad, tile_spans, upscale_tiled

BLOCK = 4  # LR pixels of the output block whose dependencies are measured


def _cases() -> List[Tuple[str, int]]:
    return [(name, scale) for name in GENERATORS.names() if networks.upscales(name)
            for scale in networks.generator_scales(name)]


def _tiny_net(name: str, scale: int) -> Tuple[nn.Module, Dict[str, Any]]:
    """The tiny construction at `scale`, in float64 with weights large enough that no path's gradient underflows."""
    kwargs = {**registration.tiny_kwargs(GENERATORS, name), "scale": scale}
    torch.manual_seed(0)
    net = networks.define_G(3, 3, 8, name, "batch", False, "normal", 0.5, **kwargs)
    return net.double().eval(), kwargs


def _measured_context(net: nn.Module, scale: int, context: int) -> int:
    """Input pixels beyond an aligned output block that the block's values depend on (largest of the 4 sides)."""
    # The block's first LR pixel, away from the border; a multiple of 4, so a block of a network that
    # pixel-unshuffles its input (by 2 or 4) sits on the unshuffled grid, as tiles with such a pad do.
    start = -(-(context + 4) // 4) * 4
    side = start + BLOCK + context + 8  # room on every side: no dependency is cut off by the image border
    x = torch.rand(1, 3, side, side, dtype=torch.float64, requires_grad=True)
    out = net(x)  # (1, 3, side * scale, side * scale)
    lo, hi = start * scale, (start + BLOCK) * scale
    out[..., lo:hi, lo:hi].sum().backward()
    assert x.grad is not None
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3))).flatten()
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2))).flatten()
    return int(max(start - rows.min(), rows.max() - (start + BLOCK - 1), start - cols.min(),
                   cols.max() - (start + BLOCK - 1)))


@pytest.mark.parametrize("name,scale", _cases())
def test_declared_context_is_the_receptive_field(name: str, scale: int) -> None:
    net, kwargs = _tiny_net(name, scale)
    declared = registration.context(GENERATORS, name, kwargs)
    assert declared is not None, f"{name} declares no context: tiled inference cannot know its exact tile_pad"
    assert _measured_context(net, scale, declared) == declared


def test_context_radius_rounds_to_whole_pixels_per_resolution() -> None:
    """Half an LR pixel of context at x2 is a whole LR pixel: SRResNet x4 (16 blocks) needs 40, not 39.5."""
    assert registration.context_radius([(38, 2), (1, 2), (4, 1)]) == 40
    assert registration.context_radius([(0, Fraction(1, 2)), (5, 1)]) == 10  # 5 after a pixel-unshuffle by 2
    assert registration.context(GENERATORS, "srresnet", {"n_blocks": 16, "scale": 4}) == 40
    assert registration.context(GENERATORS, "rrdbnet", {"n_blocks": 23, "scale": 4}) == 349


def test_full_size_srresnet_context_is_40() -> None:
    """The 16-block SRResNet test.py runs by default (narrow, so the check is quick): 40 LR pixels, as declared."""
    torch.manual_seed(0)
    net = networks.define_G(3, 3, 4, "srresnet", "batch", False, "normal", 0.5, n_blocks=16, scale=4)
    assert _measured_context(net.double().eval(), 4, 40) == 40


@pytest.mark.parametrize("name,scale", [c for c in _cases() if c[0] != "rrdbnet" or c[1] == 4])
def test_tiles_with_the_default_pad_equal_the_whole_image(name: str, scale: int) -> None:
    """At the default tile_pad (the declared context, where it is at most MAX_EXACT_PAD) tiles change nothing
    but float rounding."""
    net, kwargs = _tiny_net(name, scale)
    net = net.float()
    pad = default_tile_pad(name, kwargs)
    assert pad == registration.context(GENERATORS, name, kwargs)
    lr = torch.rand(1, 3, 2 * pad + 13, 2 * pad + 7) * 2 - 1
    whole = upscale_tiled(net, lr, scale)
    tiled = upscale_tiled(net, lr, scale, tile=pad + 3, tile_pad=pad)
    assert whole.std() > 1e-3
    assert (tiled - whole).abs().max() <= 1e-4 * whole.abs().max()


def test_tile_spans_cover_the_image_once() -> None:
    spans = list(tile_spans(10, 4, 3))
    assert [s[0] for s in spans] == [(0, 4), (4, 8), (8, 10)]
    assert [s[1] for s in spans] == [(0, 7), (1, 10), (5, 10)]  # clipped at the image's borders
