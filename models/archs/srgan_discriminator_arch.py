"""The SRGAN discriminator (Ledig et al. 2017): a VGG-style classifier of whole HR images.

Eight 3x3 conv blocks, LeakyReLU 0.2, normalisation in all but the first; the channels go ndf, ndf, 2ndf,
2ndf, 4ndf, 4ndf, 8ndf, 8ndf (64 -> 512 with the default --ndf 64) and every second block has stride 2, so an
(N, C, H, W) input becomes (N, 8ndf, H/16, W/16). Two heads (`--netD_head`):
  dense  the paper's: flatten, Linear(8ndf * (H/16) * (W/16), 1024), LeakyReLU 0.2, Linear(1024, 1);
         it fixes the input size to the training crop (`input_size`).
  conv   size-agnostic: global average pool, 1x1 conv to 16ndf, LeakyReLU 0.2, 1x1 conv to 1; any input
         size, the same role as the dense head with far fewer parameters.
Output: (N, 1) logits (no sigmoid: GANLoss works on logits).
"""
from __future__ import annotations

import argparse
from typing import Any, List

import torch
import torch.nn as nn

from util.errors import OptionError

from .norms import NormFactory, uses_bias
from .registration import Tiny, option_group
from .registry import DISCRIMINATORS

HEADS = ("dense", "conv")
DOWNSAMPLING = 16  # four stride-2 blocks


class SRGANDiscriminator(nn.Module):
    def __init__(
        self,
        input_nc: int = 3,
        ndf: int = 64,
        norm_layer: NormFactory = nn.BatchNorm2d,
        head: str = "dense",
        input_size: int = 96,
    ):
        super().__init__()
        if head not in HEADS:
            raise KeyError(f"unknown discriminator head {head!r}; valid: {', '.join(HEADS)}")
        if head == "dense" and (input_size < DOWNSAMPLING or input_size % DOWNSAMPLING):
            raise ValueError(f"the dense head needs an input size that is a multiple of {DOWNSAMPLING}, "
                             f"got {input_size}")
        use_bias = uses_bias(norm_layer)
        widths = [ndf, ndf, ndf * 2, ndf * 2, ndf * 4, ndf * 4, ndf * 8, ndf * 8]
        layers: List[nn.Module] = [nn.Conv2d(input_nc, widths[0], 3, padding=1), nn.LeakyReLU(0.2, True)]
        for i in range(1, len(widths)):
            stride = 2 if i % 2 == 1 else 1
            layers += [nn.Conv2d(widths[i - 1], widths[i], 3, stride=stride, padding=1, bias=use_bias),
                       norm_layer(widths[i]), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.head_type = head
        if head == "dense":
            side = input_size // DOWNSAMPLING
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * side * side, 1024),
                                      nn.LeakyReLU(0.2, True), nn.Linear(1024, 1))
        else:
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(widths[-1], ndf * 16, 1),
                                      nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * 16, 1, 1), nn.Flatten())
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, input_nc, H, W)
        if self.head_type == "dense" and x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"the dense-head SRGAN discriminator takes {self.input_size}x{self.input_size} "
                             f"inputs (the training crop), got {tuple(x.shape[-2:])}; use --netD_head conv for "
                             f"other sizes")
        return self.head(self.features(x))  # (N, 1)


def _srgan(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormFactory, head: str = "dense",
           input_size: int = 96, **_: object) -> nn.Module:
    """SRGAN's VGG-style discriminator with a dense (`input_size` fixed) or convolutional head."""
    return SRGANDiscriminator(input_nc, ndf, norm_layer, head=head, input_size=input_size)


def _add_options(parser: argparse.ArgumentParser, is_train: bool) -> None:
    if is_train:  # the discriminator is not built at test time
        g = option_group(parser, "super-resolution")
        g.add_argument("--netD_head", type=str, default="dense", choices=HEADS,
                       help="dense: the paper's fully connected head (input fixed to --crop_size); conv: a "
                            "size-agnostic convolutional head")


def _validate(opt: Any) -> None:
    """The dense head takes one input size, the training crop: it must exist and be a multiple of 16."""
    if not opt.isTrain:
        return
    if opt.preprocess == "none" and opt.netD_head != "conv":
        raise OptionError("--preprocess none gives images of any size: the dense discriminator head needs fixed "
                          "crops, use --netD_head conv")
    if opt.netD_head == "dense" and opt.crop_size % DOWNSAMPLING:
        raise OptionError(f"--crop_size {opt.crop_size}: the dense discriminator head needs a multiple of "
                          f"{DOWNSAMPLING} (e.g. 96), or use --netD_head conv")


DISCRIMINATORS.add("srgan", _srgan, add_options=_add_options, validate=_validate,
                   from_options={"head": "netD_head", "input_size": "crop_size"},
                   tiny=Tiny(options={"netD_head": "conv"}))
