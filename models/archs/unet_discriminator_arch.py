"""Real-ESRGAN's U-Net discriminator with spectral normalisation (`--netD unet_sn`): one realness logit per pixel.

Why a U-Net: a real-world SR generator must both sharpen global structure and not invent texture in flat
regions; a per-image or per-patch verdict cannot say *where* an output looks fake, a per-pixel one can, and the
skip connections give each pixel's verdict both the local detail and the encoder's context. Spectral
normalisation (each convolution's weight divided by its largest singular value, estimated by one power
iteration per training forward) keeps this larger discriminator Lipschitz-bounded, which Real-ESRGAN needs to
train stably against its harsher degradations.

Layout (Real-ESRGAN's UNetDiscriminatorSN with skip connections; F = --ndf, 64 published):
  conv0 3x3 (in -> F, bias)                                                 x0  (N, F,  H,   W)
  conv1 4x4 s2 (F -> 2F), conv2 4x4 s2 (2F -> 4F), conv3 4x4 s2 (4F -> 8F)   x1, x2, x3 (H/2, H/4, H/8)
  bilinear x2, conv4 3x3 (8F -> 4F), + x2;  bilinear x2, conv5 (4F -> 2F), + x1;  bilinear x2, conv6 (2F -> F), + x0
  conv7, conv8 3x3 (F -> F); conv9 3x3 (F -> 1, bias)                        (N, 1, H, W)
conv1..conv8 are spectral-normalised and without bias; LeakyReLU 0.2 after every convolution but conv9.
The spectral norm is torch.nn.utils.spectral_norm (not the parametrization API), so the state_dict keys are
those of the published discriminator files (`conv1.weight_orig`, `conv1.weight_u`, `conv1.weight_v`, ...)
and those files load unchanged. `--norm` does not apply: spectral normalisation is this network's.

The three stride-2 convolutions halve H and W, and the decoder adds its upsampled maps to the encoder's, so
H and W must be multiples of 8 (`SIZE_DIVISOR`); the option check refuses crops that are not.
"""
from __future__ import annotations

from typing import Any, List

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from util.errors import OptionError

from .norms import NormFactory
from .registration import Tiny
from .registry import DISCRIMINATORS, size_divisor as generator_size_divisor, upscales

SIZE_DIVISOR = 8  # three stride-2 convolutions, whose maps the decoder adds back at each scale


class UNetDiscriminatorSN(nn.Module):
    """(N, input_nc, H, W) -> (N, 1, H, W) realness logits, H and W multiples of 8."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, skip_connection: bool = True):
        super().__init__()
        self.skip_connection = skip_connection
        f = ndf

        def sn_conv(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Module:
            padding = 1  # 3x3 s1 keeps the size; 4x4 s2 halves it exactly
            return spectral_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False))

        self.conv0 = nn.Conv2d(input_nc, f, 3, 1, 1)
        self.conv1 = sn_conv(f, f * 2, 4, 2)
        self.conv2 = sn_conv(f * 2, f * 4, 4, 2)
        self.conv3 = sn_conv(f * 4, f * 8, 4, 2)
        # Parameter-free modules, registered in the order they run (shape arithmetic over `modules()` follows it).
        self.up4 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv4 = sn_conv(f * 8, f * 4, 3, 1)
        self.up5 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv5 = sn_conv(f * 4, f * 2, 3, 1)
        self.up6 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv6 = sn_conv(f * 2, f, 3, 1)
        self.conv7 = sn_conv(f, f, 3, 1)
        self.conv8 = sn_conv(f, f, 3, 1)
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, input_nc, H, W)
        if x.shape[-2] % SIZE_DIVISOR or x.shape[-1] % SIZE_DIVISOR:
            raise ValueError(f"the U-Net discriminator takes sides that are multiples of {SIZE_DIVISOR}, got "
                             f"{tuple(x.shape[-2:])}")

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, 0.2)

        x0 = act(self.conv0(x))  # (N, F, H, W)
        x1 = act(self.conv1(x0))  # (N, 2F, H/2, W/2)
        x2 = act(self.conv2(x1))  # (N, 4F, H/4, W/4)
        x3 = act(self.conv3(x2))  # (N, 8F, H/8, W/8)
        x4 = act(self.conv4(self.up4(x3)))  # (N, 4F, H/4, W/4)
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(self.up5(x4)))  # (N, 2F, H/2, W/2)
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(self.up6(x5)))  # (N, F, H, W)
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv8(act(self.conv7(x6))))
        return self.conv9(out)  # (N, 1, H, W)


def spectral_normalised_convs(net: nn.Module) -> List[nn.Conv2d]:
    """The convolutions of `net` that spectral normalisation divides by their largest singular value."""
    return [m for m in net.modules() if isinstance(m, nn.Conv2d) and hasattr(m, "weight_orig")]


def _unet_sn(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormFactory, **_: object) -> nn.Module:
    """Real-ESRGAN's U-Net discriminator (spectral norm, skip connections); --n_layers_D and --norm unused."""
    return UNetDiscriminatorSN(input_nc, ndf)


def _validate(opt: Any) -> None:
    """The discriminator sees the training images: refuse sizes its encoder and decoder cannot match up.

    With crops (--preprocess *crop, and --model srgan's HR crops) the side is --crop_size; without, data/ rounds
    each image to the generator's size divisor, which must then be a multiple of 8 too (resnet's 4 is not;
    unet_256's 256 is). --model srgan's whole images (--preprocess none) have any size.
    """
    if not opt.isTrain:
        return
    why = f"three stride-2 convolutions whose maps its decoder adds back, so sides must be multiples of {SIZE_DIVISOR}"
    if "crop" in opt.preprocess:
        if opt.crop_size % SIZE_DIVISOR:
            raise OptionError(f"--crop_size {opt.crop_size}: --netD unet_sn has {why}; use e.g. --crop_size "
                              f"{max(SIZE_DIVISOR, opt.crop_size // SIZE_DIVISOR * SIZE_DIVISOR)}")
    elif upscales(opt.netG) or generator_size_divisor(opt.netG) % SIZE_DIVISOR:
        keeps = ("whole images of any size" if upscales(opt.netG) else
                 f"sides rounded to multiples of {generator_size_divisor(opt.netG)} (--netG {opt.netG}'s divisor)")
        raise OptionError(f"--preprocess {opt.preprocess} gives {keeps}, and --netD unet_sn has {why}; use a "
                          f"--preprocess with crops")


DISCRIMINATORS.add("unet_sn", _unet_sn, validate=_validate, tiny=Tiny())
