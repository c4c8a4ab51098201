"""A grid of what `--degradation realesrgan` makes from one photo: the HR crop, its bicubic LR, and seeded draws.

    python scripts/degradation_grid.py ../shared/data/sr_eval/Set14/baboon.png docs/degradation_grid.png
    python scripts/degradation_grid.py PHOTO OUT --crop 256 --scale 4 --draws 7 --seed 0

Each LR is shown enlarged to the HR size by pixel repetition (nearest), so blur, noise, ringing and JPEG blocks
stay visible as they are. The draws use the published settings (data/degradations/options.py) and the seeds
seed, seed + 1, ...; the labels name them.
"""
from __future__ import annotations

import argparse
import sys
from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from data.degradations import default_settings, degrade, sample_rng
from util.images import read_image
def to_pil(img: torch.Tensor) -> Image.Image:
    return Image.fromarray((img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), "RGB")


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photo")
    parser.add_argument("out")
    parser.add_argument("--crop", type=int, default=256, help="centre crop of the photo (HR), a multiple of --scale")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.crop % args.scale or args.draws < 1:
        parser.error("--crop must be a multiple of --scale and --draws >= 1")
    pixels = read_image(args.photo).pixels
    pixels = pixels.expand(3, -1, -1) if pixels.shape[0] == 1 else pixels  # (3, H, W)
    _, h, w = pixels.shape
    if min(h, w) < args.crop:
        parser.error(f"{args.photo} is {w}x{h}, smaller than --crop {args.crop}")
    top, left = (h - args.crop) // 2, (w - args.crop) // 2
    hr = pixels[:, top:top + args.crop, left:left + args.crop]

    def enlarge(lr: torch.Tensor) -> torch.Tensor:
        return F.interpolate(lr[None], scale_factor=args.scale, mode="nearest")[0]

    small = to_pil(hr).resize((args.crop // args.scale,) * 2, Image.Resampling.BICUBIC)
    bicubic = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255).permute(2, 0, 1)  # (3, h, w)
    tiles = [("HR", hr), ("bicubic LR", enlarge(bicubic))]
    settings = default_settings()
    for k in range(args.draws):
        seed = args.seed + k
        tiles.append((f"realesrgan seed {seed}", enlarge(degrade(hr, args.scale, settings, sample_rng(seed)))))
    columns = min(4, len(tiles))
    rows = -(-len(tiles) // columns)
    label = 16
    grid = Image.new("RGB", (columns * args.crop, rows * (args.crop + label)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (name, tile) in enumerate(tiles):
        x, y = (i % columns) * args.crop, (i // columns) * (args.crop + label)
        draw.text((x + 4, y + 2), name, fill="black")
        grid.paste(to_pil(tile), (x, y + label))
    grid.save(args.out)
    print(f"{len(tiles)} tiles in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
