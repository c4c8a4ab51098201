"""Blur kernels of the Real-ESRGAN degradation: the Gaussian family and the circular sinc (low-pass) filter.

Every kernel is a `(k, k)` float32 tensor summing to 1 with an odd `k`, centred on pixel (k // 2, k // 2); x runs
along the columns (width), y along the rows (height). The Gaussian family is written through the quadratic form
q(x, y) = [x y] S^-1 [x y]^T of a covariance S = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T:
  gaussian      exp(-q / 2)
  generalized   exp(-(q^beta) / 2)   beta 1 is the Gaussian; < 1 heavier tails, > 1 a flatter top
  plateau       1 / (1 + q^beta)     a flat top falling off like a power law
Isotropic kinds use sigma_x = sigma_y (theta is then irrelevant); anisotropic ones turn the sigma_x axis by theta
from the x axis towards the y axis (the covariance of the normalised Gaussian kernel is S itself).
The sinc kernel is the impulse response of an ideal circular low-pass filter of cutoff omega_c (radians per
pixel): omega_c J1(omega_c r) / (2 pi r), truncated to the window and renormalised.
Random draws take a numpy Generator so that the caller decides the seeding (data/degradations/pipeline.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _grid(size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and >= 1, got {size}")
    ax = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")  # (k, k) each: row index is y, column index is x
    return xx, yy


def _normalised(kernel: torch.Tensor) -> torch.Tensor:
    return (kernel / kernel.sum()).to(torch.float32)


def quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """q(x, y) = [x y] S^-1 [x y]^T on the kernel grid, S = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T."""
    xx, yy = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    # Coordinates in the kernel's own axes: u along the rotated sigma_x axis, v along the sigma_y one.
    u = c * xx + s * yy
    v = -s * xx + c * yy
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2  # (k, k) float64


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float = 0.0) -> torch.Tensor:
    return _normalised(torch.exp(-0.5 * quadratic_form(size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> torch.Tensor:
    return _normalised(torch.exp(-0.5 * quadratic_form(size, sigma_x, sigma_y, theta) ** beta))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> torch.Tensor:
    return _normalised(1.0 / (quadratic_form(size, sigma_x, sigma_y, theta) ** beta + 1.0))


def sinc_kernel(size: int, omega_c: float) -> torch.Tensor:
    """The circular low-pass filter of cutoff `omega_c` in (0, pi] radians per pixel, `size` x `size`."""
    if not 0 < omega_c <= math.pi:
        raise ValueError(f"sinc cutoff must be in (0, pi], got {omega_c}")
    xx, yy = _grid(size)
    r = torch.sqrt(xx ** 2 + yy ** 2)
    safe_r = torch.where(r == 0, torch.ones_like(r), r)
    values = omega_c * torch.special.bessel_j1(omega_c * safe_r) / (2 * math.pi * safe_r)
    # The limit at r = 0: J1(z) ~ z / 2, so omega_c * (omega_c r / 2) / (2 pi r) = omega_c^2 / (4 pi).
    values = torch.where(r == 0, torch.full_like(r, omega_c ** 2 / (4 * math.pi)), values)
    return _normalised(values)


def pulse_kernel(size: int) -> torch.Tensor:
    """The identity filter: 1 at the centre."""
    kernel = torch.zeros(size, size)
    kernel[size // 2, size // 2] = 1.0
    return kernel


def pad_kernel(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad an odd kernel to `size` x `size` (odd, >= its size), keeping it centred."""
    pad = (size - kernel.shape[-1]) // 2
    if pad < 0 or (size - kernel.shape[-1]) % 2:
        raise ValueError(f"cannot pad a {kernel.shape[-1]}x{kernel.shape[-1]} kernel to {size}x{size}")
    return F.pad(kernel, (pad, pad, pad, pad))


@dataclass(frozen=True)
class KernelSettings:
    """The published ranges of one blur (Real-ESRGAN's first or second pass)."""

    sizes: Tuple[int, ...]  # the odd kernel sizes drawn from, uniformly
    kind_probs: Tuple[float, ...]  # one probability per KERNEL_KINDS entry, summing to 1
    sigma: Tuple[float, float]
    beta_generalized: Tuple[float, float]
    beta_plateau: Tuple[float, float]
    sinc_prob: float

    @property
    def pad_to(self) -> int:
        return max(self.sizes)


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def random_kernel(rng: np.random.Generator, settings: KernelSettings) -> torch.Tensor:
    """One blur kernel drawn as Real-ESRGAN draws its first/second-pass kernels, padded to `settings.pad_to`.

    With probability `sinc_prob` a sinc filter (cutoff in [pi/3, pi] for kernels under 13 pixels, else
    [pi/5, pi]: a small window cannot hold a low cutoff's wide response); otherwise one of the six Gaussian-family
    kinds by `kind_probs`, with sigma(s) from `sigma`, the rotation uniform in [-pi, pi] and beta from the kind's
    range.
    """
    size = int(rng.choice(settings.sizes))
    if rng.uniform() < settings.sinc_prob:
        low = math.pi / 3 if size < 13 else math.pi / 5
        return pad_kernel(sinc_kernel(size, float(rng.uniform(low, math.pi))), settings.pad_to)
    probs = np.asarray(settings.kind_probs) / sum(settings.kind_probs)
    kind = KERNEL_KINDS[int(rng.choice(len(KERNEL_KINDS), p=probs))]
    sigma_x = _uniform(rng, settings.sigma)
    if kind.endswith("aniso"):
        sigma_y = _uniform(rng, settings.sigma)
        theta = float(rng.uniform(-math.pi, math.pi))
    else:
        sigma_y, theta = sigma_x, 0.0
    if kind.startswith("generalized"):
        kernel = generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, _uniform(rng, settings.beta_generalized))
    elif kind.startswith("plateau"):
        kernel = plateau_kernel(size, sigma_x, sigma_y, theta, _uniform(rng, settings.beta_plateau))
    else:
        kernel = gaussian_kernel(size, sigma_x, sigma_y, theta)
    return pad_kernel(kernel, settings.pad_to)


def random_final_sinc(rng: np.random.Generator, sizes: Sequence[int], prob: float, pad_to: int) -> torch.Tensor:
    """The last filter: with probability `prob` a sinc of cutoff in [pi/3, pi], else the identity."""
    size = int(rng.choice(sizes))
    if rng.uniform() < prob:
        return pad_kernel(sinc_kernel(size, float(rng.uniform(math.pi / 3, math.pi))), pad_to)
    return pulse_kernel(pad_to)


def trim_padding(kernels: torch.Tensor) -> torch.Tensor:
    """`kernels` (N, k, k) without the rings of zeros that all of them have around their centre."""
    k = kernels.shape[-1]
    nonzero = kernels.abs().amax(dim=0) > 0  # (k, k)
    if not bool(nonzero.any()):
        return kernels
    rows, cols = torch.nonzero(nonzero, as_tuple=True)
    radius = int(torch.max(torch.stack([(rows - k // 2).abs().max(), (cols - k // 2).abs().max()])))
    return kernels[:, k // 2 - radius:k // 2 + radius + 1, k // 2 - radius:k // 2 + radius + 1]


def filter2d(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of `img` (N, C, H, W) with `kernel` (k, k) or per sample (N, k, k).

    Reflect padding keeps the size (replicate where the image is too small to reflect); one grouped
    convolution does all samples and channels, each with its own sample's kernel. The kernels' zero border (the
    padding to a common size) is cut first: the same result, at a fraction of the cost for small kernels.
    """
    n, c, h, w = img.shape
    kernels = trim_padding(kernel.expand(n, *kernel.shape[-2:]) if kernel.dim() == 2 else kernel)  # (N, k, k)
    k = kernels.shape[-1]
    pad = k // 2
    mode = "reflect" if pad < min(h, w) else "replicate"
    padded = F.pad(img, (pad, pad, pad, pad), mode=mode).reshape(1, n * c, h + 2 * pad, w + 2 * pad)
    weight = kernels.to(img.dtype).repeat_interleave(c, dim=0).unsqueeze(1)  # (N * C, 1, k, k)
    # conv2d is a correlation; flipping the kernel makes it a convolution (the same for symmetric kernels).
    return F.conv2d(padded, weight.flip(-1, -2), groups=n * c).reshape(n, c, h, w)
