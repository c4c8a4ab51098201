"""MSRResNet: BasicSR's modified SRResNet, in its exact published layout (001_MSRResNet_x4_...pth).

SRResNet without batch normalisation (which hurts SR and breaks train/test consistency): conv_first +
LeakyReLU(0.1), `n_blocks` residual blocks x + conv2(ReLU(conv1(x))), sub-pixel upsampling (x4 as two
conv-PixelShuffle(2)-LeakyReLU stages, x2/x3 as one), conv_hr + LeakyReLU, conv_last, and the input upsampled
bilinearly added to the output: the network learns the residual over an interpolation, which is why it
starts at about interpolation quality and trains quickly. Module names are the published ones; like the
published weights the network computes on RGB in [0, 1], and `define_G` adapts it to the toolkit's [-1, 1]
(models/archs/value_range.py).
"""
from __future__ import annotations

import argparse
from typing import Any, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.errors import OptionError

from .init import ARCHITECTURE_INIT, scaled_kaiming_
from .norms import NormFactory
from .registration import Tiny, context_radius, option_group
from .registry import GENERATORS

SCALES = (2, 3, 4)


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """`x` (N, C, H, W) with `channels` channels, for an input skip added to a network's output.

    The publishers' networks add the interpolated input to an output with as many channels; here input_nc and
    output_nc may differ (greyscale in, RGB out, or the reverse): one channel broadcasts, several are averaged.
    """
    if x.shape[1] == channels or x.shape[1] == 1:
        return x  # equal, or (N, 1, H, W), which broadcasts
    return x.mean(dim=1, keepdim=True)  # (N, 1, H, W)


class ResidualBlockNoBN(nn.Module):
    """x + conv2(ReLU(conv1(x))): BasicSR's residual block, keys conv1/conv2."""

    def __init__(self, ngf: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ngf, ngf, 3, 1, 1)
        self.conv2 = nn.Conv2d(ngf, ngf, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        scaled_kaiming_([self.conv1, self.conv2], 0.1)  # the publishers' initialisation: close to the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, ngf, h, w)
        return x + self.conv2(self.relu(self.conv1(x)))


class MSRResNet(nn.Module):
    """BasicSR's MSRResNet: (N, input_nc, h, w) -> (N, output_nc, h * scale, w * scale), scale 2, 3 or 4."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 16,
                 scale: int = 4) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale}")
        self.scale = scale
        self.conv_first = nn.Conv2d(input_nc, ngf, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(ngf) for _ in range(n_blocks)])
        shuffle = 2 if scale == 4 else scale
        self.upconv1 = nn.Conv2d(ngf, ngf * shuffle * shuffle, 3, 1, 1)
        # x4 only: a second x2 stage (absent from the x2 and x3 layouts, so from their state_dicts too).
        self.upconv2: Optional[nn.Conv2d] = nn.Conv2d(ngf, ngf * 4, 3, 1, 1) if scale == 4 else None
        self.pixel_shuffle = nn.PixelShuffle(shuffle)
        self.conv_hr = nn.Conv2d(ngf, ngf, 3, 1, 1)
        self.conv_last = nn.Conv2d(ngf, output_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        self.head_context = head_context({"scale": scale})  # LR pixels of context `hr_head` needs
        # The publishers' initialisation (BasicSR scales every convolution): the output starts close to the
        # interpolated input.
        scaled_kaiming_([m for m in (self.conv_first, self.upconv1, self.upconv2, self.conv_hr, self.conv_last)
                         if m is not None], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, input_nc, h, w)
        return self.hr_head(self.trunk(x), x)  # (N, output_nc, h * scale, w * scale)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Everything at the LR size before upconv1 (split tiling: models/inference/split_tiles.py):
        (N, input_nc, h, w) -> (N, ngf, h, w)."""
        return self.body(self.lrelu(self.conv_first(x)))  # no long skip, as published

    def hr_head(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The upsampling stages, conv_hr and conv_last, where the memory is, plus the bilinear input skip from
        `x` (the trunk's input): (N, ngf, h, w) -> (N, output_nc, h * scale, w * scale)."""
        out = self.lrelu(self.pixel_shuffle(self.upconv1(features)))  # (N, ngf, 2h, 2w), or 3h for x3
        if self.upconv2 is not None:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))  # (N, ngf, 4h, 4w)
        out = self.conv_last(self.lrelu(self.conv_hr(out)))  # (N, output_nc, h * scale, w * scale)
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out + match_channels(base, out.shape[1])


def _msrresnet(input_nc: int, output_nc: int, ngf: int, norm_layer: NormFactory, use_dropout: bool,
               n_blocks: int = 16, scale: int = 4, **_: object) -> nn.Module:
    """MSRResNet with `ngf` features and `n_blocks` residual blocks (no normalisation)."""
    return MSRResNet(input_nc, output_nc, ngf, n_blocks, scale)


def _add_options(parser: argparse.ArgumentParser, is_train: bool) -> None:
    g = option_group(parser, "super-resolution")
    g.add_argument("--n_blocks", type=int, default=16, help="residual blocks of the MSRResNet generator")


def _head_stages(scale: int) -> List[Tuple[int, int]]:
    """The (radius, factor) stages of `hr_head`: upconv1 at the LR size, upconv2 after a x2 (x4 only), conv_hr
    and conv_last at the HR size."""
    return [(1, 2), (1, 2), (2, 1)] if scale == 4 else [(1, scale), (2, 1)]


def head_context(kwargs: Mapping[str, Any]) -> int:
    """Receptive-field radius of `hr_head` in LR pixels (2 at every scale; the bilinear skip needs 1)."""
    return max(context_radius(_head_stages(kwargs.get("scale", 4))), 1)


def _context(kwargs: Mapping[str, Any]) -> int:
    """Receptive-field radius in LR pixels: conv_first, two 3x3 convs a block and upconv1 at the LR size,
    upconv2 after a x2 (x4 only), conv_hr and conv_last at the HR size; the bilinear input skip needs 1.
    16 blocks x4: 35."""
    trunk = 1 + 2 * kwargs.get("n_blocks", 16)
    return max(context_radius([(trunk, 1), *_head_stages(kwargs.get("scale", 4))]), 1)


def _validate(opt: Any) -> None:
    if opt.n_blocks < 0:
        raise OptionError(f"--n_blocks must be >= 0, got {opt.n_blocks}")


# Tiles of 768 LR pixels for split tiles (the head in tiles of 96): a 1920x1080 photo x4 peaked at 1563 MiB in fp32
# (plain tiles of 192: 1623 MiB) and computes 1.11 times one pass's convolutions instead of 1.76; the onnxruntime
# backend runs plain tiles, of 192 as before (srresnet: 1791 MiB without onnxruntime's memory arena, 3049 with it;
# docs/benchmarks.md, scripts/tile_memory.py).
GENERATORS.add("msrresnet", _msrresnet, size_divisor=1, upscale=True, scales=SCALES, value_range="unit",
               publisher_layout="basicsr",
               context=_context, head_context=head_context,
               option_defaults={"init_type": ARCHITECTURE_INIT, "tile": 768}, plain_tile=192, add_options=_add_options,
               from_options={"n_blocks": "n_blocks", "scale": "scale"}, validate=_validate,
               tiny=Tiny(side=8, options={"n_blocks": 1, "scale": 4}))
