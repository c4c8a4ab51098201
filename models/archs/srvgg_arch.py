"""SRVGGNetCompact: Real-ESRGAN's small, fast general model (realesr-general-x4v3, realesr-animevideov3).

A plain stack of 3x3 convolutions at the LR size, each followed by a PReLU (one slope per channel), then one
PixelShuffle to the HR size, plus the input upsampled by nearest neighbour: the network learns only the
residual over a crude upscale, and spends all its work at the LR size, which makes it many times cheaper than
RRDBNet at equal input size. Module names (`body.K`) are those of the published weights, which compute on RGB
in [0, 1]; `define_G` adapts the network to the toolkit's [-1, 1] (models/archs/value_range.py).
"""
from __future__ import annotations

import argparse
from collections import OrderedDict
from typing import Any, Dict, List, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.errors import OptionError

from .init import ARCHITECTURE_INIT
from .msrresnet_arch import match_channels
from .norms import NormFactory
from .registration import Tiny, context_radius, option_group
from .registry import GENERATORS

SCALES = (1, 2, 3, 4, 8)


class SRVGGNetCompact(nn.Module):
    """`n_conv` + 2 convolutions with PReLU at the LR size, PixelShuffle(scale), plus nearest-upsampled input."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_conv: int = 16, scale: int = 4) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale}")
        self.scale = scale
        layers: List[nn.Module] = [nn.Conv2d(input_nc, ngf, 3, 1, 1), nn.PReLU(num_parameters=ngf)]
        for _ in range(n_conv):
            layers += [nn.Conv2d(ngf, ngf, 3, 1, 1), nn.PReLU(num_parameters=ngf)]
        layers.append(nn.Conv2d(ngf, output_nc * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)  # a ModuleList, as published: keys body.0 ... body.{2 n_conv + 2}
        self.upsampler = nn.PixelShuffle(scale)
        self.head_context = head_context({"scale": scale})  # LR pixels of context `hr_head` needs

    # Split tiling (models/inference/split_tiles.py) does not pay here: every activation is at the LR size, and
    # the last conv's output_nc * scale^2 channels (48 at x4) are fewer than the body's 64, so a trunk tile
    # holds as much per LR pixel as a whole-network tile. Plain tiles of 512 are used instead.
    splits = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, input_nc, h, w)
        return self.hr_head(self.trunk(x), x)  # (N, output_nc, h * scale, w * scale)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The body but its last conv: (N, input_nc, h, w) -> (N, ngf, h, w)."""
        out = x
        for layer in self.body[:-1]:
            out = layer(out)
        return out

    def hr_head(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The last conv, PixelShuffle and the nearest-upsampled input `x`: (N, ngf, h, w) -> (N, output_nc,
        h * scale, w * scale)."""
        out = self.upsampler(self.body[-1](features))  # (N, output_nc, h * scale, w * scale)
        base = F.interpolate(x, scale_factor=self.scale, mode="nearest")  # (N, input_nc, h * scale, w * scale)
        return out + match_channels(base, out.shape[1])


def body_convs(state: Mapping[str, torch.Tensor]) -> int:
    """`n_conv` of an SRVGGNetCompact state_dict: its body holds 2 * n_conv + 3 modules (`body.0` ... )."""
    indices = {int(key.split(".")[1]) for key in state if key.startswith("body.")}
    if not indices or indices != set(range(max(indices) + 1)) or (len(indices) - 3) % 2:
        raise ValueError(f"not an SRVGGNetCompact state_dict: body indices {sorted(indices)[:6]}...")
    return (len(indices) - 3) // 2


def deepen_state(state: Mapping[str, torch.Tensor], n_conv: int) -> "OrderedDict[str, torch.Tensor]":
    """The weights of a deeper SRVGGNetCompact (`n_conv` body convolutions) that computes what `state` computes.

    Net2Net's deeper network (Chen et al. 2016): the source's body pairs (3x3 conv, PReLU) are spread evenly over
    the `n_conv` positions, and every other position gets a pair that passes its input through: a Dirac kernel
    with zero bias, and a PReLU of slope 1. Training then starts from the smaller network's function instead of
    from scratch, and each added layer has a gradient from the first step (its output is its input, so dL/dW is
    the correlation of the upstream gradient with that input). Keys are the published layout (`body.K`).
    """
    source = body_convs(state)
    if n_conv < source:
        raise ValueError(f"cannot deepen {source} body convolutions to {n_conv}: give --n_conv >= {source}")
    conv = state["body.2.weight"] if source else state["body.0.weight"]
    ngf = conv.shape[0]
    placed: Dict[int, int] = {(k + 1) * n_conv // source - 1: k for k in range(source)} if source else {}
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key in ("body.0.weight", "body.0.bias", "body.1.weight"):  # first conv + PReLU, unchanged
        out[key] = state[key].clone()
    for j in range(n_conv):
        dst_conv, dst_act = 2 + 2 * j, 3 + 2 * j
        if j in placed:
            src_conv = 2 + 2 * placed[j]
            out[f"body.{dst_conv}.weight"] = state[f"body.{src_conv}.weight"].clone()
            out[f"body.{dst_conv}.bias"] = state[f"body.{src_conv}.bias"].clone()
            out[f"body.{dst_act}.weight"] = state[f"body.{src_conv + 1}.weight"].clone()
        else:
            weight = torch.zeros(ngf, ngf, 3, 3, dtype=conv.dtype)  # (out, in, kh, kw)
            nn.init.dirac_(weight)
            out[f"body.{dst_conv}.weight"] = weight
            out[f"body.{dst_conv}.bias"] = torch.zeros(ngf, dtype=conv.dtype)
            out[f"body.{dst_act}.weight"] = torch.ones(ngf, dtype=conv.dtype)
    last = 2 + 2 * source
    out[f"body.{2 + 2 * n_conv}.weight"] = state[f"body.{last}.weight"].clone()
    out[f"body.{2 + 2 * n_conv}.bias"] = state[f"body.{last}.bias"].clone()
    return out


def _srvgg(input_nc: int, output_nc: int, ngf: int, norm_layer: NormFactory, use_dropout: bool,
           n_conv: int = 32, scale: int = 4, **_: object) -> nn.Module:
    """SRVGGNetCompact with `ngf` features and `n_conv` body convolutions (no normalisation)."""
    return SRVGGNetCompact(input_nc, output_nc, ngf, n_conv, scale)


def _add_options(parser: argparse.ArgumentParser, is_train: bool) -> None:
    g = option_group(parser, "super-resolution")
    g.add_argument("--n_conv", type=int, default=32,
                   help="body convolutions of the SRVGGNetCompact generator (32 in realesr-general-x4v3, 16 in "
                        "realesr-animevideov3)")


def head_context(kwargs: Mapping[str, Any]) -> int:
    """Receptive-field radius of `hr_head` in LR pixels: its one 3x3 conv (the nearest skip adds none)."""
    return context_radius([(1, kwargs.get("scale", 4))])


def _context(kwargs: Mapping[str, Any]) -> int:
    """Receptive-field radius in LR pixels: `n_conv` + 2 3x3 convs, all at the LR size (the nearest-upsampled
    input adds none). 32 convolutions: 34."""
    return context_radius([(kwargs.get("n_conv", 32) + 2, kwargs.get("scale", 4))])


def _validate(opt: Any) -> None:
    if opt.n_conv < 0:
        raise OptionError(f"--n_conv must be >= 0, got {opt.n_conv}")


# Trained from scratch with PyTorch's layer defaults, as Real-ESRGAN trains it: --init_type normal's N(0, 0.02)
# shrinks the signal about threefold per layer of this plain stack, so the body's gradients vanish (in 400 steps
# of the pixel stage on T91, a 16-conv net never moved off its nearest-neighbour output).
# Tiles of 512 LR pixels (--model srgan's --tile is 192 for the others): every activation is at the LR size, so a
# padded 580-pixel tile holds 190 MiB (fp32, CPU), and on a 1920x1080 photo the tiles' context costs 1.25x the
# image's convolutions instead of 1.73x (docs/benchmarks.md).
GENERATORS.add("srvgg", _srvgg, size_divisor=1, upscale=True, scales=SCALES, value_range="unit",
               publisher_layout="basicsr",
               context=_context, head_context=head_context,
               option_defaults={"init_type": ARCHITECTURE_INIT, "tile": 512},
               add_options=_add_options,
               from_options={"n_conv": "n_conv", "scale": "scale"}, validate=_validate,
               tiny=Tiny(side=8, options={"n_conv": 1, "scale": 4}))
