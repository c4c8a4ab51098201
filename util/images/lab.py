"""sRGB <-> CIE L*a*b* (D65 white, 2-degree observer) in torch, and the colorization model's scaling of Lab.

The formulas are the CIE / IEC 61966-2-1 definitions with the constants scikit-image uses (so results match
`skimage.color.rgb2lab` / `lab2rgb`, the reference's conversion, to float rounding): written in torch so that
the data pipeline converts its crops and the model converts its outputs, batched, on whatever device they are,
without a round trip through numpy. Channels are dimension -3: (3, H, W) and (N, 3, H, W) both work.

Ranges: RGB in [0, 1]; L in [0, 100]; a and b within about [-128, 128] (sRGB colours reach |a|, |b| < 108).
The network sees L / 50 - 1 and (a, b) / 110, both in [-1, 1] (the reference's scaling).
"""
from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["AB_SCALE", "lab_to_network", "lab_to_rgb", "network_to_rgb", "rgb_to_lab"]

AB_SCALE = 110.0  # (a, b) / AB_SCALE is what the network predicts

# Linear sRGB -> XYZ (D65), and the D65 white in XYZ: scikit-image's constants.
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
               (0.212671, 0.715160, 0.072169),
               (0.019334, 0.119193, 0.950227))
_WHITE = (0.95047, 1.0, 1.08883)
_DELTA = 6.0 / 29.0  # f(t) is a cube root above DELTA**3, linear below


def _float(x: torch.Tensor) -> torch.Tensor:
    """At least float32: the cube roots and powers lose too much in half precision."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _apply_matrix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", matrix, x)  # (3, 3) x (..., 3, H, W) -> (..., 3, H, W)


def _matrices(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(RGB -> XYZ/white, its inverse), each (3, 3), as x's dtype on x's device; built in float64."""
    forward = torch.tensor(_RGB_TO_XYZ, dtype=torch.float64) / torch.tensor(_WHITE, dtype=torch.float64)[:, None]
    return forward.to(x), torch.linalg.inv(forward).to(x)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) L*a*b*."""
    rgb = _float(rgb).clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _apply_matrix(_matrices(rgb)[0], linear)  # X/Xn, Y/Yn, Z/Zn
    f = torch.where(xyz > _DELTA ** 3, xyz.clamp_min(_DELTA ** 3) ** (1.0 / 3.0), xyz / (3 * _DELTA ** 2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(-3)  # each (..., H, W)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) L*a*b* -> (..., 3, H, W) sRGB, clipped to [0, 1] (a predicted colour may lie outside sRGB)."""
    lab = _float(lab)
    L, a, b = lab.unbind(-3)  # each (..., H, W)
    fy = (L + 16.0) / 116.0
    # A negative f(Z) has no colour; clipping it to 0 is scikit-image's rule, so outputs match the reference's.
    f = torch.stack((fy + a / 500.0, fy, (fy - b / 200.0).clamp_min(0.0)), dim=-3)
    xyz = torch.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4.0 / 29.0))  # X/Xn, Y/Yn, Z/Zn
    linear = _apply_matrix(_matrices(lab)[1], xyz).clamp(0.0, 1.0)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055, linear * 12.92)
    return rgb.clamp(0.0, 1.0)


def lab_to_network(lab: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(..., 3, H, W) L*a*b* -> the network's input (..., 1, H, W) L / 50 - 1 and target (..., 2, H, W) ab / 110."""
    return lab[..., :1, :, :] / 50.0 - 1.0, lab[..., 1:, :, :] / AB_SCALE


def network_to_rgb(l_channel: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The network's (..., 1, H, W) L and (..., 2, H, W) ab (as `lab_to_network` scales them) -> (..., 3, H, W) sRGB
    in [0, 1]."""
    lab = torch.cat(((_float(l_channel) + 1.0) * 50.0, _float(ab) * AB_SCALE), dim=-3)
    return lab_to_rgb(lab)
