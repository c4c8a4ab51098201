"""ResNet generator of Johnson et al. (2016), as used by CycleGAN.

Layout (module indices fixed by the reference's checkpoints, e.g. `model.10.conv_block.1.weight`):
reflection pad + 7x7 conv, two stride-2 downsamplings, `n_blocks` residual blocks at 4*ngf channels,
two transposed-conv upsamplings, reflection pad + 7x7 conv, tanh.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn

from .norms import NormFactory, uses_bias
from .registration import Tiny
from .registry import GENERATORS

PADDING_LAYERS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}


class ResnetBlock(nn.Module):
    """conv-norm-relu-(dropout)-conv-norm with an identity skip; spatial size and channels unchanged."""

    def __init__(self, dim: int, padding_type: str, norm_layer: NormFactory, use_dropout: bool, use_bias: bool):
        super().__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, use_dropout, use_bias)

    @staticmethod
    def build_conv_block(
        dim: int, padding_type: str, norm_layer: NormFactory, use_dropout: bool, use_bias: bool
    ) -> nn.Sequential:
        def padded_conv() -> List[nn.Module]:
            if padding_type == "zero":
                return [nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=use_bias)]
            if padding_type not in PADDING_LAYERS:
                raise KeyError(f"unknown padding type {padding_type!r}; valid: reflect, replicate, zero")
            return [PADDING_LAYERS[padding_type](1), nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias)]

        layers: List[nn.Module] = [*padded_conv(), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*padded_conv(), norm_layer(dim)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """(N, input_nc, H, W) -> (N, output_nc, H, W) in [-1, 1]; H and W must be multiples of 4."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        norm_layer: NormFactory = nn.BatchNorm2d,
        use_dropout: bool = False,
        n_blocks: int = 6,
        padding_type: str = "reflect",
    ):
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        super().__init__()
        use_bias = uses_bias(norm_layer)
        layers: List[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        n_down = 2
        for i in range(n_down):  # (N, ngf*2^i, H/2^i, W/2^i) -> (N, ngf*2^(i+1), H/2^(i+1), W/2^(i+1))
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2**n_down
        layers += [ResnetBlock(ngf * mult, padding_type, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(n_down):  # back up to (N, ngf, H, W)
            mult = 2 ** (n_down - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=use_bias
                ),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _resnet_builder(n_blocks: int):
    def build(input_nc: int, output_nc: int, ngf: int, norm_layer: NormFactory, use_dropout: bool, **_: object):
        return ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks=n_blocks)

    build.__doc__ = f"ResNet generator with {n_blocks} residual blocks."
    return build


# Two stride-2 downsamplings: sides must be multiples of 4. Fully convolutional, so a 32-pixel side is enough.
GENERATORS.add("resnet_9blocks", _resnet_builder(9), size_divisor=4, tiny=Tiny(side=32))
GENERATORS.add("resnet_6blocks", _resnet_builder(6), size_divisor=4, tiny=Tiny(side=32))
