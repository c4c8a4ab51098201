"""Noise and JPEG compression of the Real-ESRGAN degradation, on (C, H, W) images in [0, 1].

Noise is drawn from a numpy Generator (the caller seeds it) and added to the image, which is then clipped to
[0, 1]. Grey noise is one noise field shared by all channels (luminance noise); colour noise is drawn per channel.
  gaussian  N(0, sigma^2) per pixel, sigma on the 0..1 scale (the options give it on the 0..255 scale)
  poisson   shot noise: the image is quantised to 8-bit levels, `vals` photon counts stand for full white
            (the number of distinct levels rounded up to a power of 2), and the noise is
            (Poisson(img * vals) / vals - img) * scale; its variance is img * scale^2 / vals, so it grows with the
            brightness, as a camera sensor's does. Grey Poisson noise is computed on the luma
            (ITU-R BT.601 weights) and added to every channel.
JPEG goes through PIL's encoder and decoder (libjpeg) on the 8-bit image: a real codec, so the blocks, the chroma
subsampling and the ringing are those of real files.
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

_LUMA = (0.299, 0.587, 0.114)


def _noise_shape(img: torch.Tensor, grey: bool) -> tuple:
    c, h, w = img.shape
    return (1 if grey else c, h, w)


def gaussian_noise(img: torch.Tensor, sigma: float, grey: bool, rng: np.random.Generator) -> torch.Tensor:
    """`img` (C, H, W) plus Gaussian noise of standard deviation `sigma` (0..1 scale), clipped to [0, 1]."""
    noise = torch.from_numpy(rng.standard_normal(_noise_shape(img, grey)).astype(np.float32)) * sigma
    return (img + noise).clamp(0.0, 1.0)


def poisson_noise_field(img: torch.Tensor, grey: bool, rng: np.random.Generator) -> torch.Tensor:
    """The unscaled shot noise of `img` (C, H, W) in [0, 1]: (1 or C, H, W)."""
    if grey and img.shape[0] == 3:
        img = sum(w * img[i] for i, w in enumerate(_LUMA)).unsqueeze(0)  # (1, H, W)
    levels = torch.round(img.clamp(0.0, 1.0) * 255.0)
    distinct = len(torch.unique(levels))
    vals = 2 ** math.ceil(math.log2(max(distinct, 2)))
    quantised = (levels / 255.0).double().numpy()
    counts = rng.poisson(quantised * vals)
    return torch.from_numpy(counts / vals - quantised).to(torch.float32)


def poisson_noise(img: torch.Tensor, scale: float, grey: bool, rng: np.random.Generator) -> torch.Tensor:
    """`img` (C, H, W) plus Poisson (shot) noise times `scale`, clipped to [0, 1]."""
    return (img + poisson_noise_field(img, grey, rng) * scale).clamp(0.0, 1.0)


def to_8bit(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, C) uint8, clipped and rounded."""
    return torch.round(img.clamp(0.0, 1.0) * 255.0).to(torch.uint8).permute(1, 2, 0).numpy()


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """`img` (C, H, W), C = 1 or 3, in [0, 1] through a JPEG file of `quality` (1..95) and back."""
    pixels = to_8bit(img)
    pil = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels, "L" if pixels.shape[2] == 1 else "RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded.convert(pil.mode), dtype=np.float32) / 255.0
    out = out[:, :, None] if out.ndim == 2 else out
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))  # (C, H, W)
