"""The reusable inference object: a super-resolution generator ready to upscale images, and what makes one.

- `interpolate_state_dicts`: Real-ESRGAN's network interpolation (its `-dn`, "deep network interpolation"):
  two trainings of one architecture mixed parameter by parameter, w = weight * a + (1 - weight) * b. For
  realesr-general-x4v3 and its denoising twin realesr-general-wdn-x4v3 it sets how much noise is removed.
- `output_size`: the size an `--outscale` gives, round(w * s) x round(h * s) (Python's round).
- `Upscaler`: a loaded generator, its native scale, precision and tiles; calling it on an SRImage gives the
  upscaled SRImage (models/inference/resolve.super_resolve: grey, alpha and 16 bit kept, memory bounded by
  tiles). test.py (through SRGANModel), scripts/upscale.py and every other front call it.
- `build_generator`: the generator of a saved run, from its options, with a state_dict loaded strictly.
"""
from __future__ import annotations

import contextlib
import logging
import math
from collections import OrderedDict
from typing import Any, ContextManager, Dict, Mapping, Optional

import numpy as np
import torch
import torch.nn as nn

from util.images import SRImage
from util.images.pixels import to_uint

from .. import networks
from ..archs.init import ARCHITECTURE_INIT
from ..factory import network_options
from ..training.acceleration import Acceleration
from ..training.checkpoints import check_files_fit, load_into
from .resolve import ALPHA_UPSAMPLERS, Size, super_resolve
from .split_tiles import HEAD_TILE, splittable

logger = logging.getLogger(__name__)

__all__ = ["Upscaler", "build_generator", "interpolate_state_dicts", "output_size"]


def interpolate_state_dicts(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                            weight: float) -> "OrderedDict[str, torch.Tensor]":
    """`weight * a + (1 - weight) * b` for every tensor: two trainings of one network, mixed (Real-ESRGAN's dni).

    Both must hold the same keys with the same shapes (one architecture); floating-point tensors are mixed in
    float32 and returned in `a`'s dtype, others (BatchNorm's counters) are taken from `a`. Raises ValueError
    naming the first key that differs, and for a weight outside [0, 1].
    """
    if not 0.0 <= weight <= 1.0 or math.isnan(weight):
        raise ValueError(f"the interpolation weight must be in [0, 1], got {weight}")
    if list(a) != list(b):
        missing = next((k for k in a if k not in b), None) or next(k for k in b if k not in a)
        raise ValueError(f"the two networks differ: {missing!r} is in one state_dict only")
    mixed: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, ta in a.items():
        tb = b[key]
        if ta.shape != tb.shape:
            raise ValueError(f"the two networks differ: {key!r} is {tuple(ta.shape)} in one and {tuple(tb.shape)} "
                             f"in the other")
        if ta.is_floating_point():
            mixed[key] = (ta.float() * weight + tb.float() * (1.0 - weight)).to(ta.dtype)
        else:
            mixed[key] = ta.clone()
    return mixed


# The most pixels a result may have unless the caller says otherwise: 16384 x 16384 (WebP's largest side; an 8-bit
# RGB result of this size is 805 MB of levels in memory, on top of the tiles' work).
MAX_OUTPUT_PIXELS = 16384 * 16384


def output_size(size: Size, scale: int, outscale: Optional[float] = None,
                max_pixels: Optional[int] = MAX_OUTPUT_PIXELS) -> Size:
    """(W, H) of the result for an input of `size` = (W, H): `scale` times it, or round(W * s) x round(H * s)
    for an `outscale` s (Python's round, as the documentation of --outscale says).

    ValueError, before any work, for a result under one pixel either way (a 1x1 image is no upscaling) and for
    one of more than `max_pixels` pixels (None: no limit), which would otherwise fail allocating it after the
    whole image went through the network.
    """
    w, h = size
    if outscale is None:
        out = (w * scale, h * scale)
    else:
        if not outscale > 0 or not math.isfinite(outscale):
            raise ValueError(f"outscale must be a positive number, got {outscale}")
        out = (round(w * outscale), round(h * outscale))
        if min(out) < 1:
            raise ValueError(f"outscale {outscale:g} makes the {w}x{h} image {out[0]}x{out[1]}: under one pixel")
    if max_pixels is not None and out[0] * out[1] > max_pixels:
        raise ValueError(f"the {w}x{h} image would become {out[0]}x{out[1]} ({out[0] * out[1]:,} pixels), over the "
                         f"limit of {max_pixels:,} pixels")
    return out


def build_generator(opt: Any, state: Dict[str, torch.Tensor], source: str) -> nn.Module:
    """The generator `opt` describes (netG, ngf, norm, scale and the architecture's own options), on the CPU,
    with `state` loaded strictly; a state that does not fit names `source` and the options to check, before any
    memory is taken (checked on the meta device first: check_files_fit)."""
    def build(options: Any) -> nn.Module:  # no initialisation: every weight comes from `state`
        net = networks.define_G(options.input_nc, options.output_nc, options.ngf, options.netG, options.norm, False,
                                ARCHITECTURE_INIT, **networks.generator_kwargs(options))
        load_into(networks.unwrap(net), state, source, network_options(options, "G"))
        return net

    check_files_fit(build, opt)
    net = build(opt)
    logger.debug("%s (%s, x%d) loaded from %s", opt.netG, opt.name, opt.scale, source)
    return net


class Upscaler:
    """A generator ready to upscale images: `upscaler(image, outscale)` gives the upscaled SRImage.

    Built for inference (`Upscaler(net, scale, device, amp, ...)`): the network is put in eval mode on `device`,
    at `amp` precision ('none', 'bf16' or 'fp16', resolved as test.py resolves --amp) and in the `channels_last`
    memory layout ('on' or 'off'). Built around a model's own generator (`accel=` the model's Acceleration,
    which already placed and prepared it): device, mode and precision stay the model's, as test.py and
    training's validation need. Either way it runs tile by tile (`tile` LR pixels with `tile_pad` of context;
    0: the whole image at once; a network with a trunk and a head runs its head in tiles of `head_tile`, 0: plain
    tiles, models/inference/split_tiles.py), with `edge_pad` pixels of replicated border, `pre_pad` of reflected
    right and bottom border and the alpha channel by `alpha_upsampler` (models/inference/resolve.py), and an image
    of more than 8 bits in fp32 whatever the precision (`precision_for`).
    """

    def __init__(self, net: nn.Module, scale: int, device: torch.device = torch.device("cpu"), amp: str = "none",
                 tile: int = 0, tile_pad: int = 40, channels_last: str = "off", edge_pad: int = 0,
                 accel: Optional[Acceleration] = None, max_output_pixels: Optional[int] = MAX_OUTPUT_PIXELS,
                 pre_pad: int = 0, alpha_upsampler: str = "bicubic", head_tile: int = HEAD_TILE) -> None:
        if min(tile, tile_pad, edge_pad, pre_pad, head_tile) < 0:
            raise ValueError(f"tile, tile_pad, edge_pad, pre_pad and head_tile must be >= 0, got {tile}, {tile_pad}, "
                             f"{edge_pad}, {pre_pad} and {head_tile}")
        if alpha_upsampler not in ALPHA_UPSAMPLERS:
            raise ValueError(f"alpha_upsampler must be one of {ALPHA_UPSAMPLERS}, got {alpha_upsampler!r}")
        self.net = networks.unwrap(net)
        if accel is None:
            self.net = self.net.to(device).eval()
            accel = Acceleration(amp, channels_last, False, device)
            accel.prepare(self.net)  # under bf16: outputs back in float32
        self.accel = accel
        self.scale = scale
        self.device = device
        self.tile, self.tile_pad, self.edge_pad = tile, tile_pad, edge_pad
        self.head_tile = head_tile if splittable(self.net) else 0  # 0: plain tiles
        self.max_output_pixels = max_output_pixels
        self.pre_pad, self.alpha_upsampler = pre_pad, alpha_upsampler
        self._said_fp32 = False  # whether a 16-bit image was announced as upscaled in fp32 (`precision_for`)

    @property
    def precision(self) -> str:
        """'fp32', 'bf16' or 'fp16', for the log."""
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.accel.dtype, "fp32")  # type: ignore[arg-type]

    def describe(self) -> str:
        """The precision, device and tiles in a few words, for the log."""
        tiles = f"tiles of {self.tile} px (+{self.tile_pad} context)" if self.tile else "the whole image at once"
        if self.tile and self.head_tile:
            tiles += f", the head in tiles of {self.head_tile} px"
        return f"{self.precision} on {self.device}, {tiles}"

    def precision_for(self, img: SRImage) -> ContextManager[Any]:
        """fp32 for an image of more than 8 bits, whatever the precision: bf16 keeps 8 bits of mantissa, and a
        16-bit photo came out of bf16 with 2,304 distinct levels against fp32's 63,108. 16 bits in, 16-bit
        precision out (said once per Upscaler); 8-bit images keep the chosen precision, measured to score as
        fp32's (docs/benchmarks.md)."""
        if img.bit_depth <= 8 or self.accel.dtype is None:
            return contextlib.nullcontext()
        if not self._said_fp32:
            logger.info("%d-bit input: upscaled in fp32 (%s keeps about 8 bits of precision)", img.bit_depth,
                        self.precision)
            self._said_fp32 = True
        return self.accel.full_precision()

    def result_size(self, size: Size, outscale: Optional[float] = None) -> Size:
        """(W, H) of the result for an input of `size` = (W, H): `output_size` at this Upscaler's scale and limit
        (ValueError under one pixel or over the limit)."""
        return output_size(size, self.scale, outscale, self.max_output_pixels)

    def upscale_rgb8(self, rgb: np.ndarray, outscale: Optional[float] = None) -> np.ndarray:
        """An (H, W, 3) uint8 RGB array (a video frame) upscaled, as an (H', W', 3) uint8 RGB array."""
        frame = SRImage(torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255), None, 8)  # (3, H, W)
        return to_uint(self(frame, outscale).pixels, 8)

    def __call__(self, img: SRImage, outscale: Optional[float] = None) -> SRImage:
        """`img` upscaled by the network's scale, or to `output_size(img.size, scale, outscale)`."""
        size = self.result_size(img.size, outscale)
        with torch.no_grad(), self.accel.autocast(), self.precision_for(img):
            return super_resolve(self.net, img, self.scale, self.tile, self.tile_pad, self.device, size,
                                 self.edge_pad, self.pre_pad, self.alpha_upsampler, self.head_tile)
