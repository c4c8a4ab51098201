"""The dataset base class and the preprocessing pipeline shared by all dataset modes.

The pipeline reproduces the reference's `get_params` / `get_transform` pixel for pixel (same PIL calls,
same order, same rounding, same random streams: python `random` for paired parameters, torch for the
unpaired RandomCrop / RandomHorizontalFlip), so that published pretrained models see exactly the inputs they
were trained on. Differences from the reference are limited to cases where it produced unusable data:
  * an image smaller than --crop_size is a DataError (the reference padded it with black or skipped the crop);
  * after 'none' and 'scale_width' the size is rounded to the generator's size divisor (the reference always
    used 4, so U-Nets crashed on sizes that are not multiples of 128/256).
Every step is a module-level function bound with functools.partial so the transforms pickle into
DataLoader workers under any multiprocessing start method.
"""
from __future__ import annotations

import abc
import argparse
import functools
import logging
import random
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.utils.data as data
import torchvision.transforms as transforms
import torchvision.transforms.functional as TF
from PIL import Image

from util.errors import DataError
from util.registry import Registry

logger = logging.getLogger(__name__)

Params = Dict[str, Any]  # {'crop_pos': (x, y), 'flip': bool}

# Every dataset mode registers its class here (re-exported as data.DATASETS); lives in this module so that
# the dataset modules can import it without importing the package they are part of.
DATASETS: Registry = Registry("dataset mode")

class BaseDataset(data.Dataset, abc.ABC):
    """Common base of the dataset modes: stores the options and the data root, declares the interface."""

    def __init__(self, opt: Any) -> None:
        self.opt = opt
        self.root: str = opt.dataroot

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Hook for dataset-specific options; kept for compatibility with the reference's option setters."""
        return parser

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of samples in one epoch."""

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Dict[str, Any]:
        """One sample as a dict of tensors and paths."""

    def source_paths(self) -> Optional[List[str]]:
        """The 'A_paths' of samples 0, 1, ... in test order (--serial_batches), read without loading an image:
        what test.py names each sample's results after, decided for the whole run before the first is written
        (util/reports/names.py). None when the dataset cannot tell (results then keep their inputs' stems)."""
        return None

    @staticmethod
    def _apply(transform: Callable[[Image.Image], Any], img: Image.Image, path: str) -> Any:
        """Run `transform` on the image read from `path`, prefixing the path to any DataError it raises.

        Transforms do not know which file they work on; the dataset does, and the user needs the name.
        """
        try:
            return transform(img)
        except DataError as exc:
            raise DataError(f"{path}: {exc}", path=path) from exc


def size_divisor(opt: Any) -> int:
    """H and W the generator `opt.netG` can take must be multiples of this (a U-Net 256 halves 8 times).

    options/ resolves it from the generator's registration (models.BaseModel.data_options): data/ never
    imports models.
    """
    return opt.size_divisor


def get_params(opt: Any, size: Tuple[int, int]) -> Params:
    """Draw one crop position and flip, to apply identically to both images of a pair (python `random`)."""
    w, h = size
    new_w, new_h = w, h
    if opt.preprocess == "resize_and_crop":
        new_h = new_w = opt.load_size
    elif opt.preprocess == "scale_width_and_crop":
        new_w = opt.load_size
        new_h = opt.load_size * h // w
    x = random.randint(0, max(0, new_w - opt.crop_size))
    y = random.randint(0, max(0, new_h - opt.crop_size))
    flip = random.random() > 0.5
    return {"crop_pos": (x, y), "flip": flip}


def _pil_method(method: Any) -> int:
    """Accept PIL resampling constants and torchvision InterpolationMode alike (the reference used both)."""
    if isinstance(method, transforms.InterpolationMode):
        return TF.pil_modes_mapping[method]
    return method


# ---- individual steps (PIL image in, PIL image out) ---------------------------------------------------------


def _grayscale(img: Image.Image) -> Image.Image:
    return TF.to_grayscale(img, 1)


def _resize(img: Image.Image, size: int, method: int) -> Image.Image:
    """Square resize, identical to torchvision Resize([size, size]) on a PIL image."""
    return img.resize((size, size), method)


def _scale_width(img: Image.Image, target_width: int, crop_size: int, method: int) -> Image.Image:
    """Scale to `target_width` keeping the aspect ratio, but never below `crop_size` high (reference rule)."""
    ow, oh = img.size
    if ow == target_width and oh >= crop_size:
        return img
    w = target_width
    h = int(max(target_width * oh / ow, crop_size))
    return img.resize((w, h), method)


def _check_crop_fits(img: Image.Image, crop_size: int) -> None:
    ow, oh = img.size
    if ow < crop_size or oh < crop_size:
        raise DataError(
            f"image of size {ow}x{oh} is smaller than --crop_size {crop_size}: "
            "lower --crop_size or use --preprocess resize_and_crop"
        )


def _crop(img: Image.Image, pos: Tuple[int, int], crop_size: int) -> Image.Image:
    """Crop a crop_size square at `pos` (shared position of a pair)."""
    _check_crop_fits(img, crop_size)
    ow, oh = img.size
    if ow == crop_size and oh == crop_size:
        return img
    x, y = pos
    return img.crop((x, y, x + crop_size, y + crop_size))


def _random_crop(img: Image.Image, crop_size: int) -> Image.Image:
    """Crop at a random position drawn from torch's RNG, exactly as torchvision RandomCrop(crop_size)."""
    _check_crop_fits(img, crop_size)
    top, left, h, w = transforms.RandomCrop.get_params(img, (crop_size, crop_size))
    return TF.crop(img, top, left, h, w)


def _make_size_valid(img: Image.Image, base: int, method: int) -> Image.Image:
    """Round H and W to the nearest multiple of `base` (at least `base`) so the generator can take them."""
    ow, oh = img.size
    h = max(int(round(oh / base) * base), base)
    w = max(int(round(ow / base) * base), base)
    if (w, h) == (ow, oh):
        return img
    logger.debug("image size %dx%d is not a multiple of %d: resized to %dx%d", ow, oh, base, w, h)
    return img.resize((w, h), method)


def _flip(img: Image.Image, flip: bool) -> Image.Image:
    return img.transpose(Image.FLIP_LEFT_RIGHT) if flip else img


def _random_flip(img: Image.Image) -> Image.Image:
    """Flip with probability 0.5 drawn from torch's RNG, exactly as torchvision RandomHorizontalFlip()."""
    return _flip(img, bool(torch.rand(1) < 0.5))


# ---- the pipeline -------------------------------------------------------------------------------------------


def _resize_steps(opt: Any, method: int) -> List[Callable[[Image.Image], Image.Image]]:
    """The resize stage: 'resize*' wins over 'scale_width*', as in the reference's substring tests."""
    if "resize" in opt.preprocess:
        return [functools.partial(_resize, size=opt.load_size, method=method)]
    if "scale_width" in opt.preprocess:
        return [functools.partial(_scale_width, target_width=opt.load_size, crop_size=opt.crop_size, method=method)]
    return []


def _crop_steps(opt: Any, params: Optional[Params], method: int) -> List[Callable[[Image.Image], Image.Image]]:
    """Crop in the crop modes; otherwise round the size to what the generator can take."""
    if "crop" in opt.preprocess:
        if params is None:
            return [functools.partial(_random_crop, crop_size=opt.crop_size)]
        return [functools.partial(_crop, pos=params["crop_pos"], crop_size=opt.crop_size)]
    # 'none' and 'scale_width': nothing guarantees a valid size (crop sizes are validated with the options).
    return [functools.partial(_make_size_valid, base=size_divisor(opt), method=method)]


def _flip_steps(opt: Any, params: Optional[Params]) -> List[Callable[[Image.Image], Image.Image]]:
    if opt.no_flip:
        return []
    if params is None:
        return [_random_flip]
    return [functools.partial(_flip, flip=bool(params["flip"]))]


def get_transform(
    opt: Any,
    params: Optional[Params] = None,
    grayscale: bool = False,
    method: Any = Image.BICUBIC,
    convert: bool = True,
) -> Callable[[Image.Image], Any]:
    """Build the preprocessing for one image: PIL image -> tensor (C, H, W) in [-1, 1] (or PIL if not convert).

    With `params` (from get_params) the crop and flip are fixed, so A and B of a pair stay aligned;
    without, they are drawn per call from torch's RNG like torchvision's RandomCrop / RandomHorizontalFlip.
    """
    method = _pil_method(method)
    steps: List[Callable[[Any], Any]] = []
    if grayscale:
        steps.append(_grayscale)
    steps += _resize_steps(opt, method)
    steps += _crop_steps(opt, params, method)
    steps += _flip_steps(opt, params)
    if convert:
        channels = 1 if grayscale else 3
        steps.append(TF.to_tensor)  # (C, H, W) in [0, 1]
        steps.append(transforms.Normalize((0.5,) * channels, (0.5,) * channels))  # (C, H, W) in [-1, 1]
    return transforms.Compose(steps)
