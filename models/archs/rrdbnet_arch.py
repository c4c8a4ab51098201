"""RRDBNet: the generator of ESRGAN (Wang et al. 2018) and Real-ESRGAN, in the publishers' exact layout.

The module names (`conv_first`, `body.N.rdbK.convJ`, `conv_body`, `conv_up1`, `conv_up2`, `conv_hr`,
`conv_last`) are those of BasicSR's RRDBNet, which the published weights use (RealESRGAN_x4plus.pth and
friends), so those files load strictly, unchanged. Like them, the network computes on RGB in [0, 1]; `define_G`
adapts it to the toolkit's [-1, 1] (models/archs/value_range.py).

Structure: conv_first -> `n_blocks` Residual-in-Residual Dense Blocks -> conv_body, added to conv_first's
features (the long skip) -> two nearest x2 upsamplings each followed by a conv and LeakyReLU(0.2) -> conv_hr,
LeakyReLU, conv_last. Every block's residual is scaled by 0.2 (x5 * 0.2 + x inside a dense block, out * 0.2 + x
around three of them), which is what lets 23 blocks train without normalisation. The network always upsamples
by 4; scale 2 and 1 pixel-unshuffle the input first (by 2 and 4), so conv_first takes 4x or 16x the channels.
"""
from __future__ import annotations

import argparse
from fractions import Fraction
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.errors import OptionError

from .init import ARCHITECTURE_INIT, scaled_kaiming_
from .norms import NormFactory
from .registration import Tiny, context_radius, option_group
from .registry import GENERATORS

SCALES = (1, 2, 4)


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier output (dense connections)."""

    def __init__(self, ngf: int = 64, growth_channels: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ngf, growth_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(ngf + growth_channels, growth_channels, 3, 1, 1)
        self.conv3 = nn.Conv2d(ngf + 2 * growth_channels, growth_channels, 3, 1, 1)
        self.conv4 = nn.Conv2d(ngf + 3 * growth_channels, growth_channels, 3, 1, 1)
        self.conv5 = nn.Conv2d(ngf + 4 * growth_channels, ngf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        # The publishers' initialisation: each dense block starts close to the identity.
        scaled_kaiming_([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, ngf, h, w)
        x1 = self.lrelu(self.conv1(x))  # (N, growth_channels, h, w)
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))  # (N, ngf, h, w)
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual in Residual Dense Block: three dense blocks inside a scaled residual."""

    def __init__(self, ngf: int, growth_channels: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(ngf, growth_channels)
        self.rdb2 = ResidualDenseBlock(ngf, growth_channels)
        self.rdb3 = ResidualDenseBlock(ngf, growth_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, ngf, h, w)
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator: `scale` 4, or 2 and 1 through pixel-unshuffling of the input."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 23,
                 growth_channels: int = 32, scale: int = 4) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale}")
        self.unshuffle = 4 // scale  # the network itself always upsamples by 4
        self.conv_first = nn.Conv2d(input_nc * self.unshuffle ** 2, ngf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(ngf, growth_channels) for _ in range(n_blocks)])
        self.conv_body = nn.Conv2d(ngf, ngf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(ngf, ngf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(ngf, ngf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(ngf, ngf, 3, 1, 1)
        self.conv_last = nn.Conv2d(ngf, output_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        self.head_context = head_context({"scale": scale})  # LR pixels of context `hr_head` needs

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, input_nc, h, w)
        return self.hr_head(self.trunk(x), x)  # (N, output_nc, h * scale, w * scale)

    @property
    def splits(self) -> bool:
        """Whether split tiling may cut `trunk`'s output on LR pixels: not when the input is pixel-unshuffled
        (scales 2 and 1), whose features sit on a coarser grid than the input."""
        return self.unshuffle == 1

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Everything at the LR size before the first upsampling (split tiling: models/inference/split_tiles.py):
        (N, input_nc, h, w) -> (N, ngf, ceil(h / u), ceil(w / u)), u the pixel-unshuffle (1 at x4)."""
        h, w = x.shape[-2:]
        u = self.unshuffle
        if u > 1:
            if h % u or w % u:
                # Any size: pad to a multiple of u by reflection (as Real-ESRGAN's inference does; an input
                # smaller than u, which reflection cannot pad, repeats its edge), and crop the output back.
                mode = "reflect" if min(h, w) >= u else "replicate"
                x = F.pad(x, (0, -w % u, 0, -h % u), mode=mode)
            x = F.pixel_unshuffle(x, u)  # (N, input_nc * u^2, ceil(h / u), ceil(w / u))
        feat = self.conv_first(x)  # (N, ngf, h', w')
        return feat + self.conv_body(self.body(feat))

    def hr_head(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The two upsamplings, conv_hr and conv_last, where the memory is (64 channels at 2x and 4x the size):
        (N, ngf, h', w') -> (N, output_nc, h * scale, w * scale); `x` (the trunk's input) gives the size to crop
        an unshuffled input's padding back to."""
        h, w = x.shape[-2:]
        u = self.unshuffle
        feat = self.lrelu(self.conv_up1(F.interpolate(features, scale_factor=2, mode="nearest")))  # (N, ngf, 2h', 2w')
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))  # (N, ngf, 4h', 4w')
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))  # (N, output_nc, 4 h', 4 w')
        return out[..., : h * 4 // u, : w * 4 // u] if u > 1 else out  # (N, output_nc, h * scale, w * scale)


def _rrdbnet(input_nc: int, output_nc: int, ngf: int, norm_layer: NormFactory, use_dropout: bool,
             n_blocks: int = 23, growth_channels: int = 32, scale: int = 4, **_: object) -> nn.Module:
    """RRDBNet with `ngf` features, `n_blocks` RRDBs and `growth_channels` per dense layer (no normalisation)."""
    return RRDBNet(input_nc, output_nc, ngf, n_blocks, growth_channels, scale)


def _add_options(parser: argparse.ArgumentParser, is_train: bool) -> None:
    g = option_group(parser, "super-resolution")
    g.add_argument("--n_blocks", type=int, default=23, help="RRDB blocks of the RRDBNet generator (23 in ESRGAN)")
    g.add_argument("--growth_channels", type=int, default=32,
                   help="channels each dense layer of an RRDB adds (32 in ESRGAN)")


HEAD_STAGES = [(0, 2), (1, 2), (3, 1)]  # hr_head: nearest x2; conv_up1, nearest x2; conv_up2, conv_hr, conv_last


def head_context(kwargs: Mapping[str, Any]) -> int:
    """Receptive-field radius of `hr_head` in LR pixels (of the unshuffled grid at scales 2 and 1): 2."""
    return context_radius(HEAD_STAGES)


def _context(kwargs: Mapping[str, Any]) -> int:
    """Receptive-field radius in input pixels: conv_first, five chained 3x3 convs in each of an RRDB's three
    dense blocks and conv_body at the LR size, conv_up1 after the first x2, conv_up2, conv_hr and conv_last
    after the second, all times the pixel-unshuffle of scales 2 and 1. 23 blocks x4: 349 LR pixels."""
    unshuffle = 4 // kwargs.get("scale", 4)
    body = 1 + 15 * kwargs.get("n_blocks", 23) + 1
    return context_radius([(0, Fraction(1, unshuffle)), (body, 1), *HEAD_STAGES])


def _validate(opt: Any) -> None:
    if opt.n_blocks < 1 or opt.growth_channels < 1:
        raise OptionError(f"--n_blocks and --growth_channels must be >= 1, got {opt.n_blocks} and "
                          f"{opt.growth_channels}")


# Trained from scratch with the constructor's initialisation (the publishers': PyTorch's layer defaults, the
# dense blocks' convolutions scaled kaiming): in 400 steps of the pixel stage on T91 (a 2-block, 32-feature net)
# it reached 20.6 dB where --init_type normal's N(0, 0.02) reached 13.8 dB.
# Tiles of 512 LR pixels for split tiles (the head in tiles of 96): measured on the first row of tiles of a
# 1920x1080 photo x4 with 1 block (without gradients the blocks run one at a time, so 23 hold the same
# activations), 1459 MiB in fp32 with the rest of the output, about 1.6 GiB estimated with 23 blocks' weights and
# an interior tile's full window; 640 came to about 2.0 GiB by the same estimate, too close to 2 GiB, 768 past it.
# The tiles compute 1.28 times one pass's convolutions instead of 1.88 at plain 192, which the onnxruntime
# backend keeps (docs/benchmarks.md, scripts/tile_memory.py). At scales 2 and 1 (pixel-unshuffled
# input) tiles are plain, of 192 (`split_scales`).
# Inference stays contiguous (`nhwc_inference` False): in bf16 with NHWC tensors the 23 blocks' 345 convolutions
# took 4066 MiB of peak RSS for a 480x320 photo x4, against 1181 MiB contiguous and 1132 MiB in fp32 (4 blocks in
# NHWC bf16: 1025 MiB): memory that grows with the number of distinct convolutions, not with the image
# (scripts/tile_memory.py --netG rrdbnet --size 480 320 --amp bf16 [--channels_last off]; docs/benchmarks.md).
GENERATORS.add("rrdbnet", _rrdbnet, size_divisor=1, upscale=True, scales=SCALES, value_range="unit",
               publisher_layout="basicsr", nhwc_inference=False,
               context=_context, head_context=head_context,
               option_defaults={"init_type": ARCHITECTURE_INIT, "tile": 512}, plain_tile=192, split_scales=(4,),
               add_options=_add_options,
               from_options={"n_blocks": "n_blocks", "growth_channels": "growth_channels", "scale": "scale"},
               validate=_validate, tiny=Tiny(side=8, options={"n_blocks": 1, "growth_channels": 4, "scale": 4}))
