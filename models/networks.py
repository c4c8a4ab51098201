"""Facade over the architectures, losses and schedulers: the reference's `networks` API in one import.

Architectures live in modules of their own (`resnet.py`, `unet.py`, `discriminators.py`, ...) and
register themselves; `define_G`/`define_D` look them up by name. Importing this module is what makes
every built-in architecture available: a new one is its own module plus one import line below.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch.nn as nn

from util.errors import OptionError

from . import msrresnet as _msrresnet  # noqa: F401  (registers msrresnet)
from . import resnet as _resnet  # noqa: F401  (registers resnet_9blocks, resnet_6blocks)
from . import rrdbnet as _rrdbnet  # noqa: F401  (registers rrdbnet)
from . import srgan_discriminator as _srgan_discriminator  # noqa: F401  (registers srgan)
from . import srresnet as _srresnet  # noqa: F401  (registers srresnet)
from . import srvgg as _srvgg  # noqa: F401  (registers srvgg)
from . import unet as _unet  # noqa: F401  (registers unet_256, unet_128)
from . import unet_discriminator as _unet_discriminator  # noqa: F401  (registers unet_sn)
from . import architecture
from .architecture import Tiny
from .discriminators import DISCRIMINATORS, NLayerDiscriminator, PixelDiscriminator
from .generators import GENERATORS, generator_scales, size_divisor, sr_scales, upscales
from .init import INIT_TYPES, init_net, init_weights, unwrap
from .losses import GAN_MODES, GANLoss, gradient_penalty
from .norms import NORM_LAYERS, get_norm_layer
from .resnet import ResnetBlock, ResnetGenerator
from .srgan_discriminator import SRGANDiscriminator
from .srresnet import SRResNet
from .schedulers import LR_POLICIES, get_scheduler
from .unet import UnetGenerator, UnetSkipConnectionBlock
from .value_range import adapt_value_range

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
    return architecture.builder_kwargs(GENERATORS, opt.netG, opt)


def discriminator_kwargs(opt: Any) -> Dict[str, Any]:
    """The builder arguments discriminator `opt.netD` takes from the options (e.g. srgan's head)."""
    return architecture.builder_kwargs(DISCRIMINATORS, opt.netD, opt)


def add_architecture_options(parser: Any, netG: str, netD: str, is_train: bool) -> None:
    """Add the own flags of generator `netG` and discriminator `netD` (options/ calls it after the model's hook)."""
    architecture.add_options(GENERATORS, netG, parser, is_train)
    architecture.add_options(DISCRIMINATORS, netD, parser, is_train)


def validate_architectures(opt: Any) -> None:
    """Raise OptionError for option values the chosen --netG or --netD cannot run with (e.g. a --scale the
    generator cannot make, from its registration's `scales`)."""
    can_make = generator_scales(opt.netG)
    scale = getattr(opt, "scale", None)
    if can_make and scale is not None and scale not in can_make:
        raise OptionError(f"--netG {opt.netG} cannot make --scale {scale}: it makes "
                          f"{', '.join(str(s) for s in can_make)}")
    architecture.validate(GENERATORS, opt.netG, opt)
    architecture.validate(DISCRIMINATORS, opt.netD, opt)
