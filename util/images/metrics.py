"""Super-resolution metrics computed the way the literature reports them.

Published SR numbers (bicubic Set5 x4 = 28.42 dB / 0.8104, SRResNet 32.05 / 0.9019, ...) are not "PSNR of the
RGB image": they follow one protocol, inherited from the MATLAB evaluation code of the early SR papers, and a
number computed any other way is not comparable (RGB PSNR is typically ~1.5 dB lower than Y PSNR). The
protocol:

  1. the ground truth is `modcrop`ped to a multiple of the scale, and the SR output quantised to 8 bit
     (both done by the caller, see util/images/resize.py);
  2. both images are converted to the luma channel Y of MATLAB's `rgb2ycbcr` (ITU-R BT.601, "studio" range
     16..235), kept as floating point on the 0..255 scale;
  3. `scale` pixels are cropped on each side (the borders of an upscaled image depend on the padding
     convention, which the metric should not reward or punish);
  4. PSNR with a peak of 255, and SSIM of Wang et al. 2004 (11x11 Gaussian window, sigma 1.5, K1 = 0.01,
     K2 = 0.03), averaged over the positions where the whole window lies inside the image.

SSIM here equals scikit-image's `structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)`: skimage filters the whole (reflect-padded) image and then drops
the (win - 1) // 2 border pixels, which leaves exactly the positions a 'valid' convolution computes. It is
implemented independently with torch so that the toolkit does not need scikit-image at run time.
Everything is computed in float64: SSIM on 0..255 data subtracts nearly equal numbers (E[x^2] - E[x]^2).

Measured with util/images/resize.py's bicubic (x4, border 4): Set5 28.429 dB / 0.8111 (published 28.42 / 0.8104).
A greyscale image is measured on its own 0..255 values, as the published MATLAB code does (it converts only
colour images: `if size(im, 3) > 1, rgb2ycbcr`). This matters: Set14's bridge.png is grey, and treating it as
R = G = B (Y = 16 + 219 g) would raise its PSNR by 20 log10(255 / 219) = 1.32 dB and Set14's bicubic mean to
26.09 dB; with the published convention Set14 gives 25.996 / 0.7029 (published 26.00 / 0.7027).
"""
from __future__ import annotations

import logging
import math
from typing import Dict

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

__all__ = ["rgb_to_y", "psnr", "ssim", "sr_metrics", "SSIM_WINDOW"]

# MATLAB rgb2ycbcr (BT.601) luma weights for R, G, B in [0, 1], giving Y in 16..235.
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)

# Wang et al. 2004 / skimage with gaussian_weights=True: sigma 1.5, truncated at 3.5 sigma -> 11 taps.
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
_SSIM_RADIUS = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)  # 5, the radius scipy.ndimage uses
SSIM_WINDOW = 2 * _SSIM_RADIUS + 1  # 11: the smallest image side SSIM can be computed on
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """Luma Y of MATLAB's `rgb2ycbcr` on the 0..255 scale, in float64 (not rounded).

    `img` is `(C, H, W)` or `(N, C, H, W)` with values in [0, 1] and C = 3 (RGB) or 1 (grey). A grey image is
    its own luma on the full 0..255 scale, Y = 255 * g, as in the published evaluation code (module docstring);
    compare grey with grey (the SR model returns a grey output for a grey input). Returns `(1, H, W)` or
    `(N, 1, H, W)`.
    """
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"rgb_to_y expects a torch.Tensor, got {type(img).__name__}")
    if img.dim() not in (3, 4):
        raise ValueError(f"rgb_to_y expects (C, H, W) or (N, C, H, W), got shape {tuple(img.shape)}")
    channel_dim = img.dim() - 3
    x = img.detach().to(torch.float64)
    channels = x.shape[channel_dim]
    if channels == 3:
        r, g, b = x.unbind(dim=channel_dim)  # each (H, W) or (N, H, W)
        y = _Y_OFFSET + _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b
        return y.unsqueeze(channel_dim)  # (1, H, W) / (N, 1, H, W)
    if channels == 1:
        return 255.0 * x  # the grey values themselves, same shape as the input
    raise ValueError(f"rgb_to_y expects 1 or 3 channels, got {channels} (shape {tuple(img.shape)})")


def _plane(x: torch.Tensor, name: str) -> torch.Tensor:
    """`x` as a float64 `(H, W)` plane; a `(1, H, W)` tensor (what rgb_to_y returns) is accepted too."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 2:
        raise ValueError(f"{name} must be a single-channel (H, W) tensor, got shape {tuple(x.shape)}")
    return x.detach().to(torch.float64)


def _pair(y_sr: torch.Tensor, y_hr: torch.Tensor):
    a, b = _plane(y_sr, "y_sr"), _plane(y_hr, "y_hr")
    if a.shape != b.shape:
        raise ValueError(f"y_sr and y_hr differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return a, b.to(a.device)


def psnr(y_sr: torch.Tensor, y_hr: torch.Tensor, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two `(H, W)` planes: 10 log10(data_range^2 / MSE).

    Identical images give `inf` (MSE 0), which is the honest answer; averaging over a set then gives inf
    too, which flags a test image that leaked into the output unchanged.
    """
    a, b = _pair(y_sr, y_hr)
    mse = torch.mean((a - b) ** 2).item()
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(float(data_range) ** 2 / mse)


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    """The normalised 1-D Gaussian scipy.ndimage.gaussian_filter uses for sigma 1.5, truncate 3.5: (11,)."""
    x = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    taps = torch.exp(-0.5 * (x / _SSIM_SIGMA) ** 2)
    return taps / taps.sum()


def ssim(y_sr: torch.Tensor, y_hr: torch.Tensor, data_range: float = 255.0) -> float:
    """Mean structural similarity (Wang et al. 2004) of two `(H, W)` planes, as scikit-image computes it.

    Gaussian-weighted local statistics (11x11, sigma 1.5, population covariance), constants
    C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with L = `data_range`, mean over the 'valid' positions (the window
    entirely inside the image). Both sides must be at least 11 pixels.
    """
    a, b = _pair(y_sr, y_hr)
    h, w = a.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {w}x{h} (W x H)")
    taps = _gaussian_taps(a.device)
    col = taps.view(1, 1, SSIM_WINDOW, 1)
    row = taps.view(1, 1, 1, SSIM_WINDOW)
    # The five local statistics in one batch: x, y, x^2, y^2, x y -> (5, 1, H, W).
    stack = torch.stack([a, b, a * a, b * b, a * b]).unsqueeze(1)
    # Separable Gaussian, 'valid' positions only: (5, 1, H - 10, W - 10).
    means = F.conv2d(F.conv2d(stack, col), row)
    ux, uy, uxx, uyy, uxy = means.unbind(0)  # each (1, H - 10, W - 10)
    vx = uxx - ux * ux  # population (co)variances, use_sample_covariance=False
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    c1 = (_SSIM_K1 * float(data_range)) ** 2
    c2 = (_SSIM_K2 * float(data_range)) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean().item()


def sr_metrics(sr: torch.Tensor, hr: torch.Tensor, border: int) -> Dict[str, float]:
    """PSNR and SSIM of an SR output against its ground truth, by the literature's protocol (module docstring).

    `sr` and `hr` are `(C, H, W)` in [0, 1], C = 3 or 1, of the same shape; the caller has already quantised
    `sr` to the bit depth of the ground truth and modcropped `hr`, because both change the result. `border`
    pixels (the scale factor, by convention) are cropped on each side of the Y channel before measuring.
    Returns `{"psnr": dB, "ssim": value}`.
    """
    for name, t in (("sr", sr), ("hr", hr)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"sr_metrics: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 3:
            raise ValueError(f"sr_metrics: {name} must be (C, H, W), got shape {tuple(t.shape)}")
    if sr.shape != hr.shape:
        raise ValueError(
            f"sr_metrics: sr and hr must have the same shape, got sr {tuple(sr.shape)} and hr {tuple(hr.shape)}"
        )
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ValueError(f"sr_metrics: border must be a non-negative int, got {border!r}")
    _, h, w = hr.shape
    if h - 2 * border < SSIM_WINDOW or w - 2 * border < SSIM_WINDOW:
        raise ValueError(
            f"sr_metrics: a {w}x{h} (W x H) image is too small to crop {border} border pixels on each side and "
            f"still fit SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window: it needs at least "
            f"{SSIM_WINDOW + 2 * border}x{SSIM_WINDOW + 2 * border}"
        )
    y_sr = rgb_to_y(sr)[0]  # (H, W)
    y_hr = rgb_to_y(hr)[0].to(y_sr.device)
    if border:
        y_sr = y_sr[border:-border, border:-border]  # (H - 2 border, W - 2 border)
        y_hr = y_hr[border:-border, border:-border]
    return {"psnr": psnr(y_sr, y_hr), "ssim": ssim(y_sr, y_hr)}
