"""Real-ESRGAN's second-order degradation: from a high-resolution image to a realistic low-resolution one.

    HR -> blur (kernel 1) -> random resize -> noise -> JPEG                         first pass
       -> blur (kernel 2, with --deg2_blur_prob) -> random resize -> noise          second pass
       -> either (resize to HR / scale, final sinc) then JPEG, or JPEG then (resize, final sinc)
       -> clip to [0, 1], round to 8-bit levels                                      = LR

Every draw (kernel kinds and sizes, sigmas, angles, resize direction, factor and mode, noise kind, strength and
colour, JPEG quality, the final order) comes from one numpy Generator given by the caller, in a fixed order, so one
seed gives one degradation on any machine and any number of loader workers. Training draws the Generator's seed
from the sample's seeded python stream (data/loader.py seeds it from base seed, epoch and position), so a resumed
run degrades every sample as the uninterrupted run did; test.py's --eval_metrics seeds it from --seed and the file
name, so every model compared sees the same LR.

Unlike Real-ESRGAN's GPU version, which draws the resize factor, its mode and the noise kind once per batch and
therefore shuffles pairs through a pool of 180 so that a batch mixes degradations, every draw here is per sample:
each batch mixes degradations by construction, with no pool to fill, keep in the checkpoint or restore.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from data.degradations.kernels import KernelSettings, filter2d, random_final_sinc, random_kernel
from data.degradations.noise import gaussian_noise, jpeg, poisson_noise

RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class StageSettings:
    """One pass of the pipeline; the second pass's JPEG is the final one."""

    kernel: KernelSettings
    blur_prob: float
    resize_probs: Tuple[float, float, float]  # up, down, keep
    resize_range: Tuple[float, float]  # factor bounds: up in [1, hi], down in [lo, 1]
    gaussian_noise_prob: float  # else Poisson
    noise_sigma: Tuple[float, float]  # Gaussian sigma on the 0..255 scale
    poisson_scale: Tuple[float, float]
    grey_noise_prob: float
    jpeg_quality: Tuple[int, int]


@dataclass(frozen=True)
class DegradationSettings:
    first: StageSettings
    second: StageSettings
    final_sinc_prob: float
    resize_first_prob: float  # the final resize + sinc before the JPEG (else after it)

    @property
    def kernel_sizes(self) -> Tuple[int, ...]:
        return self.first.kernel.sizes

    @property
    def pad_to(self) -> int:
        return self.first.kernel.pad_to


def _resize(img: torch.Tensor, size: Tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    """`img` (1, C, H, W) resized to `size` (h, w) with a mode drawn uniformly from RESIZE_MODES."""
    mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    size = (max(1, size[0]), max(1, size[1]))
    if mode == "area":
        return F.interpolate(img, size=size, mode="area")
    return F.interpolate(img, size=size, mode=mode, align_corners=False)


def _random_factor(rng: np.random.Generator, stage: StageSettings) -> float:
    direction = int(rng.choice(3, p=np.asarray(stage.resize_probs) / sum(stage.resize_probs)))
    low, high = stage.resize_range
    if direction == 0:
        return float(rng.uniform(1.0, high))
    if direction == 1:
        return float(rng.uniform(low, 1.0))
    return 1.0


def _noise(img: torch.Tensor, stage: StageSettings, rng: np.random.Generator) -> torch.Tensor:
    """`img` (1, C, H, W) with Gaussian or Poisson noise, colour or grey, clipped to [0, 1]."""
    gaussian = rng.uniform() < stage.gaussian_noise_prob
    strength = float(rng.uniform(*(stage.noise_sigma if gaussian else stage.poisson_scale)))
    grey = bool(rng.uniform() < stage.grey_noise_prob)
    if gaussian:
        return gaussian_noise(img[0], strength / 255.0, grey, rng).unsqueeze(0)
    return poisson_noise(img[0], strength, grey, rng).unsqueeze(0)


def _jpeg(img: torch.Tensor, stage: StageSettings, rng: np.random.Generator) -> torch.Tensor:
    low, high = stage.jpeg_quality
    return jpeg(img[0], int(rng.integers(low, high + 1))).unsqueeze(0)


def degrade(hr: torch.Tensor, scale: int, settings: DegradationSettings, rng: np.random.Generator) -> torch.Tensor:
    """The LR (C, H // scale, W // scale) of `hr` (C, H, W) in [0, 1], C = 1 or 3, on the 8-bit grid in [0, 1]."""
    if hr.dim() != 3:
        raise ValueError(f"degrade takes one (C, H, W) image, got shape {tuple(hr.shape)}")
    c, h, w = hr.shape
    lr_size = (h // scale, w // scale)
    first, second = settings.first, settings.second
    # Every kernel is drawn up front, as Real-ESRGAN draws them with the sample, so the draws keep one order.
    kernel1 = random_kernel(rng, first.kernel)
    kernel2 = random_kernel(rng, second.kernel)
    final_kernel = random_final_sinc(rng, settings.kernel_sizes, settings.final_sinc_prob, settings.pad_to)
    out = hr.float().unsqueeze(0)  # (1, C, H, W)

    if rng.uniform() < first.blur_prob:
        out = filter2d(out, kernel1)
    factor = _random_factor(rng, first)
    out = _resize(out, (int(h * factor), int(w * factor)), rng)
    out = _noise(out, first, rng)
    out = _jpeg(out, first, rng)

    if rng.uniform() < second.blur_prob:
        out = filter2d(out, kernel2)
    factor = _random_factor(rng, second)
    out = _resize(out, (int(lr_size[0] * factor), int(lr_size[1] * factor)), rng)
    out = _noise(out, second, rng)

    if rng.uniform() < settings.resize_first_prob:
        out = filter2d(_resize(out, lr_size, rng), final_kernel)
        out = _jpeg(out, second, rng)
    else:
        out = _jpeg(out, second, rng)
        out = filter2d(_resize(out, lr_size, rng), final_kernel)
    return (torch.round(out.clamp(0.0, 1.0) * 255.0) / 255.0)[0]  # (C, h, w)


def sample_rng(*seeds: int) -> np.random.Generator:
    """The Generator of one sample's degradation, from integer seeds (e.g. run seed and a file-name hash)."""
    return np.random.default_rng([int(s) % 2**63 for s in seeds])
