"""Generator registry shared by every architecture module.

An entry is a builder `(input_nc, output_nc, ngf, norm_layer, use_dropout, **extra) -> nn.Module` with
metadata `size_divisor`: the input height and width must be multiples of it (the product of the
network's downsampling strides). The data pipeline and option checks read it from here, so a new
architecture states its constraint once.
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

