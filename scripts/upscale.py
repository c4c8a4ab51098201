"""Upscale photos with a super-resolution model: a file or a folder in, a folder out.

    python scripts/upscale.py -i photo.jpg -o upscaled -n realesrgan-x4plus
    python scripts/upscale.py -i photos/ -o upscaled -n realesr-general-x4v3 --denoise 0.5 --outscale 3.5
    python scripts/upscale.py -i photos/ -o upscaled -n my_srgan_run --ext png --gpu_ids -1

The flags are those of Real-ESRGAN's inference_realesrgan.py where they mean the same. `-n NAME` is a folder of
--checkpoints_dir: a run trained with this toolkit (--model srgan) or an SR zoo model (`python
scripts/download.py model sr --list`), installed there first when missing. The network is built from the
folder's train_opt.json as `test.py --name NAME` builds it (options.upscale_options, then
models.inference.load_upscaler: the inference object every front shares).

Each image is upscaled by the network's own scale, in tiles of --tile LR pixels so memory stays bounded,
then, for another --outscale (any positive number, e.g. 3.5), resized to round(W * s) x round(H * s) with
PIL's Lanczos (util/images.resize_lanczos says why Lanczos). Greyscale stays greyscale, an alpha channel is
kept (resized with bicubic on its own) and a 16-bit image stays 16-bit (models/inference/resolve.py).
The result is `<OUTDIR>/<stem>_<suffix>.<ext>`; util/images/outputs.py has the format rules (--ext auto keeps
the input's png / jpg / webp; a kind the format cannot hold is written as PNG, with a warning) and the naming
rules (photo.jpg and photo.png in one folder do not overwrite each other's result).

Precision: test.py's `--amp auto`, bf16 where the CPU (AVX512-BF16, AMX) or GPU (compute capability 8+)
computes it natively, since SRGAN's bf16 outputs score within 0.01 dB of fp32's (docs/benchmarks.md); fp32
elsewhere and with --fp32. Errors in the options: one line, exit code 2, before anything runs. An image that
cannot be read is named, skipped and counted; the others are written (each file atomically, so an interrupted
run leaves only whole files) and the exit code is 2 at the end.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Callable, List, NoReturn, Optional, Sequence

from tqdm import tqdm

from models.inference import Upscaler, denoise_pair, load_upscaler
from options import upscale_options
from util import download
from util.cli import run_cli
from util.errors import DataError, OptionError, StorageError
from util.fileio import remove_stale_temp_files, write_failure
from util.locks import FolderLock
from util.images import OUTPUT_FORMATS, can_write, choose_format, read_image, save_image
from util.images.folders import list_inputs, plan_outputs
from util.images.outputs import DEFAULT_QUALITY

logger = logging.getLogger("upscale")


class _Parser(argparse.ArgumentParser):
    """Usage errors become one `error: ...` line (via `run_cli`) with exit code 2, like every other failure."""

    def error(self, message: str) -> NoReturn:
        raise OptionError(f"{message} (see {self.prog} --help)")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number (e.g. 2, 3.5 or 4), got {text}")
    return value


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="upscale.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-i", "--input", required=True, help="an image, or a folder of images (not its subfolders)")
    p.add_argument("-o", "--output", default="results",
                   help="folder for the results, created when missing (default: %(default)s)")
    p.add_argument("-n", "--name", required=True,
                   help="the model: a folder of --checkpoints_dir (a trained srgan run) or an SR zoo model name")
    p.add_argument("--checkpoints_dir", default="./checkpoints",
                   help="where models are, and zoo models go (default: %(default)s)")
    p.add_argument("--epoch", default="latest",
                   help="which checkpoint of the run: latest or an epoch (default: %(default)s)")
    p.add_argument("-s", "--outscale", type=_positive, default=None,
                   help="final upscaling factor, any positive number (default: the network's own scale)")
    pairs = ", ".join(f"{n} with {download.SR_MODELS.get(n).denoise_pair}" for n in download.SR_MODELS.names()
                      if download.SR_MODELS.get(n).denoise_pair)
    p.add_argument("-dn", "--denoise", type=float, default=None,
                   help=f"denoising strength in [0, 1], Real-ESRGAN's -dn: blends {pairs} (default: the model as "
                        f"published, i.e. 1)")
    p.add_argument("-t", "--tile", type=_count(0), default=None,
                   help="LR tile size, so memory stays bounded; 0: the whole image at once (default: the model's, "
                        "test.py's --tile)")
    p.add_argument("--tile_pad", type=_count(0), default=None,
                   help="LR pixels of context around each tile (default: the model's, test.py's --tile_pad)")
    p.add_argument("--suffix", default="out",
                   help="added to each result's name: <stem>_<suffix>.<ext>; '' for none (default: %(default)s)")
    p.add_argument("--ext", default="auto", choices=("auto",) + OUTPUT_FORMATS,
                   help="format of the results; auto: the input's (png, jpg, webp), PNG for other inputs "
                        "(default: %(default)s)")
    p.add_argument("--quality", type=_count(1), default=DEFAULT_QUALITY,
                   help="JPEG / WebP quality, 1-100 (default: %(default)s)")
    p.add_argument("-g", "--gpu_ids", default="0",
                   help="GPU id, or -1 for the CPU, which is used when CUDA is absent (default: %(default)s)")
    p.add_argument("--fp32", action="store_true", help="compute in fp32 even where bf16 is native")
    p.add_argument("--verbose", action="store_true", help="also log the full options and every file written")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.quality > 100:
        raise OptionError(f"--quality must be in 1..100, got {args.quality}")
    if not can_write(args.ext if args.ext != "auto" else "png"):
        raise OptionError(f"--ext {args.ext}: this Pillow cannot write {args.ext.upper()} files; choose png or jpg")
    denoise_pair(args.name, args.denoise)  # --denoise's strength, and whether the model has a twin to blend
    if any(sep in args.suffix for sep in ("/", "\\", "\0")):
        raise OptionError(f"--suffix {args.suffix!r}: must not contain '/' or '\\' (it is part of a file name)")
    return args


def upscale_one(upscaler: Upscaler, path: str, stem: str, args: argparse.Namespace) -> bool:
    """Upscale `path` into `<stem>.<format>`; False, with the reason logged, when it cannot be read."""
    try:
        image = read_image(path)
    except DataError as e:
        logger.error("%s; skipped", e)
        return False
    result = upscaler(image, args.outscale)
    fmt, why_png = choose_format(result, args.ext, path)
    if why_png:
        logger.warning("%s: %s; written as PNG", path, why_png)
    save_image(f"{stem}.{fmt}", result, args.quality)
    logger.debug("%s -> %s.%s (%dx%d)", path, stem, fmt, *result.size)
    return True


def upscale_inputs(upscaler: Upscaler, inputs: List[str], args: argparse.Namespace) -> List[str]:
    """Upscale each input into args.output; the inputs that could not be read."""
    stems = plan_outputs(inputs, args.output, args.suffix)
    failed: List[str] = []
    with tqdm(total=len(inputs), unit="img", desc="upscale", disable=None) as progress:
        for path, stem in zip(inputs, stems):
            try:
                if not upscale_one(upscaler, path, stem, args):
                    failed.append(path)
            except OSError as e:  # a full disk stops the run; the results written so far are whole files
                written = progress.n - len(failed)
                raise StorageError(f"{write_failure(e, 'choose another -o')}; the {written} results written before "
                                   f"it are intact") from e
            progress.update(1)
    return failed


def upscale_all(args: argparse.Namespace) -> int:
    inputs = list_inputs(args.input)  # before the model: a wrong -i costs no install
    flags = ["--gpu_ids", args.gpu_ids] + (["--amp", "none"] if args.fp32 else [])
    opt = upscale_options(args.name, args.checkpoints_dir, args.epoch, flags)
    upscaler = load_upscaler(opt, args.denoise, args.tile, args.tile_pad)
    # One upscale.py at a time writes a folder (two would interleave their results); created here when missing.
    with FolderLock(args.output, "upscale.py", "wait for it to end, or choose another -o"):
        remove_stale_temp_files(args.output)  # left by a run killed mid-write
        failed = upscale_inputs(upscaler, inputs, args)
    written = len(inputs) - len(failed)
    logger.info("%d of %d images upscaled into %s", written, len(inputs), args.output)
    if failed:
        raise DataError(f"{len(failed)} of {len(inputs)} inputs could not be read and were skipped: "
                        f"{', '.join(failed)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    # The options table test.py logs belongs to --verbose here.
    options_log = logging.getLogger("options")
    level = options_log.level
    options_log.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return upscale_all(args)
    finally:
        options_log.setLevel(level)


if __name__ == "__main__":
    sys.exit(run_cli(main))
