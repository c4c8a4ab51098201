"""Loading a model by name for upscaling: a run trained with this toolkit, or an SR zoo model.

NAME is a folder of `--checkpoints_dir`: a run trained with this toolkit, or an SR zoo model (util/download's
SR_MODELS), which `ensure_installed` installs there first when it is missing (offline: one line saying where to
fetch the file and how to install it). The network's options come from the folder's train_opt.json through
options/ (`options.upscale_options`, the same parse and validation as test.py's; options/ calls
`ensure_installed` before it reads the file), and `load_upscaler` builds the network from them as test.py
does, with the precision test.py's `--amp auto` resolves (bf16 only where the device has it natively and the
model's bf16 outputs were measured to score as fp32's).

`--denoise STRENGTH` is Real-ESRGAN's `-dn`: the weights of a zoo model with a denoising twin (the catalogue's
`denoise_pair`: realesr-general-x4v3 and realesr-general-wdn-x4v3) are interpolated, STRENGTH * model + (1 -
STRENGTH) * twin (models/upscaler.interpolate_state_dicts); 1 is the model as published, 0 the twin.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from typing import Any, Dict, Iterator, List, Optional

import torch

from util import download
from util.download.messages import OFFLINE_HINT
from util.errors import CheckpointError, OptionError

from .. import networks
from ..training.checkpoints import load_state_dict_file
from .onnx_backend import BACKENDS, onnxruntime_generator
from .published_weights import to_toolkit_state_dict
from .tiles import backend_tile, tile_problem, tile_warnings
from .upscaler import MAX_OUTPUT_PIXELS, Upscaler, build_generator, interpolate_state_dicts

logger = logging.getLogger(__name__)


def denoise_pair(name: str, denoise: Optional[float]) -> Optional[str]:
    """The zoo model `--denoise` mixes `name` with, or None when no mixing is needed (no --denoise, or 1).

    Raises OptionError with the reason for a model that has no denoising twin, or a strength outside [0, 1].
    """
    if denoise is None:
        return None
    if not 0.0 <= denoise <= 1.0:  # also refuses NaN
        raise OptionError(f"--denoise {denoise}: the strength must be in [0, 1] (1: the model as published, 0: "
                          f"its denoising twin)")
    entry = download.SR_MODELS.get(name) if name in download.SR_MODELS else None
    pair = entry.denoise_pair if entry is not None else None
    if pair is None:
        able = [n for n in download.SR_MODELS.names() if download.SR_MODELS.get(n).denoise_pair]
        raise OptionError(f"--denoise works with {', '.join(able)}: it blends the model with its denoising twin "
                          f"(Real-ESRGAN's -dn), and {name} has none; leave --denoise out")
    return None if denoise == 1.0 else pair


def weights_path(checkpoints_dir: str, name: str, epoch: str) -> str:
    """The generator file of model `name` at `epoch` (as test.py finds it)."""
    return os.path.join(checkpoints_dir, name, f"{epoch}_net_G.pth")


def _runs(checkpoints_dir: str) -> List[str]:
    """Folders of `checkpoints_dir` that hold a saved run (train_opt.json), for the error message."""
    if not os.path.isdir(checkpoints_dir):
        return []
    return sorted(n for n in os.listdir(checkpoints_dir)
                  if os.path.isfile(os.path.join(checkpoints_dir, n, "train_opt.json")))


# Real-ESRGAN's default -dn: models with a denoising twin run half-way between the two unless told otherwise.
DEFAULT_DENOISE = 0.5


def model_name(name: str, checkpoints_dir: str) -> str:
    """The folder `-n name` means: `name` when `checkpoints_dir` has a folder of that name (a run, an installed
    model), else the zoo's name for a zoo or publisher's name (`RealESRGAN_x4plus` -> realesrgan-x4plus), else
    `name` itself (refused by `ensure_installed`, with the closest known names)."""
    if os.path.isdir(os.path.join(checkpoints_dir, name)):
        return name
    return download.sr_zoo_name(name) or name


def default_denoise(name: str) -> Optional[float]:
    """The --denoise strength when none is given: DEFAULT_DENOISE for a zoo model with a denoising twin
    (realesr-general-x4v3, as Real-ESRGAN's -dn), else None (the model as published)."""
    entry = download.SR_MODELS.get(name) if name in download.SR_MODELS else None
    return DEFAULT_DENOISE if entry is not None and entry.denoise_pair else None


def ensure_installed(name: str, checkpoints_dir: str, epoch: str) -> None:
    """Install zoo model `name` into `checkpoints_dir` when its folder lacks the weights; refuse other names.

    A folder that holds the weights is used as it is (a run, or a zoo model installed before, perhaps from a
    file). Offline, the error says where to fetch the file and the download.py command that installs it.
    """
    if os.path.isfile(weights_path(checkpoints_dir, name, epoch)):
        return
    if name not in download.SR_MODELS:
        runs = _runs(checkpoints_dir)
        close = download.closest_sr_names(name, runs)
        guess = f"did you mean {' or '.join(close)}? " if close else ""
        known = f"; saved runs there: {', '.join(runs)}" if runs else ""
        raise OptionError(f"-n {name}: no model {weights_path(checkpoints_dir, name, epoch)} and no SR zoo model of "
                          f"that name ({guess}zoo: {', '.join(download.SR_MODELS.names())}){known}")
    logger.info("installing the zoo model %s into %s", name, download.sr_model_dir(name, checkpoints_dir))
    try:
        download.install_sr_model(name, checkpoints_dir, convert=to_toolkit_state_dict)
    except download.DownloadError as e:
        entry = download.SR_MODELS.get(name)
        reason = str(e).replace(OFFLINE_HINT, "").strip().rstrip(".")
        install = f"python scripts/download.py model sr {name} --from-file PATH"
        if os.path.normpath(checkpoints_dir) != os.path.normpath("checkpoints"):
            install += f" --checkpoints_dir {checkpoints_dir}"
        raise download.DownloadError(f"the zoo model {name} is not installed and cannot be downloaded ({reason}); "
                                     f"fetch {entry.file} from {entry.page}, install it with `{install}`, then run "
                                     f"this command again") from e


@contextlib.contextmanager
def published_file_as_run(name: str, path: str) -> Iterator[str]:
    """A temporary checkpoints folder holding zoo model `name` made from a publisher's file `path`, converted and
    checked as an install would (its sha256 not compared: a fine-tuned file of that layout is welcome), removed
    on exit: upscale.py's --model_path uses a file without installing it."""
    with tempfile.TemporaryDirectory(prefix="model_path-") as checkpoints_dir:
        download.install_sr_model(name, checkpoints_dir, convert=to_toolkit_state_dict, from_file=path,
                                  progress=False, check_sha256=False)
        yield checkpoints_dir


def load_upscaler(opt: Any, denoise: Optional[float] = None, tile: Optional[int] = None,
                  tile_pad: Optional[int] = None, max_output_pixels: Optional[int] = MAX_OUTPUT_PIXELS,
                  pre_pad: int = 0, alpha_upsampler: str = "bicubic", backend: str = "torch") -> Upscaler:
    """The Upscaler of the model `opt` describes (`options.upscale_options`: name, checkpoints_dir, epoch, the
    network, device and precision), with `denoise`'s blend of its twin (installed when missing), the tiles
    given (None: the model's test defaults, opt.tile and opt.tile_pad) and the Upscaler's other settings.
    `backend` 'onnxruntime': the network runs in onnxruntime, in fp32 (models/inference/onnx_backend.py)."""
    if backend not in BACKENDS:
        raise OptionError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    pair = denoise_pair(opt.name, denoise)
    path = weights_path(opt.checkpoints_dir, opt.name, opt.epoch)
    state: Dict[str, torch.Tensor] = load_state_dict_file(path)
    source = path
    if pair is not None:
        ensure_installed(pair, opt.checkpoints_dir, opt.epoch)
        pair_path = weights_path(opt.checkpoints_dir, pair, opt.epoch)
        try:
            state = interpolate_state_dicts(state, load_state_dict_file(pair_path), denoise)  # type: ignore[arg-type]
        except ValueError as e:
            raise CheckpointError(f"--denoise cannot blend {path} with {pair_path}: {e}") from None
        source = f"{path} blended with {pair_path} (--denoise {denoise})"
    tile = backend_tile(opt.netG, opt.tile, backend, opt.scale) if tile is None else tile
    tile_pad = opt.tile_pad if tile_pad is None else tile_pad
    problem = tile_problem(tile, tile_pad)
    if problem is not None:
        raise OptionError(problem)
    for warning in tile_warnings(opt.netG, networks.generator_kwargs(opt), tile, tile_pad):
        logger.warning("%s", warning)
    net = build_generator(opt, state, source)
    device, amp, channels_last = opt.device, opt.amp, opt.channels_last
    if backend == "onnxruntime":  # the session places the work itself; tiles stay on the CPU
        net, device, amp, channels_last = onnxruntime_generator(net, opt, state), torch.device("cpu"), "none", "off"
    upscaler = Upscaler(net, opt.scale, device, amp, tile, tile_pad, channels_last, opt.edge_pad,
                        max_output_pixels=max_output_pixels, pre_pad=pre_pad, alpha_upsampler=alpha_upsampler)
    logger.info("%s: %s x%d, %s (%s)", opt.name, opt.netG, opt.scale, upscaler.describe(), backend)
    return upscaler
