"""Split tiling (models/inference/split_tiles.py) gives the whole-image result, for every upscaling generator.

Each generator with a trunk and a head is checked in its tiny construction (sizes from the registry's `tiny`),
through `define_G`'s wrappers (the value-range hooks of [0, 1] networks), in both memory layouts, on an odd-sized
input cut into several outer and inner tiles and into 1-pixel strips; and its forward is `hr_head(trunk(x), x)`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest
import torch
import torch.nn as nn

from models import networks
from models.archs import registration
from models.inference.split_tiles import HEAD_TILE, splittable
from models.inference.tiles import default_tile_pad, upscale_tiled
from models.inference.upscaler import Upscaler
from models.networks import GENERATORS
from util.images import SRImage


def _upscalers() -> List[str]:
    return [name for name in GENERATORS.names() if networks.upscales(name)]


def _tiny(name: str, channels_last: bool = False) -> Tuple[nn.Module, Dict[str, Any]]:
    """The tiny construction x4 as define_G makes it (wrappers and hooks included), fp32, eval mode."""
    kwargs = {**registration.tiny_kwargs(GENERATORS, name), "scale": 4}
    torch.manual_seed(0)
    net = networks.define_G(3, 3, 8, name, "batch", False, "normal", 0.2, **kwargs).eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net, kwargs


@pytest.mark.parametrize("name", _upscalers())
def test_forward_is_head_of_trunk(name: str) -> None:
    net, _ = _tiny(name)
    bare = networks.unwrap(net)
    side = registration.tiny(GENERATORS, name).side  # type: ignore[union-attr]
    x = torch.rand(1, 3, side + 1, side + 3)  # (N, C, h, w) in [0, 1], the bare network's own range
    with torch.no_grad():
        # The hooks of a [0, 1] network are skipped by calling forward itself: this compares the bodies.
        assert torch.equal(bare.forward(x), bare.hr_head(bare.trunk(x), x))


@pytest.mark.parametrize("name", _upscalers())
def test_head_context_is_registered_and_carried(name: str) -> None:
    """The registration says the head's radius, the network carries the same number, and it is part of the
    whole network's radius."""
    net, kwargs = _tiny(name)
    head = registration.head_context(GENERATORS, name, kwargs)
    assert head is not None and head >= 1
    assert networks.unwrap(net).head_context == head
    whole = registration.context(GENERATORS, name, kwargs)
    assert whole is not None and whole > head


@pytest.mark.parametrize("name", [n for n in _upscalers() if splittable(_tiny(n)[0])])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("tile,head_tile", [(17, 5), (9, 4), (1, 1)])
def test_split_tiles_equal_the_whole_image(name: str, channels_last: bool, tile: int, head_tile: int) -> None:
    """Several outer and inner tiles on an odd-sized input, and 1-pixel strips: equal to one pass up to rounding."""
    net, kwargs = _tiny(name, channels_last)
    pad = default_tile_pad(name, kwargs)
    assert pad == registration.context(GENERATORS, name, kwargs)  # exact tiles (tiny sizes are under the cap)
    torch.manual_seed(1)
    h, w = (2 * pad + 13, 2 * pad + 7) if tile > 1 else (pad + 3, 2 * pad + 1)
    lr = torch.rand(1, 3, h, w) * 2 - 1  # (1, 3, h, w) in [-1, 1]
    with torch.no_grad():
        whole = net(lr)  # (1, 3, 4h, 4w)
    split = upscale_tiled(net, lr, 4, tile=tile, tile_pad=pad, head_tile=head_tile)
    assert whole.std() > 1e-3
    assert (split - whole).abs().max() <= 1e-5 * max(1.0, float(whole.abs().max()))


def test_strip_one_pixel_wide() -> None:
    """A 1-pixel-wide image (a strip) through split tiles."""
    net, kwargs = _tiny("srresnet")
    pad = default_tile_pad("srresnet", kwargs)
    lr = torch.rand(1, 3, 3 * pad, 1) * 2 - 1  # (1, 3, h, 1)
    with torch.no_grad():
        whole = net(lr)
    split = upscale_tiled(net, lr, 4, tile=pad, tile_pad=pad, head_tile=3)
    assert (split - whole).abs().max() <= 1e-5 * max(1.0, float(whole.abs().max()))


def test_split_tiles_of_a_compiled_network_run_compiled() -> None:
    """`--compile` compiles forward, which split tiles never call: their trunk and head are compiled too. A hook on
    the trunk's first convolution and on the head's last sees `torch.compiler.is_compiling()` while they are
    traced; the result is eager's up to fusion rounding; and the eager network's tiles stay eager."""
    net, kwargs = _tiny("msrresnet")
    bare = networks.unwrap(net)
    convs = [m for m in bare.modules() if isinstance(m, nn.Conv2d)]
    seen: Dict[str, List[bool]] = {"first": [], "last": []}
    for key, conv in (("first", convs[0]), ("last", convs[-1])):
        conv.register_forward_hook(lambda *_, key=key: seen[key].append(torch.compiler.is_compiling()))
    pad = default_tile_pad("msrresnet", kwargs)
    torch.manual_seed(1)
    lr = torch.rand(1, 3, 2 * pad + 13, 2 * pad + 7) * 2 - 1  # (1, 3, h, w) in [-1, 1]: two outer tiles a side
    eager = upscale_tiled(net, lr, 4, tile=pad + 7, tile_pad=pad, head_tile=9)
    assert seen["first"] and seen["last"] and not any(seen["first"] + seen["last"])
    bare.compile()
    for calls in seen.values():
        calls.clear()
    compiled = upscale_tiled(net, lr, 4, tile=pad + 7, tile_pad=pad, head_tile=9)
    assert any(seen["first"]) and any(seen["last"]), seen
    assert (compiled - eager).abs().max() <= 1e-4 * max(1.0, float(eager.abs().max()))


def test_upscaler_uses_split_tiles_only_where_they_apply() -> None:
    """Splittable networks get the default head tile; SRVGGNetCompact (no memory saved) and callables without a
    trunk (the onnxruntime backend's OnnxGenerator) keep plain tiles."""
    assert Upscaler(_tiny("srresnet")[0], 4, tile=64).head_tile == HEAD_TILE
    assert Upscaler(_tiny("msrresnet")[0], 4, tile=64).head_tile == HEAD_TILE
    assert Upscaler(_tiny("srvgg")[0], 4, tile=64).head_tile == 0

    class Plain(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")

    upscaler = Upscaler(Plain(), 4, tile=8, tile_pad=2)
    assert upscaler.head_tile == 0
    image = SRImage(torch.rand(3, 11, 13), None, 8)
    assert upscaler(image).size == (52, 44)


@pytest.mark.parametrize("name", _upscalers())
def test_default_tile_comes_from_the_registration(name: str) -> None:
    """The per-architecture tile (measured: docs/benchmarks.md, issue 23 item 4) is what test.py's options give."""
    from options.test_options import TestOptions

    meta = GENERATORS.meta(name)
    tile = meta.get("option_defaults", {}).get("tile")
    assert tile is not None, f"{name} declares no default tile"
    args = ["--model", "srgan", "--netG", name]
    assert TestOptions().build_parser(args).parse_known_args(args)[0].tile == tile


def test_plain_tiles_get_their_own_default() -> None:
    """The onnxruntime backend (plain tiles) and RRDBNet's pixel-unshuffled scales get the registration's
    `plain_tile` in place of the default split tile; a tile the user chose stays."""
    from models.inference.tiles import backend_tile

    split = GENERATORS.meta("srresnet")["option_defaults"]["tile"]
    assert backend_tile("srresnet", split, "torch", 4) == split
    assert backend_tile("srresnet", split, "onnxruntime", 4) == GENERATORS.meta("srresnet")["plain_tile"]
    assert backend_tile("srresnet", 300, "onnxruntime", 4) == 300
    rrdb = GENERATORS.meta("rrdbnet")["option_defaults"]["tile"]
    assert backend_tile("rrdbnet", rrdb, "torch", 4) == rrdb
    assert backend_tile("rrdbnet", rrdb, "torch", 2) == GENERATORS.meta("rrdbnet")["plain_tile"]
    assert backend_tile("srvgg", 512, "onnxruntime", 4) == 512  # plain either way
