"""A side-by-side comparison image for super-resolution: LR, bicubic, one or more models, HR.

    python scripts/sr_side_by_side.py --image ../shared/data/sr_eval/Set14/comic.png --box 60,80,96,96 \
        --model srresnet_cpu60=SRResNet --model srgan_cpu=SRGAN --checkpoints_dir checkpoints --out docs/sr.png

The HR image is modcropped and downscaled by bicubic (the evaluation protocol, util/images), or with
`--degradation realesrgan --seed N` degraded by the same seeded draw of the real-world pipeline that
`test.py --eval_metrics --degradation realesrgan --seed N` uses (data/sr_pairs.degraded_eval_lr); each model
upscales the whole LR (in eval mode, tiled as test.py does), and the panels show the same `--box` (x, y, w, h in
HR pixels) enlarged by nearest-neighbour `--zoom` so the pixels stay visible. Each panel is captioned with its
PSNR / SSIM on the whole image (Y channel, `scale` border). Each model is built as test.py builds it: its
network options come from its `train_opt.json` (options.run_options).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional, Sequence, Tuple

import torch
from PIL import Image, ImageDraw

import models
from data.degradations import default_settings
from data.sr_pairs import degraded_eval_lr
from models.inference.resolve import super_resolve
from options import run_options
from util.cli import run_cli
from util.errors import OptionError
from util.fileio import atomic_save_pil
from util.images import (SRImage, bicubic_downscale, bicubic_upscale, modcrop, read_image, sr_metrics,
                         to_pil_8bit)

logger = logging.getLogger("sr_side_by_side")
CAPTION_HEIGHT = 30


def load_generator(checkpoints_dir: str, name: str, epoch: str) -> Tuple[torch.nn.Module, int]:
    """The run's generator as test.py builds it (options from its train_opt.json: options.run_options), loaded,
    on the CPU, in eval mode; and its scale."""
    opt = run_options(name, checkpoints_dir, ["--epoch", epoch, "--gpu_ids", "-1"], default_model="srgan")
    if not models.MODELS.get(opt.model).upscales:
        raise OptionError(f"--model {name}: a --model {opt.model} run, not a super-resolution one")
    model = models.create_model(opt)
    model.setup(opt)
    return model.netG.eval(), int(opt.scale)


def panel(image: SRImage, box: Tuple[int, int, int, int], zoom: int, caption: str) -> Image.Image:
    x, y, w, h = box
    crop = to_pil_8bit(image).convert("RGB").crop((x, y, x + w, y + h))
    crop = crop.resize((w * zoom, h * zoom), Image.Resampling.NEAREST)
    out = Image.new("RGB", (crop.width, crop.height + CAPTION_HEIGHT), "white")
    out.paste(crop, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(caption.split("\n")):
        draw.text((4, crop.height + 2 + 13 * i), line, fill="black")
    return out


def parse_box(text: str) -> Tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h in HR pixels, got {text!r}") from None
    if min(x, y) < 0 or min(w, h) < 1:
        raise argparse.ArgumentTypeError(f"--box {text}: x, y must be >= 0 and w, h >= 1")
    return x, y, w, h


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="an HR image")
    parser.add_argument("--box", type=parse_box, required=True, help="x,y,w,h of the region shown (HR pixels)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=LABEL",
                        help="a run under --checkpoints_dir and its caption; repeat for several")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--epoch", default="latest")
    parser.add_argument("--scale", type=int, default=4, help="used when no model is given")
    parser.add_argument("--zoom", type=int, default=3)
    parser.add_argument("--degradation", choices=("bicubic", "realesrgan"), default="bicubic",
                        help="how the LR is made from the HR: bicubic (the literature's protocol) or one seeded draw "
                             "of the realesrgan pipeline at its published settings, as test.py makes it")
    parser.add_argument("--seed", type=int, default=0, help="--degradation realesrgan: test.py's --seed")
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    runs = []
    for spec in args.model:
        name, _, label = spec.partition("=")
        net, scale = load_generator(args.checkpoints_dir, name, args.epoch)
        runs.append((label or name, net, scale))
    scales = {scale for _, _, scale in runs} or {args.scale}
    if len(scales) != 1:
        parser.error(f"the models upscale by different factors {sorted(scales)}; compare models of one scale")
    scale = scales.pop()
    hr = modcrop(read_image(args.image), scale)
    hr = SRImage(hr.pixels, None, hr.bit_depth)
    x, y, w, h = args.box
    if x + w > hr.size[0] or y + h > hr.size[1]:
        parser.error(f"--box {x},{y},{w},{h} leaves the {hr.size[0]}x{hr.size[1]} image")
    if args.degradation == "realesrgan":
        lr = SRImage(degraded_eval_lr(hr.pixels, scale, default_settings(), args.seed, args.image))
    else:
        lr = bicubic_downscale(hr, scale)

    def caption(label: str, image: SRImage) -> str:
        score = sr_metrics(image.pixels, hr.pixels, border=scale)
        return f"{label}\n{score['psnr']:.2f} dB / {score['ssim']:.4f}"

    nearest = SRImage(torch.nn.functional.interpolate(lr.pixels[None], scale_factor=scale,
                                                               mode="nearest")[0], None, 8)
    lr_label = "degraded LR" if args.degradation == "realesrgan" else "LR"
    panels: List[Image.Image] = [panel(nearest, args.box, args.zoom, f"{lr_label} (x{scale} nearest)")]
    bicubic = bicubic_upscale(lr, scale)
    panels.append(panel(bicubic, args.box, args.zoom, caption("bicubic", bicubic)))
    with torch.no_grad():
        for label, net, _ in runs:
            sr = super_resolve(net, lr, scale, tile=512, tile_pad=40)
            panels.append(panel(sr, args.box, args.zoom, caption(label, sr)))
    panels.append(panel(hr, args.box, args.zoom, "HR (ground truth)"))
    gap = 4
    sheet = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), panels[0].height), "white")
    offset = 0
    for p in panels:
        sheet.paste(p, (offset, 0))
        offset += p.width + gap
    atomic_save_pil(sheet, args.out)
    logger.info("wrote %s (%d panels)", args.out, len(panels))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
