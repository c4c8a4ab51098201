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
the input's png / jpg / webp / tiff; a kind the format cannot hold is written as PNG, with a warning) and the
naming rules (photo.jpg and photo.png in one folder do not overwrite each other's result).

Precision: test.py's `--amp auto`, bf16 where the CPU (AVX512-BF16, AMX) or GPU (compute capability 8+)
computes it natively, since SRGAN's bf16 outputs score within 0.01 dB of fp32's (docs/benchmarks.md); fp32
elsewhere and with --fp32. Errors in the options: one line, exit code 2, before anything runs. An image that
cannot be read is named, skipped and counted; the others are written (each file atomically, so an interrupted
run leaves only whole files) and the exit code is 2 at the end. A result already in -o is kept (--overwrite
redoes it), so a rerun after a crash does only what is missing.

Many processes: `torchrun --nproc_per_node N [--nnodes M ...] scripts/upscale.py ...`, or `--gpu_ids 0,1`,
which starts one process per GPU itself (util/launcher.py). Rank 0 owns -o (its FolderLock; the others write
under it), splits the missing results between the ranks and prints the one summary (util/sharding.py).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import List, Optional, Sequence, Tuple

from tqdm import tqdm

from models.inference import (DEFAULT_DENOISE, MAX_OUTPUT_PIXELS, Upscaler, default_denoise, denoise_pair,
                              load_upscaler, model_name, output_size, tile_problem)
from models.inference.loading import published_file_as_run
from models.inference.onnx_backend import BACKEND_HELP, BACKENDS
from models.inference.resolve import ALPHA_UPSAMPLERS
from options import upscale_options
from util import distributed, download, launcher, sharding
from util.cli import OptionParser, at_least, positive_number, run_cli
from util.device import available_gpu_ids, parse_gpu_ids, rank_gpu_ids
from util.errors import DataError, OptionError, StorageError, ToolkitError
from util.fileio import file_problem, remove_stale_temp_files, write_failure
from util.images import OUTPUT_FORMATS, can_write, choose_format, read_image, save_image
from util.images.folders import existing_result, list_inputs, plan_outputs
from util.images.reading import peek_image
from util.images.outputs import DEFAULT_QUALITY
from util.locks import FolderLock

logger = logging.getLogger("upscale")

BUSY_ADVICE = "wait for it to end, or choose another -o"


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(prog="upscale.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-i", "--input", default="inputs",
                   help="an image, or a folder of images (its subfolders with -r) (default: %(default)s)")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="also the images in the input folder's subfolders; each result goes into the same "
                        "subfolder of -o")
    p.add_argument("-o", "--output", default="results",
                   help="folder for the results, created when missing (default: %(default)s)")
    p.add_argument("-n", "--name", "--model_name", dest="name", default="RealESRGAN_x4plus",
                   help="the model: a folder of --checkpoints_dir (a trained srgan run or an installed model), an SR "
                        "zoo name or a Real-ESRGAN name (RealESRGAN_x4plus, realesr-general-x4v3, ...); a zoo model "
                        "is installed when missing (default: %(default)s)")
    p.add_argument("--model_path", default=None, metavar="PATH",
                   help="a publisher's weights file (.pth as downloaded) to use directly, without installing it; -n "
                        "names its architecture (a zoo or Real-ESRGAN name)")
    p.add_argument("--checkpoints_dir", default="./checkpoints",
                   help="where models are, and zoo models go (default: %(default)s)")
    p.add_argument("--epoch", default="latest",
                   help="which checkpoint of the run: latest or an epoch (default: %(default)s)")
    p.add_argument("-s", "--outscale", type=positive_number, default=None,
                   help="final upscaling factor, any positive number (default: the network's own scale)")
    pairs = ", ".join(f"{n} with {download.SR_MODELS.get(n).denoise_pair}" for n in download.SR_MODELS.names()
                      if download.SR_MODELS.get(n).denoise_pair)
    p.add_argument("-dn", "--denoise", "--denoise_strength", dest="denoise", type=float, default=None,
                   help=f"denoising strength in [0, 1], Real-ESRGAN's -dn: blends {pairs}; 1 is the model as "
                        f"published (default: {DEFAULT_DENOISE}, as Real-ESRGAN's)")
    p.add_argument("-t", "--tile", type=at_least(0), default=None,
                   help="LR tile size, so memory stays bounded; 0: the whole image at once (default: the model's, "
                        "test.py's --tile)")
    p.add_argument("--tile_pad", type=at_least(0), default=None,
                   help="LR pixels of context around each tile (default: the model's, test.py's --tile_pad)")
    p.add_argument("--pre_pad", type=at_least(0), default=0,
                   help="LR pixels mirrored onto the right and bottom edges before the network and cut from the "
                        "result, Real-ESRGAN's --pre_pad (default: %(default)s)")
    p.add_argument("--alpha_upsampler", choices=ALPHA_UPSAMPLERS, default="bicubic",
                   help="how an alpha channel is upscaled: bicubic, or realesrgan (through the network as a grey "
                        "image, a second pass; Real-ESRGAN's default) (default: %(default)s)")
    p.add_argument("--max_output_pixels", type=at_least(1), default=MAX_OUTPUT_PIXELS,
                   help="refuse a result with more pixels than this, before any work (default: %(default)s, "
                        "16384 x 16384)")
    p.add_argument("--suffix", default="out",
                   help="added to each result's name: <stem>_<suffix>.<ext>; '' for none (default: %(default)s)")
    p.add_argument("--ext", default="auto", choices=("auto",) + OUTPUT_FORMATS,
                   help="format of the results; auto: the input's (png, jpg, webp), PNG for other inputs "
                        "(default: %(default)s)")
    p.add_argument("--quality", type=at_least(1), default=DEFAULT_QUALITY,
                   help="JPEG / WebP quality, 1-100 (default: %(default)s)")
    p.add_argument("-g", "--gpu_ids", "--gpu-id", dest="gpu_ids", default="0",
                   help="GPU id, or -1 for the CPU, which is used when CUDA is absent (default: %(default)s)")
    p.add_argument("--fp32", action="store_true", help="compute in fp32 even where bf16 is native")
    p.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
    p.add_argument("--num_threads", type=at_least(1), default=None,
                   help="torch's CPU threads per process (default: every core for one process; under torchrun "
                        "each process its share, the cores // the processes on the machine)")
    p.add_argument("--overwrite", action="store_true",
                   help="upscale every input again; by default a result already in -o is kept, so a rerun after "
                        "a crash does only what is missing")
    p.add_argument("--verbose", action="store_true", help="also log the full options and every file written")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.quality > 100:
        raise OptionError(f"--quality must be in 1..100, got {args.quality}")
    if not can_write(args.ext if args.ext != "auto" else "png"):
        raise OptionError(f"--ext {args.ext}: this Pillow cannot write {args.ext.upper()} files; choose png or jpg")
    args.name = model_name(args.name, args.checkpoints_dir)  # RealESRGAN_x4plus -> realesrgan-x4plus
    if args.model_path is not None:
        if args.name not in download.SR_MODELS:
            raise OptionError(f"--model_path: -n {args.name} is not a zoo or Real-ESRGAN model name, so the file's "
                              f"architecture is unknown; name it with -n (e.g. -n RealESRGAN_x4plus)")
        if args.denoise not in (None, 1.0):
            raise OptionError("--model_path with --denoise: the twin to blend with is not given; install both "
                              "models with scripts/download.py and use -n")
        args.denoise = None
    elif args.denoise is None:
        args.denoise = default_denoise(args.name)
    denoise_pair(args.name, args.denoise)  # --denoise's strength, and whether the model has a twin to blend
    problem = tile_problem(args.tile or 0)
    if problem is not None:
        raise OptionError(problem)
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
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)  # -r: the input's subfolder under -o
    fmt, why_png = choose_format(result, args.ext, path)
    if why_png:
        logger.warning("%s: %s; written as PNG", path, why_png)
    save_image(f"{stem}.{fmt}", result, args.quality)
    logger.debug("%s -> %s.%s (%dx%d)", path, stem, fmt, *result.size)
    return True


def check_sizes(inputs: List[str], scale: int, args: argparse.Namespace) -> List[int]:
    """Refuse, from the images' headers and before any network work, an --outscale that makes a result under
    one pixel or over --max_output_pixels; say which inputs are animated (their first frame is upscaled).
    Returns each input's pixel count (0 for one that cannot be read), the work util/sharding splits."""
    pixels = []
    for path in inputs:
        header = peek_image(path)
        pixels.append(0 if header is None else header[0][0] * header[0][1])
        if header is None:
            continue  # not readable: named and counted when its turn comes
        size, frames = header
        try:
            output_size(size, scale, args.outscale, args.max_output_pixels)
        except ValueError as e:
            raise OptionError(f"{path}: {e}; choose another -s/--outscale (or --max_output_pixels)") from None
        if frames > 1:
            logger.warning("%s is animated (%d frames): only its first frame is upscaled", path, frames)
    return pixels


def refuse_file_output(folder: str) -> None:
    """-o naming something that is not a folder (a file, a pipe...): one line, exit 2, before any work."""
    if os.path.lexists(folder) and not os.path.isdir(folder):
        problem = file_problem(folder) or "is a file"
        raise OptionError(f"-o {folder}: it {problem.replace(', not a file', '')}, not a folder: choose a folder for "
                          f"the results")


def prepare_output(folder: str) -> None:
    """Create the -o folder; one line, exit 1, when it cannot be (a read-only disk, no permission)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise StorageError(f"-o {folder}: cannot create the folder ({e.strerror or e}); choose another -o") from None


def upscale_inputs(upscaler: Upscaler, inputs: List[str], stems: List[str], args: argparse.Namespace,
                   show: bool = True) -> List[str]:
    """Upscale each input into its planned result; the inputs that could not be read."""
    failed: List[str] = []
    written = 0
    with tqdm(total=len(inputs), unit="img", desc="upscale", disable=None if show else True) as progress:
        for path, stem in zip(inputs, stems):
            try:
                if upscale_one(upscaler, path, stem, args):
                    written += 1
                else:
                    failed.append(path)
            except OSError as e:  # a full disk stops the run; the results written so far are whole files
                raise StorageError(f"{write_failure(e, 'choose another -o')}; the {written} results written before "
                                   f"it are intact") from e
            progress.update(1)
    return failed


def load(args: argparse.Namespace, gpu_ids: str, inputs: Optional[List[str]] = None
         ) -> Tuple[Upscaler, List[int]]:
    """The Upscaler on `gpu_ids` (this rank's), and with `inputs` their checked sizes (check_sizes), the model
    installed first if missing."""
    folder = (contextlib.nullcontext(args.checkpoints_dir) if args.model_path is None
              else published_file_as_run(args.name, args.model_path))
    with folder as checkpoints_dir:  # a --model_path file is converted into a temporary folder, gone once loaded
        opt = upscale_options(args.name, checkpoints_dir, args.epoch, gpu_ids=gpu_ids, fp32=args.fp32)
        pixels = check_sizes(inputs, opt.scale, args) if inputs is not None else []
        upscaler = load_upscaler(opt, args.denoise, args.tile, args.tile_pad, args.max_output_pixels, args.pre_pad,
                                 args.alpha_upsampler, args.backend)
    return upscaler, pixels


def plan(args: argparse.Namespace, gpu_ids: str, ranks: int, owned: contextlib.ExitStack
         ) -> Tuple[Upscaler, dict]:
    """Rank 0's part before any rank upscales: the Upscaler (the model installed first if missing), -o locked
    in `owned`, and the work: each rank's (input, result stem) pairs, the missing results split by pixels
    (util/sharding), with the count of inputs and of results already there. Paths travel, not indices, so the
    other ranks never list the folder themselves."""
    inputs = list_inputs(args.input, args.recursive)  # before the model: a wrong -i or -o costs no install
    refuse_file_output(args.output)
    stems = plan_outputs(inputs, args.output, args.suffix, args.input if args.recursive else None)
    upscaler, pixels = load(args, gpu_ids, inputs)
    prepare_output(args.output)
    # One upscale.py run at a time writes a folder (two would interleave their results); its other ranks write
    # under rank 0's lock, which they never take.
    owned.enter_context(FolderLock(args.output, "upscale.py", BUSY_ADVICE))
    remove_stale_temp_files(args.output, args.recursive)  # left by a run killed mid-write
    todo = [i for i, (path, stem) in enumerate(zip(inputs, stems))
            if args.overwrite or existing_result(stem, args.ext, path) is None]
    shares = sharding.split_by_size([pixels[i] for i in todo], ranks)
    return upscaler, {"shares": [[(inputs[todo[j]], stems[todo[j]]) for j in share] for share in shares],
                      "total": len(inputs), "kept": len(inputs) - len(todo)}


def upscale_all(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    world = distributed.world_from_env()
    gpu_ids = available_gpu_ids(parse_gpu_ids(args.gpu_ids))
    if len(gpu_ids) > 1 and not world.distributed:  # one process per GPU, which own -o through this lock
        refuse_file_output(args.output)
        prepare_output(args.output)
        with FolderLock(args.output, "upscale.py", BUSY_ADVICE) as owner:
            return launcher.relaunch(os.path.abspath(__file__), argv, len(gpu_ids), work="upscaling",
                                         **owner.for_children())
    sharding.share_threads(world, args.num_threads)
    rank_gpus = ",".join(map(str, rank_gpu_ids(gpu_ids, world))) or "-1"
    with sharding.process_group(world), contextlib.ExitStack() as owned:
        upscaler, work = None, None
        if world.is_main:
            try:
                upscaler, work = plan(args, rank_gpus, world.size, owned)
            except ToolkitError as e:
                sharding.from_main(e.exit_code)  # the others end with its code; rank 0 alone says why
                raise
        work = sharding.from_main(work)
        if isinstance(work, int):
            return work
        upscaler = sharding.in_turn(world, lambda: load(args, rank_gpus)[0], upscaler)
        mine = work["shares"][world.rank]
        try:
            failed = upscale_inputs(upscaler, [p for p, _ in mine], [s for _, s in mine], args, show=world.is_main)
            stopped = None
        except ToolkitError as e:  # a full disk: told to rank 0 before this rank ends with it
            failed, stopped = [], e
        results = sharding.gather((len(mine) - len(failed) if stopped is None else None, failed,
                                   None if stopped is None else str(stopped)))
    if stopped is not None and not (world.is_main and world.distributed):
        raise stopped  # its own line (rank 0's summary names another rank's too)
    return summary(args, world, results, work["total"], work["kept"])


def summary(args: argparse.Namespace, world: distributed.World, results: List[tuple], total: int, kept: int
            ) -> int:
    """Rank 0's one summary of every rank's (written, unreadable inputs, why it stopped); exit code 0, or an
    error for unreadable inputs or a rank that stopped. The other ranks return the same code, silently."""
    failed = [path for _, paths, _ in results for path in paths]
    stopped = [f"process {rank}: {why}" for rank, (_, _, why) in enumerate(results) if why is not None]
    code = 1 if stopped else 2 if failed else 0
    if not world.is_main:
        return code
    written = sum(n for n, _, _ in results if n is not None)
    logger.info("%d of %d images upscaled into %s%s%s", written, total, args.output,
                f" ({kept} already there, kept; --overwrite redoes them)" if kept else "",
                f" by {world.size} processes" if world.distributed else "")
    if stopped:
        raise StorageError(f"{len(stopped)} of {world.size} processes stopped early ({'; '.join(stopped)}); the "
                           f"same command again does what is missing")
    if failed:
        raise DataError(f"{len(failed)} of {total} inputs could not be read and were skipped: {', '.join(failed)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not distributed.world_from_env().is_main:
        logging.getLogger().setLevel(logging.ERROR)  # rank 0 alone logs progress and the summary
    args = parse_args(argv)
    if args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    # The options table test.py logs belongs to --verbose here.
    options_log = logging.getLogger("options")
    level = options_log.level
    options_log.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return upscale_all(args, argv)
    finally:
        options_log.setLevel(level)


if __name__ == "__main__":
    sys.exit(run_cli(main))
