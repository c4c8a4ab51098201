"""Upscale a video with a super-resolution model, frame by frame, keeping its frame rate and its sound.

    python scripts/upscale_video.py -i clip.mp4 -o upscaled -n realesr-animevideov3
    python scripts/upscale_video.py -i clip.mp4 -o upscaled/clip_x2.mp4 -n gan-translate-x4 --outscale 2 --crf 20

The model is loaded as scripts/upscale.py loads it (`-n NAME`: a run, a zoo or Real-ESRGAN name, installed when
missing; options.upscale_options, then models.inference.load_upscaler), and each frame goes through the same
Upscaler: tiles, precision and --outscale as for a photo. Decoding and encoding go through PyAV
(util/video.py), one frame in memory at a time; the audio stream is copied unchanged; the result appears under
its final name only when complete. -o is a folder (the result is `<stem>_<suffix>.mp4` in it) or a file name
ending in .mp4, .mkv or .mov. Needs the optional extra: pip install -e .[video].
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from fractions import Fraction
from typing import Optional, Sequence

from tqdm import tqdm

from models.inference import default_denoise, load_upscaler, model_name, tile_problem
from options import upscale_options
from util.cli import OptionParser, run_cli
from util.errors import OptionError
from util.fileio import file_problem
from util.video import CODECS, probe, transcode_frames

logger = logging.getLogger("upscale_video")
CONTAINERS = (".mp4", ".mkv", ".mov")


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(prog="upscale_video.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-i", "--input", required=True, help="the video file")
    p.add_argument("-o", "--output", default="results",
                   help="a folder (created when missing) or a file name ending in .mp4, .mkv or .mov "
                        "(default: %(default)s)")
    p.add_argument("-n", "--name", "--model_name", dest="name", default="realesr-animevideov3",
                   help="the model, as scripts/upscale.py's -n (default: %(default)s, Real-ESRGAN's for video)")
    p.add_argument("--checkpoints_dir", default="./checkpoints", help="where models are (default: %(default)s)")
    p.add_argument("-s", "--outscale", type=float, default=None,
                   help="final upscaling factor (default: the network's own scale)")
    p.add_argument("-dn", "--denoise", type=float, default=None, help="as scripts/upscale.py's -dn")
    p.add_argument("--fps", type=Fraction, default=None,
                   help="a constant frame rate for the result (default: each frame keeps its time); every frame "
                        "is kept")
    p.add_argument("--codec", choices=tuple(CODECS), default="libx264",
                   help="libx264 (H.264, yuv420p) or ffv1 (lossless) (default: %(default)s)")
    p.add_argument("--crf", type=int, default=18, help="libx264's quality, 0 (lossless) to 51 (default: %(default)s)")
    p.add_argument("-t", "--tile", type=int, default=None, help="LR tile size (default: the model's)")
    p.add_argument("--tile_pad", type=int, default=None, help="context around each tile (default: the model's)")
    p.add_argument("--suffix", default="out", help="the result is <stem>_<suffix>.mp4 in a folder -o")
    p.add_argument("-g", "--gpu_ids", "--gpu-id", dest="gpu_ids", default="0", help="GPU id, or -1 for the CPU")
    p.add_argument("--fp32", action="store_true", help="compute in fp32 even where bf16 is native")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    problem = file_problem(args.input)
    if problem is not None:
        raise OptionError(f"-i {args.input}: {problem}")
    if not 0 <= args.crf <= 51:
        raise OptionError(f"--crf must be in 0..51, got {args.crf}")
    if args.fps is not None and not args.fps > 0:
        raise OptionError(f"--fps must be positive, got {args.fps}")
    problem = tile_problem(args.tile or 0, args.tile_pad)
    if problem is not None:
        raise OptionError(problem)
    args.name = model_name(args.name, args.checkpoints_dir)
    if args.denoise is None:
        args.denoise = default_denoise(args.name)
    return args


def destination(args: argparse.Namespace) -> str:
    """The result's path: -o itself when it names a video file, else `<-o>/<stem>_<suffix>.mp4`."""
    if os.path.splitext(args.output)[1].lower() in CONTAINERS:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        return args.output
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.input))[0]
    return os.path.join(args.output, f"{stem}_{args.suffix}.mp4" if args.suffix else f"{stem}.mp4")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    clip = probe(args.input)  # before the model: a file that is not a video costs no install
    logging.getLogger("options").setLevel(logging.WARNING)  # the options table test.py logs is not news here
    upscaler = load_upscaler(upscale_options(args.name, args.checkpoints_dir, "latest", gpu_ids=args.gpu_ids,
                                             fp32=args.fp32), args.denoise,
                             args.tile, args.tile_pad)
    try:
        size = upscaler.result_size((clip.width, clip.height), args.outscale)  # (W', H') of every frame
    except ValueError as e:
        raise OptionError(f"{args.input}: {e}; choose another -s/--outscale") from None
    target = destination(args)

    with tqdm(total=clip.frames or None, unit="frame", desc="upscale", disable=None) as progress:
        convert = functools.partial(upscaler.upscale_rgb8, outscale=args.outscale)  # (H, W, 3) -> (H', W', 3) uint8
        written = transcode_frames(args.input, target, convert, size, args.codec, args.crf, args.fps,
                                   on_frame=lambda: progress.update(1))
    logger.info("%d frames at %s fps%s%s -> %s", written, args.fps or clip.fps,
                ", audio copied" if clip.has_audio else "",
                f", shown turned by {clip.rotation} degrees as the source" if clip.rotation else "", target)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
