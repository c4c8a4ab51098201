"""Flags shared by training and testing, the two-stage parse, validation and the frozen namespace."""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
from typing import Any, Dict, List, NoReturn, Optional, Sequence

import torch

import data
import models
from data.degradations import check_degradation_options
from models import networks
from models.training import acceleration
from util.device import Placement, resolve_placement
from util.errors import OptionError
from util.fileio import folder_problem

logger = logging.getLogger(__name__)

# Absurd values, refused like invalid ones: a loss weight above this (the largest default is --lambda_L1 100)
# makes its term the whole loss and pushes it towards float overflow; an init gain above this blows up activations.
MAX_LOSS_WEIGHT = 1e6
MAX_INIT_GAIN = 10.0
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
CROP_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")


class Options(argparse.Namespace):
    """Parsed options. Frozen after parsing: derived settings are `replace`d copies, never mutations."""

    def __setattr__(self, key: str, value: Any) -> None:
        if self.__dict__.get("_frozen", False):
            raise AttributeError(f"options are frozen; cannot set {key!r} (use opt.replace({key}=...))")
        super().__setattr__(key, value)

    def __delattr__(self, key: str) -> None:
        if self.__dict__.get("_frozen", False):
            raise AttributeError(f"options are frozen; cannot delete {key!r}")
        super().__delattr__(key)

    def freeze(self) -> "Options":
        self.__dict__["_frozen"] = True
        return self

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_")}

    def plain_dict(self) -> Dict[str, Any]:
        """`to_dict` with tuples as lists and the device as its name: what JSON and weights-only files hold."""
        return {k: list(v) if isinstance(v, tuple) else str(v) if isinstance(v, torch.device) else v
                for k, v in self.to_dict().items()}

    def replace(self, **changes: Any) -> "Options":
        """A frozen copy with `changes` applied (keys must already exist, to catch typos)."""
        unknown = set(changes) - set(self.to_dict())
        if unknown:
            raise AttributeError(f"unknown option(s) {sorted(unknown)}")
        return Options(**{**self.to_dict(), **changes}).freeze()


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error: `<prog>: error: <reason>` on stderr, exit code 2, and values that start with
    '-' taken as values (`join_dashed_values`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_known_args(self, args: Optional[Sequence[str]] = None, namespace: Any = None) -> Any:
        args = sys.argv[1:] if args is None else args
        return super().parse_known_args(self.join_dashed_values(list(args)), namespace)

    def join_dashed_values(self, args: List[str]) -> List[str]:
        """`--deg_noise_range -5,10` as `--deg_noise_range=-5,10`. argparse reads a token after an option as its
        value when the token is one negative number (-5, -0.5); a list such as -5,10 it takes for an unknown flag,
        and answers "expected one argument" instead of checking the value."""
        joined: List[str] = []
        tokens = iter(args)
        for token in tokens:
            action = self._option_string_actions.get(token)
            if token == "--":
                joined += [token, *tokens]
                break
            if action is not None and action.nargs is None:
                value = next(tokens, None)
                if value is not None and _DASHED_VALUE.match(value):
                    joined.append(f"{token}={value}")
                    continue
                joined += [token] if value is None else [token, value]
                continue
            joined.append(token)
        return joined


# A value that starts like a negative number: -5,10 or -.5 (never an option: those start with a letter).
_DASHED_VALUE = re.compile(r"^-\.?\d")


def dataset_size(text: str) -> float:
    """`--max_dataset_size`: a positive integer or `inf`."""
    if text.strip().lower() in ("inf", "infinity"):
        return float("inf")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'inf', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


class BaseOptions:
    """Flags of both phases. Subclasses set `is_train` and add their own flags in `initialize`."""

    is_train = False
    # Whether the parse is for a run that reads --dataroot (False: a script that only builds the networks).
    reads_data = True
    # The level the options table is logged at (a script that only builds networks keeps it out of its output).
    table_log_level = logging.INFO
    placement: Placement  # set by `parse`: this process's GPUs, device and place among torchrun's processes

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        g = parser.add_argument_group("basic")
        g.add_argument("--dataroot", type=str, default=None,
                       help="path to images (should have subfolders trainA, trainB, valA, valB, etc)")
        g.add_argument("--name", type=str, default="experiment_name",
                       help="name of the experiment; it decides where to store samples and models")
        g.add_argument("--gpu_ids", type=str, default="0", help="gpu ids: e.g. 0  0,1,2  0,2; -1 for CPU")
        g.add_argument("--checkpoints_dir", type=str, default="./checkpoints", help="models are saved here")
        g.add_argument("--seed", type=int, default=None,
                       help="seed python, numpy and torch for a reproducible run (default: not seeded)")
        g = parser.add_argument_group("model")
        g.add_argument("--model", type=str, default="cycle_gan", choices=models.MODELS.names(),
                       help="which model to use")
        g.add_argument("--input_nc", type=int, default=3,
                       help="# of input image channels: 3 for RGB and 1 for grayscale")
        g.add_argument("--output_nc", type=int, default=3,
                       help="# of output image channels: 3 for RGB and 1 for grayscale")
        g.add_argument("--ngf", type=int, default=64, help="# of gen filters in the last conv layer")
        g.add_argument("--ndf", type=int, default=64, help="# of discrim filters in the first conv layer")
        g.add_argument("--netD", type=str, default="basic", choices=networks.DISCRIMINATORS.names(),
                       help="discriminator architecture; basic is a 70x70 PatchGAN")
        g.add_argument("--netG", type=str, default="resnet_9blocks", choices=networks.GENERATORS.names(),
                       help="generator architecture")
        g.add_argument("--n_layers_D", type=int, default=3, help="only used if netD==n_layers")
        g.add_argument("--norm", type=str, default="instance", choices=networks.NORM_LAYERS.names(),
                       help="instance normalization or batch normalization")
        g.add_argument("--init_type", type=str, default="normal", choices=networks.INIT_TYPES.names(),
                       help="network initialization; architecture: the network's own, as its constructor makes "
                            "it (the default of generators that train from scratch only that way)")
        g.add_argument("--init_gain", type=float, default=0.02,
                       help="scaling factor for normal, xavier and orthogonal")
        g.add_argument("--no_dropout", action="store_true", help="no dropout for the generator")
        g = parser.add_argument_group("dataset")
        g.add_argument("--dataset_mode", type=str, default="unaligned", choices=data.DATASETS.names(),
                       help="how the dataset is organised")
        g.add_argument("--direction", type=str, default="AtoB", choices=("AtoB", "BtoA"), help="AtoB or BtoA")
        g.add_argument("--serial_batches", action="store_true",
                       help="if true, takes images in order to make batches, otherwise takes them randomly")
        g.add_argument("--num_threads", type=int, default=4, help="# threads for loading data")
        g.add_argument("--batch_size", type=int, default=1, help="input batch size")
        g.add_argument("--load_size", type=int, default=286, help="scale images to this size")
        g.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
        g.add_argument("--max_dataset_size", type=dataset_size, default=float("inf"),
                       help="maximum number of samples allowed per dataset (default: all)")
        g.add_argument("--preprocess", type=str, default="resize_and_crop", choices=PREPROCESS_MODES,
                       help="scaling and cropping of images at load time")
        g.add_argument("--no_flip", action="store_true", help="do not flip the images for data augmentation")
        g.add_argument("--skip_bad_images", action="store_true",
                       help="log and skip images that cannot be read instead of stopping (they are counted)")
        g.add_argument("--display_winsize", type=int, default=256, help="display window size for visdom and HTML")
        g = parser.add_argument_group("speed (docs/benchmarks.md has the measurements behind the defaults)")
        g.add_argument("--amp", type=str, default="auto", choices=acceleration.AMP_MODES,
                       help="mixed precision: auto is bf16 for training where the GPU/CPU computes bf16 natively, "
                            "else none (fp32); test.py's auto is fp32, whose outputs match the reference's pixel for "
                            "pixel, except for srgan (bf16 scores the same); fp16 adds loss scaling")
        g.add_argument("--channels_last", type=str, nargs="?", const="on", default="auto",
                       choices=acceleration.CHANNELS_LAST_MODES,
                       help="NHWC memory layout for the networks; auto follows the model's measured preference in "
                            "training and is off in test.py")
        g.add_argument("--compile", action="store_true",
                       help="torch.compile the networks (minutes of compiling first; pays off on long runs)")
        g = parser.add_argument_group("additional")
        g.add_argument("--epoch", type=str, default="latest",
                       help="which epoch to load? set to latest to use latest cached model")
        g.add_argument("--load_iter", type=int, default=0,
                       help="which iteration to load? if > 0, load models by iter_[load_iter]; else by [epoch]")
        g.add_argument("--verbose", action="store_true", help="if specified, print more debugging information")
        g.add_argument("--suffix", type=str, default="",
                       help="customized suffix: opt.name = opt.name + suffix, e.g. {model}_{netG}_size{load_size}")
        g.add_argument("--use_wandb", action="store_true",
                       help="train.py: also log losses, images and validation metrics to Weights & Biases (needs the "
                            "wandb package; WANDB_MODE=offline keeps the run on disk)")
        g.add_argument("--wandb_project_name", type=str, default="CycleGAN-and-pix2pix",
                       help="the Weights & Biases project of --use_wandb")
        return parser

    # ------------------------------------------------------------------ parsing
    def make_parser(self) -> ArgumentParser:
        prog = "train.py" if self.is_train else "test.py"
        parser = ArgumentParser(prog=prog, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        return self.initialize(parser)  # type: ignore[return-value]

    def build_parser(self, args: Sequence[str]) -> ArgumentParser:
        """The parser for `args`, built in stages: the chosen model, then its generator and discriminator (their
        own flags, e.g. srresnet's --n_blocks), then the dataset mode add their flags and change defaults."""
        # --help must list the chosen model's flags too, so it is answered only by the final parse.
        probe = [a for a in args if a not in ("-h", "--help")]
        parser = self.make_parser()
        known, _ = parser.parse_known_args(probe)
        parser = models.get_option_setter(known.model)(parser, self.is_train)
        known, _ = parser.parse_known_args(probe)  # the model may change the netG, netD and dataset_mode defaults
        networks.add_architecture_options(parser, known.netG, known.netD, self.is_train)
        known, _ = parser.parse_known_args(probe)
        return data.get_option_setter(known.dataset_mode)(parser, self.is_train)

    def gather_options(self, args: Optional[Sequence[str]] = None) -> tuple[ArgumentParser, argparse.Namespace]:
        """The staged parser (`build_parser`) and the namespace it parses from `args` (default: sys.argv)."""
        args = list(sys.argv[1:] if args is None else args)
        parser = self.build_parser(args)
        return parser, parser.parse_args(args, namespace=Options())

    def resolve(self, opt: Options) -> None:
        """Derived settings, computed once before the namespace is frozen."""
        opt.isTrain = self.is_train
        # What data/ needs to know about the networks, as plain values (data/ never imports models).
        for key, value in models.data_options(opt).items():
            setattr(opt, key, value)
        if opt.suffix:
            _require_plain_name("name", opt.name)  # a bad --suffix must not be reported as a bad --name
            try:
                suffix = opt.suffix.format(**vars(opt))
            except (KeyError, IndexError, ValueError, AttributeError) as e:
                raise OptionError(f"--suffix {opt.suffix!r}: cannot fill it in ({e.__class__.__name__}: {e}); use "
                                  f"option names in braces, e.g. {{model}}_{{netG}}") from None
            _require(not any(c in suffix for c in ("/", "\\", "\0")),
                     f"--suffix {opt.suffix!r} gives {suffix!r}: the suffix ends the run's folder name (--name), so it "
                     f"must not contain '/' or '\\'")
            opt.name = opt.name + "_" + suffix

    def derive(self, opt: Options) -> None:
        """The model's defaults that depend on other options (srgan: --tile_pad from the generator's receptive
        field); after validation, so they are computed from a valid combination only."""
        for key, value in models.MODELS.get(opt.model).derived_options(opt).items():
            setattr(opt, key, value)

    def resolve_devices(self, opt: Options) -> None:
        """Settings that depend on the machine: where this process computes (`self.placement`; `opt.gpu_ids`
        and `opt.device` are its ids and device), and the 'auto' speed settings, which are saved resolved
        (train_opt.json says what ran)."""
        self.placement = resolve_placement(opt.gpu_ids, training=self.is_train)
        opt.gpu_ids, opt.device = self.placement.gpu_ids, self.placement.device
        if self.placement.world.distributed and opt.norm == "syncbatch" and not opt.gpu_ids:
            raise OptionError("--norm syncbatch synchronises batch statistics between GPU processes, and PyTorch's "
                              "SyncBatchNorm has no CPU implementation: on CPU use --norm batch or instance")
        model = models.MODELS.get(opt.model)
        opt.amp = acceleration.resolve_amp(opt.amp, opt.gpu_ids, training=self.is_train,
                                           bf16_inference=model.bf16_inference)
        preferred = acceleration.nhwc_preferred(model.prefers_channels_last, model.prefers_channels_last_cpu_fp32,
                                                opt.amp, tuple(opt.gpu_ids))
        # NHWC inference where the model measured it faster with equal outputs, unless the generator's
        # registration opts out (`nhwc_inference`: rrdbnet, whose NHWC bf16 convolutions took 3.5x the memory).
        netG = getattr(opt, "netG", None)
        opts_out = netG in networks.GENERATORS and not networks.GENERATORS.meta(netG).get("nhwc_inference", True)
        opt.channels_last = acceleration.resolve_channels_last(
            opt.channels_last, preferred, training=self.is_train, norm=opt.norm,
            inference=model.channels_last_inference and not opts_out)

    def validate(self, opt: Options) -> None:
        """Raise OptionError naming the first invalid option and what is allowed."""
        validate_common(opt, self.reads_data)
        check_degradation_options(opt)  # settings of a degradation the run does not use
        models.MODELS.get(opt.model).validate_options(opt)
        networks.validate_architectures(opt)

    def parse(self, args: Optional[Sequence[str]] = None) -> Options:
        parser, opt = self.gather_options(args)
        self.parser = parser  # validation compares with its defaults: which options were given
        try:
            require_finite_floats(opt, parser)
            self.resolve(opt)
            self.validate(opt)
            self.derive(opt)
            self.resolve_devices(opt)
        except OptionError as e:
            parser.error(self.explain(str(e)))
        opt.freeze()
        logger.log(self.table_log_level, "%s", format_options(opt, parser))
        return opt

    def explain(self, message: str) -> str:
        """An option error's message as shown to the user (test-time parses say which values came from the
        saved run)."""
        return message

    def save(self, opt: Options) -> List[str]:
        """Write `<phase>_opt.txt` and `.json` beside the checkpoints (after the data has been checked)."""
        parser = getattr(self, "parser", None)
        if parser is None:  # saving options parsed by another instance: rebuild the same parser for defaults
            parser = self.build_parser(["--model", opt.model, "--netG", opt.netG, "--netD", opt.netD,
                                        "--dataset_mode", opt.dataset_mode])
        return save_options(opt, parser)


# ---------------------------------------------------------------------- helpers
def _require(condition: bool, message: str) -> None:
    if not condition:
        raise OptionError(message)


def _require_plain_name(flag: str, value: str) -> None:
    """Options that become folder or file names must not leave the folder they are joined to."""
    _require(bool(value) and value not in (".", "..") and not any(c in value for c in ("/", "\\", "\0")),
             f"--{flag} {value!r}: must be a plain name, not '.' or '..', without '/' or '\\' (it names a file or folder "
             f"inside --checkpoints_dir or --results_dir)")


def require_finite_floats(opt: Options, parser: argparse.ArgumentParser) -> None:
    """Every option parsed by `float` is a finite number. `float()` takes 'inf' and 'nan', and an infinite value
    passes checks like `--lr > 0`: the run would write its folder and fail at its first step. Each option's range
    (an absurd but finite value) is checked beside its other rules."""
    for action in parser._actions:
        value = getattr(opt, action.dest, None)
        if action.type is float and isinstance(value, float) and not math.isfinite(value):
            raise OptionError(f"--{action.dest} must be a finite number, got {value}")


def validate_common(opt: Options, reads_data: bool = True) -> None:
    """Checks that hold for every model and phase (`reads_data` False: --dataroot is not used)."""
    for flag in ("name", "epoch", "phase"):
        _require_plain_name(flag, getattr(opt, flag))
    if reads_data:
        _require(opt.dataroot is not None, "--dataroot is required: the folder that holds your images")
        _require(os.path.isdir(opt.dataroot), f"--dataroot {opt.dataroot}: no such folder")
    # Training writes the run's folder; testing reads it (and a file in its place is no run either).
    problem = folder_problem(os.path.join(opt.checkpoints_dir, opt.name), writable=opt.isTrain)
    _require(problem is None, f"--checkpoints_dir {opt.checkpoints_dir}: {problem}; choose another --checkpoints_dir")
    for flag in ("batch_size", "load_size", "crop_size", "ngf", "ndf", "n_layers_D", "display_winsize"):
        _require(getattr(opt, flag) >= 1, f"--{flag} must be >= 1, got {getattr(opt, flag)}")
    _require(opt.num_threads >= 0, f"--num_threads must be >= 0, got {opt.num_threads}")
    _require(opt.load_iter >= 0, f"--load_iter must be >= 0, got {opt.load_iter}")
    # The reference's 0.02; xavier / orthogonal gains of torch's activations are at most 5/3.
    _require(0 < opt.init_gain <= MAX_INIT_GAIN, f"--init_gain must be in (0, {MAX_INIT_GAIN:g}], got {opt.init_gain}")
    for flag, value in vars(opt).items():
        if flag.startswith("lambda_") and isinstance(value, (int, float)):
            _require(0 <= value <= MAX_LOSS_WEIGHT and math.isfinite(value),
                     f"--{flag} must be a number in [0, {MAX_LOSS_WEIGHT:g}] (a loss weight), got {value}")
    _require(opt.isTrain or not opt.use_wandb, "--use_wandb logs training runs (train.py); test.py writes its "
                                               "results to the HTML page: remove the flag")
    if opt.preprocess in ("resize_and_crop", "scale_width_and_crop"):
        _require(opt.crop_size <= opt.load_size,
                 f"--crop_size {opt.crop_size} is larger than --load_size {opt.load_size}: the crop is taken from "
                 f"the resized image; lower --crop_size or raise --load_size")
    if "channels" not in models.MODELS.meta(opt.model):  # a model registered with its own (colorization) checks them
        for flag in ("input_nc", "output_nc"):
            _require(getattr(opt, flag) in (1, 3), f"--{flag} must be 1 (grey) or 3 (RGB), got {getattr(opt, flag)}")
    upscales = networks.upscales(opt.netG)
    if upscales and not models.MODELS.get(opt.model).upscales:
        same_size = [n for n in networks.GENERATORS.names() if not networks.upscales(n)]
        raise OptionError(f"--netG {opt.netG} upscales, but --model {opt.model} needs a generator that keeps the "
                          f"size ({', '.join(same_size)})")
    if not upscales and models.MODELS.get(opt.model).upscales:
        raise OptionError(f"--netG {opt.netG} keeps the image size, but --model {opt.model} needs a generator "
                          f"that upscales")
    divisor = opt.size_divisor  # the generator's (resolved with the data options)
    if opt.preprocess in CROP_MODES:
        _require(opt.crop_size % divisor == 0,
                 f"--crop_size {opt.crop_size} cannot be taken by --netG {opt.netG}: its downsamplings need a "
                 f"multiple of {divisor} (e.g. {max(divisor, opt.crop_size // divisor * divisor)})")


def format_options(opt: Options, parser: Optional[argparse.ArgumentParser] = None) -> str:
    """The reference's options table: one `name: value [default: d]` line per option."""
    lines = ["----------------- Options ---------------"]
    for key, value in opt.to_dict().items():
        default = parser.get_default(key) if parser is not None else None
        comment = f"\t[default: {default}]" if default is not None and value != default else ""
        lines.append(f"{key:>25}: {str(value):<30}{comment}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines)


def save_options(opt: Options, parser: Optional[argparse.ArgumentParser] = None) -> List[str]:
    """Write `<phase>_opt.txt` and `<phase>_opt.json` into `checkpoints_dir/name`; return their paths."""
    from util.fileio import atomic_write_text

    folder = os.path.join(opt.checkpoints_dir, opt.name)
    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(folder, f"{opt.phase}_opt")
    atomic_write_text(stem + ".txt", format_options(opt, parser) + "\n")
    jsonable = {k: ("inf" if isinstance(v, float) and math.isinf(v) else v)
                for k, v in opt.plain_dict().items()}
    atomic_write_text(stem + ".json", json.dumps(jsonable, indent=2, sort_keys=True) + "\n")
    return [stem + ".txt", stem + ".json"]
