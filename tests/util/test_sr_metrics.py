"""Tests for util/images/metrics.py: the SR literature's Y-channel PSNR / SSIM.

SSIM and PSNR are checked against scikit-image (a test-only dependency) on random and real image pairs, and
the whole protocol (util/images/resize.py's modcrop + MATLAB-like bicubic, then sr_metrics) against the published
bicubic x4 figure on Set5. The real images live in ../shared/data, which users do not have: those tests skip.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from helpers import ROOT, require_or_skip

from util.images import SRImage, bicubic_downscale, bicubic_upscale, modcrop, read_image
from util.images.metrics import SSIM_WINDOW, psnr, rgb_to_y, sr_metrics, ssim

SHARED_DATA = ROOT.parent / "shared" / "data"
SET5 = SHARED_DATA / "sr_eval" / "Set5"


def set5_paths() -> List[Path]:
    if not SET5.is_dir():
        pytest.skip(f"shared test images {SET5} are absent (expected at ../shared/data from the project root)")
    paths = sorted(SET5.glob("*.png"))
    assert len(paths) == 5, f"Set5 should hold 5 PNG images, found {[p.name for p in paths]}"
    return paths


def skimage_metrics():
    require_or_skip(importlib.util.find_spec("skimage") is not None,
                    "scikit-image is not installed: pip install -e .[test]")
    import skimage.metrics

    return skimage.metrics


def sk_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """scikit-image's SSIM with the settings of Wang et al. 2004 (what util.images.metrics.ssim reproduces)."""
    return float(skimage_metrics().structural_similarity(
        a.numpy(), b.numpy(), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.0))


def sk_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(skimage_metrics().peak_signal_noise_ratio(b.numpy(), a.numpy(), data_range=255.0))


# ---- rgb_to_y -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rgb, expected", [
    ((0.0, 0.0, 0.0), 16.0),
    ((1.0, 1.0, 1.0), 235.0),
    ((1.0, 0.0, 0.0), 16.0 + 65.481),
    ((0.0, 1.0, 0.0), 16.0 + 128.553),
    ((0.0, 0.0, 1.0), 16.0 + 24.966),
    ((0.5, 0.25, 1.0), 16.0 + 65.481 * 0.5 + 128.553 * 0.25 + 24.966),
])
def test_rgb_to_y_pure_colours(rgb, expected) -> None:
    img = torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1).expand(3, 2, 4)  # (3, 2, 4)
    y = rgb_to_y(img)
    assert y.shape == (1, 2, 4) and y.dtype == torch.float64
    assert torch.allclose(y, torch.full((1, 2, 4), expected, dtype=torch.float64), atol=1e-9)


def test_rgb_to_y_grey_and_batches() -> None:
    grey = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 3)  # (1, 1, 3)
    # A grey image is measured on its own 0..255 values (the published code converts only colour images) ...
    assert torch.allclose(rgb_to_y(grey), torch.tensor([0.0, 127.5, 255.0], dtype=torch.float64).view(1, 1, 3))
    # ... not as the RGB image with R = G = B, whose Y is in the studio range 16..235.
    g = torch.rand(1, 5, 7)
    assert torch.allclose(rgb_to_y(g.expand(3, 5, 7)), 16 + 219 * g.double(), atol=1e-9)
    batch = torch.rand(2, 3, 5, 7)
    y = rgb_to_y(batch)
    assert y.shape == (2, 1, 5, 7)
    assert torch.allclose(y[1], rgb_to_y(batch[1]))
    assert rgb_to_y(torch.rand(2, 1, 5, 7)).shape == (2, 1, 5, 7)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        rgb_to_y(torch.rand(4, 5, 7))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        rgb_to_y(torch.rand(5, 7))


# ---- PSNR / SSIM against scikit-image -----------------------------------------------------------------------


@pytest.mark.parametrize("seed, h, w, noise", [(0, 11, 11, 5.0), (1, 37, 53, 20.0), (2, 64, 64, 2.0), (3, 90, 41, 60.0)])
def test_psnr_ssim_match_skimage_on_random_pairs(seed: int, h: int, w: int, noise: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    hr = torch.rand(h, w, generator=gen, dtype=torch.float64) * 219 + 16  # (H, W), Y range
    # Smooth part + noise, so that SSIM is neither ~0 nor ~1.
    hr = torch.nn.functional.avg_pool2d(hr[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]
    sr = (hr + noise * torch.randn(h, w, generator=gen, dtype=torch.float64)).clamp(0, 255)
    assert psnr(sr, hr) == pytest.approx(sk_psnr(sr, hr), abs=1e-4)
    assert ssim(sr, hr) == pytest.approx(sk_ssim(sr, hr), abs=1e-4)
    assert 0.05 < ssim(sr, hr) < 0.999


def test_psnr_ssim_match_skimage_on_real_pairs() -> None:
    for path in set5_paths():
        full = read_image(str(path))
        w, h = full.size
        hr = SRImage(full.pixels[:, h // 2 - 48:h // 2 + 48, w // 2 - 64:w // 2 + 64])  # (3, 96, 128) centre crop
        sr = bicubic_upscale(bicubic_downscale(hr, 4), 4)
        y_hr, y_sr = rgb_to_y(hr.pixels)[0], rgb_to_y(sr.pixels)[0]  # (H, W) each
        assert psnr(y_sr, y_hr) == pytest.approx(sk_psnr(y_sr, y_hr), abs=1e-4), path.name
        assert ssim(y_sr, y_hr) == pytest.approx(sk_ssim(y_sr, y_hr), abs=1e-4), path.name
        # A (1, H, W) plane, what rgb_to_y returns, is accepted as it is.
        assert ssim(rgb_to_y(sr.pixels), rgb_to_y(hr.pixels)) == ssim(y_sr, y_hr)


def test_identical_images() -> None:
    y = torch.rand(20, 30, dtype=torch.float64) * 255
    assert psnr(y, y.clone()) == math.inf
    assert ssim(y, y.clone()) == pytest.approx(1.0, abs=1e-12)
    img = torch.rand(3, 20, 30)
    assert sr_metrics(img, img.clone(), border=2) == {"psnr": math.inf, "ssim": pytest.approx(1.0, abs=1e-12)}


def test_psnr_known_value() -> None:
    hr = torch.zeros(16, 16, dtype=torch.float64)
    sr = hr + 255.0 / 10.0  # MSE = 25.5^2 -> PSNR = 20 log10(10) = 20 dB
    assert psnr(sr, hr) == pytest.approx(20.0, abs=1e-12)
    assert psnr(sr / 255.0, hr, data_range=1.0) == pytest.approx(20.0, abs=1e-12)


# ---- sr_metrics ---------------------------------------------------------------------------------------------


def test_border_is_cropped() -> None:
    hr = torch.rand(3, 40, 50)
    sr = hr.clone()
    sr[:, :4, :] = 1 - sr[:, :4, :]  # differences only within 4 pixels of the edges
    sr[:, :, -4:] = 0.0
    sr[:, -1, :] = 1.0
    sr[:, :, 0] = 0.5
    cropped = sr_metrics(sr, hr, border=4)
    assert cropped["psnr"] == math.inf and cropped["ssim"] == pytest.approx(1.0, abs=1e-12)
    uncropped = sr_metrics(sr, hr, border=3)
    assert math.isfinite(uncropped["psnr"]) and uncropped["ssim"] < 1.0


def test_sr_metrics_equals_its_parts() -> None:
    gen = torch.Generator().manual_seed(7)
    hr = torch.rand(3, 30, 33, generator=gen)
    sr = (hr + 0.05 * torch.randn(3, 30, 33, generator=gen)).clamp(0, 1)
    y_sr, y_hr = rgb_to_y(sr)[0, 2:-2, 2:-2], rgb_to_y(hr)[0, 2:-2, 2:-2]
    assert sr_metrics(sr, hr, 2) == {"psnr": psnr(y_sr, y_hr), "ssim": ssim(y_sr, y_hr)}
    grey = sr_metrics(sr[:1], hr[:1], 0)  # greyscale works too, on Y = 255 g
    assert grey["psnr"] == psnr(rgb_to_y(sr[:1])[0], rgb_to_y(hr[:1])[0])


def test_sr_metrics_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"sr \(3, 20, 20\) and hr \(3, 20, 21\)"):
        sr_metrics(torch.rand(3, 20, 20), torch.rand(3, 20, 21), border=2)
    with pytest.raises(ValueError, match=r"sr \(1, 20, 20\) and hr \(3, 20, 20\)"):
        sr_metrics(torch.rand(1, 20, 20), torch.rand(3, 20, 20), border=2)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        sr_metrics(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20), border=2)
    # 20 - 2 * 4 = 12 >= 11 fits; 18 - 2 * 4 = 10 does not.
    sr_metrics(torch.rand(3, 20, 20), torch.rand(3, 20, 20), border=4)
    with pytest.raises(ValueError, match=r"too small to crop 4 border pixels.*at least 19x19"):
        sr_metrics(torch.rand(3, 18, 40), torch.rand(3, 18, 40), border=4)
    with pytest.raises(ValueError, match="border"):
        sr_metrics(torch.rand(3, 20, 20), torch.rand(3, 20, 20), border=-1)
    with pytest.raises(ValueError, match="same shape|differ in shape"):
        psnr(torch.rand(12, 12), torch.rand(12, 13))
    with pytest.raises(ValueError, match=f"at least {SSIM_WINDOW}x{SSIM_WINDOW}"):
        ssim(torch.rand(10, 30), torch.rand(10, 30))
    with pytest.raises(ValueError, match=r"single-channel \(H, W\)"):
        ssim(torch.rand(3, 12, 12), torch.rand(3, 12, 12))


# ---- the protocol end to end --------------------------------------------------------------------------------


def test_set5_bicubic_x4_matches_the_published_figures() -> None:
    """modcrop(4) -> bicubic x1/4 -> bicubic x4 -> Y PSNR / SSIM with 4 border pixels cropped.

    Published (MATLAB imresize): 28.42 dB / 0.8104. Measured here: 28.429 dB / 0.8111 (Y kept as float; rounding
    Y to integers as MATLAB's rgb2ycbcr on uint8 does gives 28.417 / 0.8100, both inside the tolerance).
    """
    scores = []
    for path in set5_paths():
        hr = modcrop(read_image(str(path)), 4)
        sr = bicubic_upscale(bicubic_downscale(hr, 4), 4)
        assert sr.size == hr.size and sr.bit_depth == 8
        scores.append(sr_metrics(sr.pixels, hr.pixels, border=4))
    mean_psnr = float(np.mean([s["psnr"] for s in scores]))
    mean_ssim = float(np.mean([s["ssim"] for s in scores]))
    assert mean_psnr == pytest.approx(28.42, abs=0.02), scores
    assert mean_ssim == pytest.approx(0.810, abs=0.002), scores


def test_set14_bicubic_x4_matches_the_published_figures() -> None:
    """The same protocol on Set14 (published 26.00 dB / 0.7027), whose bridge.png is greyscale: it is measured on
    its own grey values, as the published evaluation code does."""
    paths = sorted((SHARED_DATA / "sr_eval" / "Set14").glob("*.png"))
    require_or_skip(len(paths) == 14, f"Set14 not found under {SHARED_DATA / 'sr_eval'}")
    scores = {}
    for path in paths:
        hr = modcrop(read_image(str(path)), 4)
        scores[path.name] = sr_metrics(bicubic_upscale(bicubic_downscale(hr, 4), 4).pixels, hr.pixels, border=4)
    assert read_image(str(paths[[p.name for p in paths].index("bridge.png")])).channels == 1
    assert float(np.mean([s["psnr"] for s in scores.values()])) == pytest.approx(26.00, abs=0.02), scores
    assert float(np.mean([s["ssim"] for s in scores.values()])) == pytest.approx(0.7027, abs=0.002), scores
