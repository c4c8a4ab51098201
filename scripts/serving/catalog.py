"""The models a service process serves: each loaded once at start through the code scripts/upscale.py uses
(`options.upscale_options`, then `models.inference.load_upscaler`), and the upscaling of one upload with one.

A model with a denoising twin (realesr-general-x4v3) takes a per-request `denoise`: the blend is built on first
use of a strength and the last few are kept (`_BLENDS`), since each is a network's worth of memory.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

from models.inference import Upscaler, default_denoise, load_upscaler
from options import upscale_options
from util import download
from util.errors import DataError
from util.images import choose_format, decode_image, encode_image

from .errors import ApiError

__all__ = ["Result", "ServedModel", "model_options", "load_models"]

logger = logging.getLogger("serve")

_BLENDS = 3
# PIL's format names -> the suffix `choose_format`'s auto reads: `auto` keeps the upload's own format (from its
# contents, not its name), PNG for the others.
_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tiff"}
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "tiff": "image/tiff"}


@dataclass
class Result:
    """An upscaled image, encoded, and what the answer's headers say about it."""

    data: bytes
    fmt: str
    input_size: Tuple[int, int]
    output_size: Tuple[int, int]
    note: Optional[str] = None  # why it is PNG instead of the format asked for


@dataclass
class ServedModel:
    """One served model: its Upscaler (at its default denoise strength) and what /v1/models says of it."""

    name: str
    opt: Any
    upscaler: Upscaler
    denoise: Optional[float]  # the strength `upscaler` was built with; None: the model takes none
    tile: Optional[int] = None
    max_output_pixels: Optional[int] = None
    backend: str = "torch"  # models.inference.onnx_backend.BACKENDS
    _blends: "OrderedDict[float, Upscaler]" = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def scale(self) -> int:
        return int(self.opt.scale)

    def describe(self) -> Dict[str, Any]:
        entry = download.SR_MODELS.get(self.name) if self.name in download.SR_MODELS else None
        purpose = entry.purpose if entry is not None else f"a run trained with this toolkit (--model {self.opt.model})"
        return {"name": self.name, "scale": self.scale, "architecture": self.opt.netG, "purpose": purpose,
                "denoise": self.denoise is not None}

    def upscaler_for(self, denoise: Optional[float]) -> Upscaler:
        """The Upscaler for a request's `denoise` (400 for a model that takes none); blends built once, kept few."""
        if denoise is None or denoise == self.denoise:
            return self.upscaler
        if self.denoise is None:
            raise ApiError(400, "bad_field", f"the model {self.name} takes no denoise")
        with self._lock:  # one thread builds a blend; the others wait for it rather than build it again
            if denoise not in self._blends:
                self._blends[denoise] = load_upscaler(self.opt, denoise, self.tile, None, self.max_output_pixels,
                                                      backend=self.backend)
                while len(self._blends) > _BLENDS:
                    self._blends.popitem(last=False)
            self._blends.move_to_end(denoise)
            return self._blends[denoise]

    def upscale(self, data: bytes, image_format: str, outscale: Optional[float], fmt: str,
                denoise: Optional[float]) -> Result:
        """Decode `data`, upscale it and encode it as `fmt` (choose_format's rules, as scripts/upscale.py): the
        whole of one request, its own image, tiles and result, in the calling slot's thread."""
        upscaler = self.upscaler_for(denoise)
        try:
            image = decode_image(data, "upload")
        except DataError as e:
            raise ApiError(415, "not_an_image", str(e).replace("; remove or replace the file", "")) from None
        result = upscaler(image, outscale)
        out_fmt, note = choose_format(result, fmt, "upload" + _SUFFIXES.get(image_format, ".png"))
        return Result(encode_image(result, out_fmt), out_fmt, image.size, result.size, note)


def model_options(name: str, checkpoints_dir: str, gpu_ids: str, fp32: bool) -> Any:
    """upscale.py's options for `name` (a missing zoo model installed first; offline, the one-line error)."""
    return upscale_options(name, checkpoints_dir, "latest", gpu_ids=gpu_ids, fp32=fp32)


def load_models(names: Sequence[str], checkpoints_dir: str, gpu_ids: str = "0", fp32: bool = False,
                tile: Optional[int] = None, max_output_pixels: Optional[int] = None,
                backend: str = "torch") -> Dict[str, ServedModel]:
    """Every named model, loaded once, in the order given (the first is the default), run by `backend`."""
    served: Dict[str, ServedModel] = {}
    for name in names:
        start = time.monotonic()
        opt = model_options(name, checkpoints_dir, gpu_ids, fp32)
        denoise = default_denoise(name)
        upscaler = load_upscaler(opt, denoise, tile, None, max_output_pixels, backend=backend)
        served[name] = ServedModel(name, opt, upscaler, denoise, tile, max_output_pixels, backend)
        logger.info("serving %s (x%d, %s) after %.1f s", name, opt.scale, upscaler.describe(),
                    time.monotonic() - start)
    return served
