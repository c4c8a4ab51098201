"""The two architecture registries, `GENERATORS` (--netG) and `DISCRIMINATORS` (--netD), and what they answer.

A generator entry is a builder `(input_nc, output_nc, ngf, norm_layer, use_dropout, **extra) -> nn.Module`, a
discriminator entry `(input_nc, ndf, n_layers_D, norm_layer, **extra) -> nn.Module`. Each `*_arch.py` module
registers its own; the registration carries what the rest of the toolkit needs to know about it
(models/archs/registration.py lists the keys): e.g. `size_divisor`, which the option checks and, through
`opt.size_divisor`, the data pipeline read, so a new architecture states its constraints once, in its module.
"""
from __future__ import annotations

from typing import Callable, Tuple

import torch.nn as nn

from util.registry import Registry

GeneratorBuilder = Callable[..., nn.Module]
DiscriminatorBuilder = Callable[..., nn.Module]

GENERATORS: Registry[GeneratorBuilder] = Registry("generator (--netG)")
DISCRIMINATORS: Registry[DiscriminatorBuilder] = Registry("discriminator (--netD)")


def size_divisor(netG: str) -> int:
    """Height and width of the generator's input must be multiples of this number."""
    return int(GENERATORS.meta(netG).get("size_divisor", 1))


def upscales(netG: str) -> bool:
    """Whether the generator's output is larger than its input (super-resolution)."""
    return bool(GENERATORS.meta(netG).get("upscale", False))


def generator_scales(netG: str) -> Tuple[int, ...]:
    """The upscaling factors (--scale) the generator can make; empty when it does not upscale or does not say."""
    return tuple(GENERATORS.meta(netG).get("scales", ()))


def sr_scales() -> Tuple[int, ...]:
    """Every --scale some registered generator can make (the choices of --model srgan's --scale)."""
    return tuple(sorted({scale for name in GENERATORS.names() for scale in generator_scales(name)}))
