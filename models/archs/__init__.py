"""Architectures: every generator (`--netG`) and discriminator (`--netD`), one `*_arch.py` module each.

An architecture module holds its classes and its registration in `GENERATORS` or `DISCRIMINATORS`
(`registry.py`); the registration carries its own flags, the options its builder takes, its checks and its tiny
test size (`registration.py` lists the keys). Importing this package imports every module below, which
registers them: a new architecture is its module plus one name on the import line. `norms.py`, `init.py` and
`value_range.py` are the machinery the builders share; `models/networks.py` is the facade the models call.
Architectures never import losses, training machinery or model classes (.importlinter).
"""
from . import (msrresnet_arch, patchgan_arch, resnet_arch, rrdbnet_arch, srgan_discriminator_arch,  # noqa: F401
               srresnet_arch, srvgg_arch, unet_arch, unet_discriminator_arch)
from .registration import Tiny
from .registry import DISCRIMINATORS, GENERATORS, generator_scales, size_divisor, sr_scales, upscales

__all__ = ["DISCRIMINATORS", "GENERATORS", "Tiny", "generator_scales", "size_divisor", "sr_scales", "upscales"]
