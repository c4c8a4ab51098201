"""SRResNet, the generator of SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution").

(N, input_nc, h, w) -> (N, output_nc, h * scale, w * scale). Layout, with the paper's names:
  head      9x9 conv + PReLU
  body      `n_blocks` residual blocks (3x3 conv, norm, PReLU, 3x3 conv, norm; identity skip),
            then 3x3 conv + norm, added to the head's output (the long skip)
  upsample  per factor 2: 3x3 conv to 4x channels, PixelShuffle(2), PReLU (x3: 9x channels, PixelShuffle(3))
  tail      9x9 conv, no activation
All convolutions keep the spatial size (zero padding), so any input size works and the network is
translation-equivariant away from the borders: that is what makes tiled inference exact (models/inference/tiles.py).
The output has no tanh: a linear output trains faster under pixel losses and is clamped to [-1, 1] when
saved. Images are in the toolkit's range [-1, 1] on both sides.
"""
from __future__ import annotations

import argparse
from typing import Any, List, Mapping, Tuple

import torch
import torch.nn as nn

from util.errors import OptionError

from .norms import NormFactory, uses_bias
from .registration import Tiny, context_radius, option_group
from .registry import GENERATORS

SCALES = (2, 3, 4, 8)


class SRResidualBlock(nn.Module):
    """conv-norm-PReLU-conv-norm with an identity skip; (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int, norm_layer: NormFactory, use_bias: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=use_bias),
            norm_layer(channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=use_bias),
            norm_layer(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def upsample_layers(channels: int, scale: int) -> List[nn.Module]:
    """Sub-pixel convolution stages for `scale` (2, 4, 8: repeated x2 stages; 3: one x3 stage)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale}")
    factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
    layers: List[nn.Module] = []
    for factor in factors:  # (N, C, H, W) -> (N, C * f^2, H, W) -> (N, C, H * f, W * f)
        layers += [nn.Conv2d(channels, channels * factor**2, 3, padding=1), nn.PixelShuffle(factor), nn.PReLU()]
    return layers


class SRResNet(nn.Module):
    """The SRGAN generator; `norm_layer` nn.Identity gives the BN-free variant used for PSNR-oriented training."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm_layer: NormFactory = nn.BatchNorm2d,
        n_blocks: int = 16,
        scale: int = 4,
    ):
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        super().__init__()
        use_bias = uses_bias(norm_layer)
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(input_nc, ngf, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(
            *[SRResidualBlock(ngf, norm_layer, use_bias) for _ in range(n_blocks)],
            nn.Conv2d(ngf, ngf, 3, padding=1, bias=use_bias),
            norm_layer(ngf),
        )
        self.upsample = nn.Sequential(*upsample_layers(ngf, scale))
        self.tail = nn.Conv2d(ngf, output_nc, 9, padding=4)
        self.head_context = head_context({"scale": scale})  # LR pixels of context `hr_head` needs

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, input_nc, h, w)
        return self.hr_head(self.trunk(x), x)  # (N, output_nc, h * scale, w * scale)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Everything at the LR size before the first upsampling conv (split tiling: models/inference/split_tiles.py):
        (N, input_nc, h, w) -> (N, ngf, h, w)."""
        features = self.head(x)  # (N, ngf, h, w)
        return features + self.body(features)  # the long skip

    def hr_head(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The upsampling stages and the tail, where the memory is (4x the channels, then HR-size maps):
        (N, ngf, h, w) -> (N, output_nc, h * scale, w * scale). `x` is unused (no input skip). Not `head`: that
        name is the 9x9 input conv's, fixed by the state_dict keys."""
        return self.tail(self.upsample(features))


def _srresnet(
    input_nc: int, output_nc: int, ngf: int, norm_layer: NormFactory, use_dropout: bool,
    n_blocks: int = 16, scale: int = 4, **_: object,
) -> nn.Module:
    """SRResNet with `n_blocks` residual blocks, upscaling by `scale` (2, 3, 4 or 8)."""
    return SRResNet(input_nc, output_nc, ngf, norm_layer, n_blocks=n_blocks, scale=scale)


def _add_options(parser: argparse.ArgumentParser, is_train: bool) -> None:
    g = option_group(parser, "super-resolution")
    g.add_argument("--n_blocks", type=int, default=16, help="residual blocks of the SRResNet generator")


def _validate(opt: Any) -> None:
    if opt.n_blocks < 0:
        raise OptionError(f"--n_blocks must be >= 0, got {opt.n_blocks}")


def _head_stages(scale: int) -> List[Tuple[int, int]]:
    """The (radius, factor) stages of `hr_head`: the first upsampling conv at the LR size, one 3x3 conv per
    further x2 stage, the 9x9 tail at the HR size."""
    factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
    return [(1, factor) for factor in factors] + [(4, 1)]


def head_context(kwargs: Mapping[str, Any]) -> int:
    """Receptive-field radius of `hr_head` in LR pixels (x2, x3, x4, x8: 3)."""
    return context_radius(_head_stages(kwargs.get("scale", 4)))


def _context(kwargs: Mapping[str, Any]) -> int:
    """Receptive-field radius in LR pixels: the 9x9 head (4), two 3x3 convs a block and the body's last (1 each)
    and the first upsampling conv at the LR size; one 3x3 conv per further x2 stage; the 9x9 tail at the HR
    size. 16 blocks x4: 40."""
    trunk = 4 + 2 * kwargs.get("n_blocks", 16) + 1  # the 9x9 head, the blocks, the body's last conv
    return context_radius([(trunk, 1), *_head_stages(kwargs.get("scale", 4))])


# `scale` is the super-resolution model's --scale: the factor the data pipeline degrades by, too.
# Tiles of 768 LR pixels for split tiles (the head in tiles of 96): a 1920x1080 photo x4 peaked at 1558 MiB in fp32
# (plain tiles of 192: 1696 MiB) and computes 1.15 times one pass's convolutions instead of 1.88; the onnxruntime
# backend runs plain tiles, of 192 as before (srresnet: 1791 MiB without onnxruntime's memory arena, 3049 with it;
# docs/benchmarks.md, scripts/tile_memory.py).
GENERATORS.add("srresnet", _srresnet, size_divisor=1, upscale=True, scales=SCALES, context=_context,
               head_context=head_context, option_defaults={"tile": 768}, plain_tile=192, add_options=_add_options,
               from_options={"n_blocks": "n_blocks", "scale": "scale"}, validate=_validate,
               tiny=Tiny(side=12, options={"n_blocks": 1, "scale": 4}))
