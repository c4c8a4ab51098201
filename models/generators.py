"""Generator registry shared by every architecture module.

An entry is a builder `(input_nc, output_nc, ngf, norm_layer, use_dropout, **extra) -> nn.Module` whose
registration carries what the rest of the toolkit needs to know about it (models/architecture.py lists the
keys): e.g. `size_divisor`, which the option checks and, through `opt.size_divisor`, the data pipeline read,
so a new architecture states its constraints once, in its own module.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

from util.registry import Registry

GeneratorBuilder = Callable[..., nn.Module]

GENERATORS: Registry[GeneratorBuilder] = Registry("generator (--netG)")


def size_divisor(netG: str) -> int:
    """Height and width of the generator's input must be multiples of this number."""
    return int(GENERATORS.meta(netG).get("size_divisor", 1))


def upscales(netG: str) -> bool:
    """Whether the generator's output is larger than its input (super-resolution)."""
    return bool(GENERATORS.meta(netG).get("upscale", False))
