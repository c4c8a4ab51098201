"""Super-resolution samples: (LR, HR) pairs for training and evaluation.

Active when the model upscales: `opt.sr_scale` > 0, which options/ resolves from the model (`--model srgan`'s
--scale; models never reach data/ otherwise). The dataset modes then produce:
  single   HR images only: a random HR crop of --crop_size (or the whole image, modcropped, with
           --preprocess none), random horizontal/vertical flips and 90-degree rotations (horizontal flips
           only with --no_rotate, none with --no_flip), and the LR made by bicubic downscaling with
           antialiasing (PIL's BICUBIC reproduces MATLAB's imresize, the SR literature's degradation), or
           with --degradation realesrgan by Real-ESRGAN's random blur / resize / noise / JPEG pipeline
           (data/degradations), a new draw per sample seeded from the sample's stream.
  aligned  `<phase>A/` LR and `<phase>B/` HR files paired by name (BtoA swaps the folders); the HR must be
           `--scale` times the LR (up to a remainder that modcrop removes). Crops stay aligned: an LR crop at
           (x, y) pairs with the HR crop at (x * scale, y * scale).
Both images are in the toolkit's range [-1, 1] (the paper feeds LR in [0, 1]; the difference is an affine
map the first convolution absorbs), 'A' is the LR (N, C, h, w) and 'B' the HR (N, C, h * scale, w * scale).
At test time the images are read by util.images.read_image, which keeps alpha, greyscale and 16-bit depth.
"""
from __future__ import annotations

import logging
import os
import random
import zlib
from typing import Any, Dict, List, Optional, Tuple

import torch
import torchvision.transforms.functional as TF
from PIL import Image

from data.degradations import DegradationSettings, degrade, sample_rng, settings_from_options
from util.errors import DataError
from util.images import SRImage, bicubic_downscale, modcrop, read_image

logger = logging.getLogger(__name__)


def large_enough(paths: List[str], crop_size: int) -> List[str]:
    """The HR images at least `crop_size` on both sides (headers only, no decoding); the others are left out
    with one warning naming them, since a classic set such as T91 has a few images smaller than the crop."""
    kept, small = [], []
    for path in paths:
        try:
            with Image.open(path) as img:
                w, h = img.size
        except (OSError, ValueError, Image.DecompressionBombError):
            kept.append(path)  # unreadable: the loader reports it (or skips it under --skip_bad_images)
            continue
        (kept if w >= crop_size and h >= crop_size else small).append(path)
    if small:
        shown = ", ".join(os.path.basename(p) for p in small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5
                                                                     else "")
        logger.warning("%d of %d images are smaller than --crop_size %d and are not used for training: %s",
                       len(small), len(paths), crop_size, shown)
    if not kept:
        raise DataError(f"every image is smaller than --crop_size {crop_size} (e.g. {paths[0]}): lower --crop_size")
    return kept


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return TF.to_tensor(img) * 2.0 - 1.0  # (C, H, W) in [-1, 1]


def _augment(img: Image.Image, flips: Tuple[bool, bool, bool]) -> Image.Image:
    hflip, vflip, rot90 = flips
    if hflip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if vflip:
        img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if rot90:
        img = img.transpose(Image.Transpose.TRANSPOSE)  # a 90-degree rotation composed with the flips above
    return img


def _draw_flips(opt: Any) -> Tuple[bool, bool, bool]:
    """(horizontal flip, vertical flip, transpose) of a training crop: one of the eight, uniformly; horizontal
    flips only without `opt.sr_rotate` (resolved by options/ from srgan's --no_rotate); none with --no_flip."""
    if opt.no_flip:
        return (False, False, False)
    if not opt.sr_rotate:
        return (random.random() < 0.5, False, False)
    return (random.random() < 0.5, random.random() < 0.5, random.random() < 0.5)


def bicubic_lr(hr: Image.Image, scale: int) -> Image.Image:
    """The LR of an HR image whose sides are multiples of `scale`: antialiased bicubic downscaling."""
    w, h = hr.size
    return hr.resize((w // scale, h // scale), Image.Resampling.BICUBIC)


def _random_corner(size: Tuple[int, int], crop: int, path: str, too_small: str) -> Tuple[int, int]:
    """Top-left corner of a random `crop` x `crop` window (python `random`); DataError when it does not fit."""
    w, h = size
    if w < crop or h < crop:
        raise DataError(f"{path}: {too_small.format(f'{w}x{h}')}; lower --crop_size or remove the image", path=path)
    return random.randint(0, w - crop), random.randint(0, h - crop)


def training_sample_from_hr(hr: Image.Image, opt: Any, path: str) -> Dict[str, Any]:
    """A training pair from one HR image (python `random` is seeded per sample by the loader)."""
    scale = opt.sr_scale
    if opt.preprocess == "none":
        hr = modcrop(hr, scale)
    else:
        size = opt.crop_size
        x, y = _random_corner(hr.size, size, path, f"the image is {{}}, smaller than --crop_size {size}")
        hr = hr.crop((x, y, x + size, y + size))
    hr = _augment(hr, _draw_flips(opt))
    if not _realesrgan(opt):
        return {"A": _to_tensor(bicubic_lr(hr, scale)), "B": _to_tensor(hr), "A_paths": path, "B_paths": path}
    # The pipeline's own Generator, seeded from the sample's python stream (seeded per sample by the loader).
    hr01 = TF.to_tensor(hr)  # (C, H, W) in [0, 1]
    lr01 = degrade(hr01, scale, settings_from_options(opt), sample_rng(random.getrandbits(63)))
    return {"A": lr01 * 2.0 - 1.0, "B": hr01 * 2.0 - 1.0, "A_paths": path, "B_paths": path}


def _realesrgan(opt: Any) -> bool:
    """Whether the LR is made by the Real-ESRGAN pipeline (the option exists in single mode only)."""
    return getattr(opt, "degradation", "bicubic") == "realesrgan"


def degraded_eval_lr(hr: torch.Tensor, scale: int, settings: DegradationSettings, seed: int,
                     path: str) -> torch.Tensor:
    """The LR that evaluates the HR image at `path` (C, H, W) in [0, 1] -> (C, H / scale, W / scale): one fixed
    draw of the realesrgan pipeline, seeded by `seed` (--seed) and the file name, so every model compared on the
    same images (test.py, scripts/sr_side_by_side.py) sees the same LR, whatever the order or folder."""
    name_seed = zlib.crc32(os.path.basename(path).encode("utf-8"))
    return degrade(hr, scale, settings, sample_rng(seed, name_seed))


def training_sample_from_pair(lr: Image.Image, hr: Image.Image, opt: Any, lr_path: str,
                              hr_path: str) -> Dict[str, Any]:
    """A training pair from an LR file and its HR partner, cropped at corresponding places."""
    scale = opt.sr_scale
    check_pair_sizes(lr.size, hr.size, scale, lr_path, hr_path)
    hr = modcrop(hr, scale)
    if opt.preprocess != "none":
        lr_size = opt.crop_size // scale
        x, y = _random_corner(lr.size, lr_size, lr_path,
                              f"the LR image is {{}}, smaller than --crop_size / --scale = {lr_size}")
        lr = lr.crop((x, y, x + lr_size, y + lr_size))
        hr = hr.crop((x * scale, y * scale, (x + lr_size) * scale, (y + lr_size) * scale))
    flips = _draw_flips(opt)
    return {"A": _to_tensor(_augment(lr, flips)), "B": _to_tensor(_augment(hr, flips)),
            "A_paths": lr_path, "B_paths": hr_path}


def check_pair_sizes(lr_size: Tuple[int, int], hr_size: Tuple[int, int], scale: int, lr_path: str,
                     hr_path: str) -> None:
    (lw, lh), (hw, hh) = lr_size, hr_size
    if (hw // scale, hh // scale) != (lw, lh):
        raise DataError(f"{hr_path} is {hw}x{hh} but its LR partner {lr_path} is {lw}x{lh}: with --scale {scale} "
                        f"the HR must be {lw * scale}x{lh * scale} (up to {scale - 1} extra pixels)", path=hr_path)


def test_sample(opt: Any, path: str, hr_path: Optional[str] = None) -> Dict[str, Any]:
    """An inference sample, read without losing alpha, greyscale or bit depth (util.images.read_image).

    Without `--eval_metrics` (`opt.sr_test_hr` False) the image at `path` is the LR to upscale. With it, `path`
    is an HR image (or `hr_path` is, for an LR/HR pair) and the LR is made by the same degradation as in
    training: bicubic, or one fixed draw of the realesrgan pipeline per image (`degraded_eval_lr`, seeded by
    --seed, 0 when not given; an 8-bit LR without alpha). 'A' is the LR (C, h, w) and 'B' the modcropped HR
    (C, H, W), both in [0, 1] here, plus 'A_alpha' (1, h, w) when the LR has an alpha channel, 'bit_depth', and
    with an HR 'lr_from', how the LR was made (for the metrics report).
    """
    scale = opt.sr_scale
    sample: Dict[str, Any] = {"A_paths": path}
    if opt.sr_test_hr:
        hr = modcrop(read_image(hr_path or path), scale)
        if hr_path is None and _realesrgan(opt):
            seed = opt.seed if opt.seed is not None else 0
            lr = SRImage(degraded_eval_lr(hr.pixels, scale, settings_from_options(opt), seed, path))
            sample["lr_from"] = f"one seeded draw of the realesrgan pipeline (seed {seed})"
        elif hr_path is None:
            lr = bicubic_downscale(hr, scale)
            sample["lr_from"] = "bicubic (PIL)"
        else:
            lr = read_image(path)
            check_pair_sizes(lr.size, hr.size, scale, path, hr_path)
            sample["lr_from"] = "the LR files of the pairs"
        sample["B"] = hr.pixels
    else:
        lr = read_image(path)
    sample["A"] = lr.pixels
    sample["bit_depth"] = lr.bit_depth
    if lr.alpha is not None:
        sample["A_alpha"] = lr.alpha
    return sample
