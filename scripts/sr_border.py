"""Measure the "frame" along the borders of super-resolved images: PSNR on a border strip against the interior.

A convolutional generator sees zero padding beyond the image edge, and one trained too briefly (or without an
interpolation skip) draws a visible frame there. The literature's metric crops `scale` border pixels, which
hides part of such a frame, so this script measures the edge itself: for every row of a `test.py --model srgan
--eval_metrics` page (`images/<stem>_SR.png`, `_bicubic.png`, `_HR.png`) the PSNR of the Y channel on the strip
of `--strip` pixels along the four edges, nothing cropped, and on the interior, for the SR output and for
bicubic upscaling. There is no frame when SR gains over bicubic in the strip as it does inside; `--check` exits 1
when the SR output is worse than bicubic in the strip.

    python scripts/sr_border.py results/demo_srgan/test_latest --strip 16 --check
"""
from __future__ import annotations

import argparse
import glob
import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from util.images import read_image, rgb_to_y

REGIONS = ("border", "interior")


def _psnr(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def region_psnr(sr: torch.Tensor, hr: torch.Tensor, strip: int) -> Dict[str, float]:
    """PSNR (dB, Y channel, peak 255) of `sr` against `hr`, both (C, H, W) in [0, 1], on the frame of `strip`
    pixels along the four edges ("border") and on the rest ("interior")."""
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr differ in shape: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    _, h, w = hr.shape
    if strip < 1 or 2 * strip >= min(h, w):
        raise ValueError(f"--strip {strip} must be >= 1 and leave an interior in a {w}x{h} image")
    err = (rgb_to_y(sr)[0] - rgb_to_y(hr)[0]) ** 2  # (H, W), float64
    inside = torch.zeros((h, w), dtype=torch.bool)
    inside[strip:h - strip, strip:w - strip] = True
    return {"border": _psnr(err[~inside].mean().item()), "interior": _psnr(err[inside].mean().item())}


def measure(results_dir: str, strip: int) -> List[Dict[str, float]]:
    """One row per HR image of a test.py results folder: {image, SR_border, SR_interior, bicubic_...}."""
    rows = []
    for hr_path in sorted(glob.glob(os.path.join(results_dir, "images", "*_HR.png"))):
        stem = hr_path[: -len("_HR.png")]
        hr = read_image(hr_path).pixels
        row: Dict[str, float] = {"image": os.path.basename(stem)}  # type: ignore[dict-item]
        for label in ("SR", "bicubic"):
            scores = region_psnr(read_image(f"{stem}_{label}.png").pixels, hr, strip)
            row.update({f"{label}_{region}": scores[region] for region in REGIONS})
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no images/*_HR.png under {results_dir}: run test.py --model srgan --eval_metrics")
    return rows


def mean_gains(rows: Sequence[Dict[str, float]]) -> Tuple[float, float]:
    """Mean SR - bicubic PSNR gain (dB) in the border strip and in the interior."""
    gain = {r: sum(row[f"SR_{r}"] - row[f"bicubic_{r}"] for row in rows) / len(rows) for r in REGIONS}
    return gain["border"], gain["interior"]


def format_table(rows: Sequence[Dict[str, float]], strip: int) -> str:
    lines = [f"PSNR (dB, Y channel) on the {strip}-pixel border strip and on the interior",
             f"{'image':<12}{'SR border':>11}{'bicubic':>9}{'SR inside':>11}{'bicubic':>9}"]
    for row in rows:
        lines.append(f"{row['image']:<12}{row['SR_border']:>11.2f}{row['bicubic_border']:>9.2f}"
                     f"{row['SR_interior']:>11.2f}{row['bicubic_interior']:>9.2f}")
    border, interior = mean_gains(rows)
    lines.append(f"SR - bicubic: {border:+.2f} dB in the border strip, {interior:+.2f} dB inside")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a test.py results folder (holding images/ and index.html)")
    parser.add_argument("--strip", type=int, default=16, help="width of the border strip in HR pixels")
    parser.add_argument("--check", action="store_true", help="exit 1 when SR is worse than bicubic in the strip")
    args = parser.parse_args(argv)
    rows = measure(args.results, args.strip)
    print(format_table(rows, args.strip))
    border, _ = mean_gains(rows)
    if args.check and border < 0:
        print(f"border frame: SR is {-border:.2f} dB worse than bicubic in the {args.strip}-pixel strip")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
