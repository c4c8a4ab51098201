"""U-Net generator of pix2pix (Isola et al. 2017): an encoder-decoder with skips between mirrored layers.

Built recursively from the innermost block outwards; each block is `down -> submodule -> up` and
concatenates its input with its output (except the outermost). The nesting fixes the reference's
checkpoint keys (`model.model.1.model.3.model.1.weight`, ...).
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn

from .norms import NormFactory, uses_bias
from .registration import Tiny
from .registry import GENERATORS


class UnetSkipConnectionBlock(nn.Module):
    """(N, outer_nc or input_nc, H, W) -> (N, 2*outer_nc, H, W), or (N, outer_nc, H, W) when outermost."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: Optional[int] = None,
        submodule: Optional[nn.Module] = None,
        outermost: bool = False,
        innermost: bool = False,
        norm_layer: NormFactory = nn.BatchNorm2d,
        use_dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        use_bias = uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)

        def upconv(in_ch: int, bias: bool) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(in_ch, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)

        if outermost:
            assert submodule is not None
            layers: List[nn.Module] = [downconv, submodule, uprelu, upconv(inner_nc * 2, True), nn.Tanh()]
        elif innermost:
            layers = [downrelu, downconv, uprelu, upconv(inner_nc, use_bias), norm_layer(outer_nc)]
        else:
            assert submodule is not None
            layers = [
                downrelu,
                downconv,
                norm_layer(inner_nc),
                submodule,
                uprelu,
                upconv(inner_nc * 2, use_bias),
                norm_layer(outer_nc),
            ]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """(N, input_nc, H, W) -> (N, output_nc, H, W); H and W must be multiples of 2**num_downs."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        norm_layer: NormFactory = nn.BatchNorm2d,
        use_dropout: bool = False,
    ):
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5 (4 fixed widening levels + innermost), got {num_downs}")
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 5):  # extra 8*ngf levels; dropout here as in pix2pix
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout
            )
        for mult in (4, 2, 1):  # widen 8 -> 4 -> 2 -> 1 x ngf towards the outside
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _unet_builder(num_downs: int):
    def build(input_nc: int, output_nc: int, ngf: int, norm_layer: NormFactory, use_dropout: bool, **_: object):
        return UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout)

    build.__doc__ = f"U-Net with {num_downs} downsamplings (input sides multiple of {2 ** num_downs})."
    return build


# num_downs halvings down to a 1x1 innermost map: the side must be a multiple of 2**num_downs.
GENERATORS.add("unet_256", _unet_builder(8), size_divisor=256, tiny=Tiny(side=256, batch=1))
GENERATORS.add("unet_128", _unet_builder(7), size_divisor=128, tiny=Tiny(side=128, batch=1))
