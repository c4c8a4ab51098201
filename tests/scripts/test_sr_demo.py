"""The demo's claims about image borders: scripts/sr_border.py measures a border frame, and `--edge_pad`
(models/inference/resolve.super_resolve) removes the one zero padding draws.

The demo itself (scripts/demo.sh, minutes of training) is run by hand and its figures are in docs/sr_results.md;
these tests pin what its last two steps rely on, in a second.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from helpers import ROOT, load_script

from models.inference.resolve import super_resolve
from util.images import SRImage, write_image

border = load_script("scripts/sr_border.py")


def smooth_image(h: int = 64, w: int = 80) -> torch.Tensor:
    """(3, h, w) in [0, 1]: gradients, so every region has a finite PSNR against a noisy copy."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.3 * xx * yy])


def with_frame(img: torch.Tensor, width: int, amount: float) -> torch.Tensor:
    out = img.clone()
    inside = torch.zeros(img.shape[1:], dtype=torch.bool)
    inside[width:-width, width:-width] = True
    out[:, ~inside] = (out[:, ~inside] - amount).clamp(0, 1)
    return out


def results_folder(tmp_path: Path, sr: torch.Tensor, bicubic: torch.Tensor, hr: torch.Tensor) -> Path:
    images = tmp_path / "images"
    images.mkdir(parents=True)
    for label, pixels in (("SR", sr), ("bicubic", bicubic), ("HR", hr)):
        write_image(str(images / f"001_{label}.png"), SRImage(pixels))
    return tmp_path


def test_demo_border_strip_psnr_separates_frame_and_interior():
    hr = smooth_image()
    framed = with_frame(hr, 4, 0.2)
    scores = border.region_psnr(framed, hr, strip=4)
    assert scores["interior"] == float("inf")  # untouched inside
    assert scores["border"] < 20  # a 0.2 step on the 4-pixel frame
    with pytest.raises(ValueError, match="leave an interior"):
        border.region_psnr(hr, hr, strip=40)


def test_demo_border_check_fails_on_a_frame_and_passes_without(tmp_path):
    hr = smooth_image()
    noise = torch.Generator().manual_seed(0)
    bicubic = (hr + 0.02 * torch.randn(hr.shape, generator=noise)).clamp(0, 1)  # uniformly a little off
    framed = results_folder(tmp_path / "framed", with_frame(hr, 4, 0.15), bicubic, hr)
    clean = results_folder(tmp_path / "clean", hr, bicubic, hr)
    for folder, code in ((framed, 1), (clean, 0)):
        proc = subprocess.run([sys.executable, "scripts/sr_border.py", str(folder), "--strip", "8", "--check"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert "SR - bicubic:" in proc.stdout
    rows = border.measure(str(framed), strip=8)
    gain_border, gain_inside = border.mean_gains(rows)
    assert gain_border < 0 < gain_inside


class BoxBlurUp(nn.Module):
    """A zero-padded 3x3 box blur, then nearest x2: on a flat image it darkens exactly the border (a frame)."""

    scale = 2

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False, groups=3)
        nn.init.constant_(self.conv.weight, 1 / 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, h, w) in [-1, 1], as the toolkit's generators
        return nn.functional.interpolate(self.conv((x + 1) / 2) * 2 - 1, scale_factor=2, mode="nearest")


@pytest.mark.parametrize("tile", [0, 8])
def test_demo_edge_pad_removes_the_zero_padding_frame(tile):
    flat = SRImage(torch.full((3, 20, 24), 0.6))
    net = BoxBlurUp()
    plain = super_resolve(net, flat, 2, tile=tile, tile_pad=2).pixels  # (3, 40, 48)
    padded = super_resolve(net, flat, 2, tile=tile, tile_pad=2, edge_pad=2).pixels
    assert plain.shape == padded.shape == (3, 40, 48)
    assert (plain[:, 0] - 0.6).abs().max() > 0.1  # zero padding darkens the top row
    assert torch.allclose(padded, torch.full_like(padded, 0.6), atol=1 / 255)
    # The interior, beyond the blur's reach, is the same with and without the padding.
    assert torch.equal(plain[:, 4:-4, 4:-4], padded[:, 4:-4, 4:-4])
    with pytest.raises(ValueError, match="edge_pad"):
        super_resolve(net, flat, 2, edge_pad=-1)
