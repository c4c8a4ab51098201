"""Facade over the architectures, losses and schedulers: the reference's `networks` API in one import.

Architectures live in `models/archs/` (one `*_arch.py` module each, registered in `archs/registry.py`);
losses in `models/losses/`; schedulers in `models/training/`. `define_G`/`define_D` look architectures up by
name, so importing this module (which imports `models.archs`) is what makes every built-in one available.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch.nn as nn

from util.errors import OptionError

from .archs import registration
from .archs.init import INIT_TYPES, init_net, init_weights, unwrap
from .archs.norms import NORM_LAYERS, get_norm_layer
from .archs.patchgan_arch import NLayerDiscriminator, PixelDiscriminator
from .archs.registration import Tiny
from .archs.registry import DISCRIMINATORS, GENERATORS, generator_scales, size_divisor, sr_scales, upscales
from .archs.resnet_arch import ResnetBlock, ResnetGenerator
from .archs.srgan_discriminator_arch import SRGANDiscriminator
from .archs.srresnet_arch import SRResNet
from .archs.unet_arch import UnetGenerator, UnetSkipConnectionBlock
from .archs.value_range import adapt_value_range
from .losses import GAN_MODES, GANLoss, gradient_penalty
from .training.schedulers import LR_POLICIES, get_scheduler

__all__ = [
    "DISCRIMINATORS", "GENERATORS", "GAN_MODES", "INIT_TYPES", "LR_POLICIES", "NORM_LAYERS", "Tiny",
    "GANLoss", "NLayerDiscriminator", "PixelDiscriminator", "ResnetBlock", "ResnetGenerator", "SRGANDiscriminator",
    "SRResNet", "UnetGenerator", "UnetSkipConnectionBlock",
    "add_architecture_options", "define_D", "define_G", "discriminator_kwargs", "generator_kwargs",
    "generator_scales", "get_norm_layer", "get_scheduler", "gradient_penalty", "init_net", "init_weights",
    "size_divisor", "sr_scales", "unwrap", "upscales", "validate_architectures",
]


def define_G(
    input_nc: int,
    output_nc: int,
    ngf: int,
    netG: str,
    norm: str = "batch",
    use_dropout: bool = False,
    init_type: str = "normal",
    init_gain: float = 0.02,
    gpu_ids: Sequence[int] = (),
    **extra: Any,
) -> nn.Module:
    """Build generator `netG` (see `GENERATORS.names()`), initialise it and place it on `gpu_ids[0]`.

    `extra` reaches the architecture's builder (e.g. `scale`, `n_blocks` for super-resolution nets); models
    pass `**generator_kwargs(opt)`, what the chosen architecture takes from the options.
    """
    builder = GENERATORS.get(netG)
    net = builder(input_nc, output_nc, ngf, get_norm_layer(norm), use_dropout, **extra)
    # The one place where a network computing on [0, 1] (published SR weights) meets the toolkit's [-1, 1].
    net = adapt_value_range(net, GENERATORS.meta(netG).get("value_range", "toolkit"))
    return init_net(net, init_type, init_gain, gpu_ids)


def define_D(
    input_nc: int,
    ndf: int,
    netD: str,
    n_layers_D: int = 3,
    norm: str = "batch",
    init_type: str = "normal",
    init_gain: float = 0.02,
    gpu_ids: Sequence[int] = (),
    **extra: Any,
) -> nn.Module:
    """Build discriminator `netD` (see `DISCRIMINATORS.names()`), initialise it and place it on `gpu_ids[0]`.

    `extra` reaches the architecture's builder; models pass `**discriminator_kwargs(opt)`.
    """
    builder = DISCRIMINATORS.get(netD)
    net = builder(input_nc, ndf, n_layers_D, get_norm_layer(norm), **extra)
    return init_net(net, init_type, init_gain, gpu_ids)


def generator_kwargs(opt: Any) -> Dict[str, Any]:
    """The builder arguments generator `opt.netG` takes from the options (e.g. srresnet's n_blocks and scale)."""
    return registration.builder_kwargs(GENERATORS, opt.netG, opt)


def discriminator_kwargs(opt: Any) -> Dict[str, Any]:
    """The builder arguments discriminator `opt.netD` takes from the options (e.g. srgan's head)."""
    return registration.builder_kwargs(DISCRIMINATORS, opt.netD, opt)


def add_architecture_options(parser: Any, netG: str, netD: str, is_train: bool) -> None:
    """Add the own flags of generator `netG` and discriminator `netD` (options/ calls it after the model's hook)."""
    registration.add_options(GENERATORS, netG, parser, is_train)
    registration.add_options(DISCRIMINATORS, netD, parser, is_train)


def validate_architectures(opt: Any) -> None:
    """Raise OptionError for option values the chosen --netG or --netD cannot run with (e.g. a --scale the
    generator cannot make, from its registration's `scales`)."""
    can_make = generator_scales(opt.netG)
    scale = getattr(opt, "scale", None)
    if can_make and scale is not None and scale not in can_make:
        raise OptionError(f"--netG {opt.netG} cannot make --scale {scale}: it makes "
                          f"{', '.join(str(s) for s in can_make)}")
    registration.validate(GENERATORS, opt.netG, opt)
    registration.validate(DISCRIMINATORS, opt.netD, opt)
