"""Unsharp masking (USM) of training targets, as Real-ESRGAN sharpens its ground truth for the L1 and perceptual
losses (`l1_gt_usm`, `percep_gt_usm`; the GAN loss keeps the plain image).

A sharper target pulls the generator towards crisper edges than the photos themselves have. The definition
(Real-ESRGAN's, after OpenCV's GaussianBlur):
    blur     = G * img, G a Gaussian of size k = radius (made odd: 50 -> 51) and OpenCV's sigma for sigma 0,
               0.3 * ((k - 1) / 2 - 1) + 0.8 (8.0 for 51), with mirrored borders (OpenCV's BORDER_REFLECT_101)
    residual = img - blur
    mask     = 1 where |residual| > threshold (threshold in levels of 0..255), else 0;  soft = G * mask
    sharp    = clip(img + weight * residual)
    out      = soft * sharp + (1 - soft) * img
so flat regions and faint texture (below the threshold) stay exactly as they are. The blur runs as two 1-D
convolutions (the Gaussian is separable), 2 * 51 instead of 51^2 multiply-adds per pixel.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def gaussian_kernel_1d(size: int) -> torch.Tensor:
    """OpenCV's `getGaussianKernel(size, 0)` for sizes above 7 (below it OpenCV has fixed tables): (size,), sum 1."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the Gaussian's size must be odd and positive, got {size}")
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return (kernel / kernel.sum()).float()


def _mirror_indices(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices of a length-n axis padded by `pad` on each side with BORDER_REFLECT_101 (`dcb|abcd|cba`), for any
    pad (the pattern repeats: images smaller than the kernel are fine, unlike F.pad's 'reflect')."""
    i = torch.arange(-pad, n + pad, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


def gaussian_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """x: (N, C, H, W) blurred channel by channel by the separable `kernel` (K,), mirrored borders -> (N, C, H, W)."""
    channels, pad = x.shape[1], kernel.numel() // 2
    k = kernel.to(x.dtype)
    x = x.index_select(3, _mirror_indices(x.shape[3], pad, x.device))  # (N, C, H, W + 2 pad)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)  # (N, C, H, W)
    x = x.index_select(2, _mirror_indices(x.shape[2], pad, x.device))  # (N, C, H + 2 pad, W)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def sharpen_mask(residual: torch.Tensor, threshold: float, value_range: Tuple[float, float]) -> torch.Tensor:
    """1.0 where |residual| exceeds `threshold` levels of 255 over the images' `value_range`, else 0.0."""
    low, high = value_range
    return (residual.abs() * (255.0 / (high - low)) > threshold).to(residual.dtype)


class UnsharpMask(nn.Module):
    """`sharp = UnsharpMask()(hr)`: Real-ESRGAN's USM (radius 50, weight 0.5, threshold 10) of images in
    `value_range` (the toolkit's [-1, 1] by default); (N, C, H, W) -> (N, C, H, W), computed in float32."""

    def __init__(self, radius: int = 50, weight: float = 0.5, threshold: float = 10.0,
                 value_range: Tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        if radius < 1 or not math.isfinite(weight) or threshold < 0 or not value_range[0] < value_range[1]:
            raise ValueError(f"USM needs radius >= 1, a finite weight, threshold >= 0 and a value range low < high; "
                             f"got {radius}, {weight}, {threshold}, {value_range}")
        self.weight, self.threshold, self.value_range = weight, threshold, value_range
        size = radius + 1 if radius % 2 == 0 else radius
        # (size,) float32. Not persistent: a constant of the definition, not state.
        self.register_buffer("kernel", gaussian_kernel_1d(size), persistent=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        img = img.float()
        residual = img - gaussian_blur(img, self.kernel)  # (N, C, H, W)
        soft = gaussian_blur(sharpen_mask(residual, self.threshold, self.value_range), self.kernel)
        sharp = (img + self.weight * residual).clamp(*self.value_range)
        return soft * sharp + (1 - soft) * img
