"""The PatchGAN discriminators of pix2pix and CycleGAN (`--netD basic | n_layers | pixel`).

- `basic`: the 70x70 PatchGAN of pix2pix (n_layers=3): a 256x256 input gives a 30x30 map of logits, each
  judging one overlapping 70x70 patch.
- `n_layers`: the same family with `--n_layers_D` strided layers.
- `pixel`: a 1x1 PatchGAN judging each pixel alone.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn

from .norms import NormFactory, uses_bias
from .registration import Tiny
from .registry import DISCRIMINATORS


class NLayerDiscriminator(nn.Module):
    """(N, input_nc, H, W) -> (N, 1, H', W') patch logits; H' = H/2^n_layers - 2 for n_layers >= 1."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: NormFactory = nn.BatchNorm2d):
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        super().__init__()
        use_bias = uses_bias(norm_layer)
        kw, padw = 4, 1
        layers: List[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            # n < n_layers: stride-2 layers that halve the map; n == n_layers: one stride-1 layer.
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=2 if n < n_layers else 1, padding=padw,
                          bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=kw, stride=1, padding=padw))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """(N, input_nc, H, W) -> (N, 1, H, W): 1x1 convolutions only, so each pixel is judged on its own."""

    def __init__(self, input_nc: int, ndf: int = 64, norm_layer: NormFactory = nn.BatchNorm2d):
        super().__init__()
        use_bias = uses_bias(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=use_bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@DISCRIMINATORS.register("basic", tiny=Tiny())
def _basic(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormFactory, **_: object) -> nn.Module:
    """70x70 PatchGAN (n_layers fixed at 3)."""
    return NLayerDiscriminator(input_nc, ndf, n_layers=3, norm_layer=norm_layer)


@DISCRIMINATORS.register("n_layers", tiny=Tiny())
def _n_layers(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormFactory, **_: object) -> nn.Module:
    """PatchGAN with `--n_layers_D` strided convolutions."""
    return NLayerDiscriminator(input_nc, ndf, n_layers=n_layers_D, norm_layer=norm_layer)


@DISCRIMINATORS.register("pixel", tiny=Tiny())
def _pixel(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormFactory, **_: object) -> nn.Module:
    """1x1 PatchGAN."""
    return PixelDiscriminator(input_nc, ndf, norm_layer=norm_layer)
