"""Test flags. Testing reads images in order, unflipped, without a display, as the reference's test.py.

A run trained with this toolkit needs no more than `--name`: the options that decide its networks come from
its saved train_opt.json unless given (options/saved_run.py). `run_options` gives scripts that build a run's
networks (evaluation, comparisons, upscaling) the same options test.py would use, without a dataset.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn, Optional, Sequence

import models
from models import inference
from util import fid
from util.errors import OptionError
from util.fileio import folder_problem

from .base_options import ArgumentParser, BaseOptions, Options, _require
from .saved_run import SavedRun, complete_args

logger = logging.getLogger(__name__)


class TestOptions(BaseOptions):
    is_train = False
    saved_run: Optional[SavedRun] = None  # set by `gather_options`: the run's saved options and what was taken

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = BaseOptions.initialize(self, parser)
        g = parser.add_argument_group("testing")
        g.add_argument("--results_dir", type=str, default="./results/", help="saves results here.")
        g.add_argument("--aspect_ratio", type=float, default=1.0, help="aspect ratio of result images")
        g.add_argument("--phase", type=str, default="test", help="train, val, test, etc")
        g.add_argument("--eval", action="store_true", help="use eval mode during test time.")
        g.add_argument("--num_test", type=int, default=50, help="how many test images to run")
        g.add_argument("--fid", action="store_true",
                       help="after testing, FID and KID of the generated images against real ones (fake_B vs real_B; "
                            "CycleGAN: both directions) on the page and in fid.json; needs torch-fidelity (README, "
                            "'Translation metrics')")
        g.add_argument("--fid_real_dir", type=str, default=None, metavar="DIR",
                       help="with --fid: score the model's A->B output against the real images in DIR instead")
        g.add_argument("--inception_weights", type=str, default=None, metavar="PATH",
                       help="with --fid: the FID Inception weights file; without it, torch's hub cache (where it is "
                            "downloaded when missing)")
        g.add_argument("--no_ema", action="store_true",
                       help="load the generators' raw weights, not the moving average a run trained with --ema_decay "
                            "saved beside them (<epoch>_net_G_ema.pth, used by default where present)")
        # The model's dropout and the crop are test-time choices; a test image is used whole by default.
        parser.set_defaults(model="test")
        parser.set_defaults(load_size=parser.get_default("crop_size"))
        return parser

    def gather_options(self, args: Optional[Sequence[str]] = None) -> tuple[ArgumentParser, argparse.Namespace]:
        """The run's saved options that `args` do not give, then `args`, parsed (see options/saved_run.py)."""
        args = list(sys.argv[1:] if args is None else args)
        try:
            args, self.saved_run = complete_args(self, args)
        except OptionError as e:
            self.make_parser().error(str(e))
        if self.saved_run is not None:
            logger.info("%s", self.saved_run.describe())
        return super().gather_options(args)

    def explain(self, message: str) -> str:
        return self.saved_run.explain(message) if self.saved_run is not None else message

    def resolve(self, opt: Options) -> None:
        super().resolve(opt)
        # Test images are read in order and unflipped (the reference hard-codes these in test.py by mutating
        # opt; here they are part of the parse).
        opt.serial_batches = True
        opt.no_flip = True

    def validate(self, opt: Options) -> None:
        super().validate(opt)
        _require(opt.num_test >= 0, f"--num_test must be >= 0, got {opt.num_test}")
        _require(0.01 <= opt.aspect_ratio <= 100, f"--aspect_ratio must be in [0.01, 100], got {opt.aspect_ratio}")
        for flag in ("fid_real_dir", "inception_weights"):
            _require(opt.fid or getattr(opt, flag) is None, f"--{flag} is an option of --fid: add --fid")
        if opt.fid:
            _require(fid.available(), f"--fid needs the torch-fidelity package: {fid.INSTALL_HINT}")
            _require(opt.fid_real_dir is None or os.path.isdir(opt.fid_real_dir),
                     f"--fid_real_dir {opt.fid_real_dir}: no such folder")
        if self.reads_data:  # test.py writes its results page there
            problem = folder_problem(opt.results_dir)
            _require(problem is None, f"--results_dir {opt.results_dir}: {problem}; choose another --results_dir")
            # A degradation makes LR images from HR ones: test images are HR only with --eval_metrics (sr_test_hr).
            degradation = getattr(opt, "degradation", "bicubic")
            _require(degradation == "bicubic" or opt.sr_test_hr,
                     f"--degradation {degradation} makes the LR from HR test images, which test.py does with "
                     f"--eval_metrics only: add --eval_metrics (the images are HR), or leave --degradation out (they "
                     f"are the LR images to upscale)")


class _RaisingParser(ArgumentParser):
    """Usage errors as OptionError: a script reports them as its own one-line error (util.cli.run_cli)."""

    def error(self, message: str) -> NoReturn:
        raise OptionError(message)


class RunOptions(TestOptions):
    """test.py's options for a script that builds a run's networks and reads no dataset (--dataroot unused)."""

    reads_data = False
    table_log_level = logging.DEBUG

    def __init__(self, default_model: Optional[str] = None) -> None:
        self.default_model = default_model

    def make_parser(self) -> ArgumentParser:
        parser = _RaisingParser(prog="test.py", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        self.initialize(parser)
        if self.default_model is not None:
            parser.set_defaults(model=self.default_model)
        return parser


def run_options(name: str, checkpoints_dir: str = "./checkpoints", args: Sequence[str] = (),
                default_model: Optional[str] = None) -> Options:
    """The options test.py would build run `name`'s networks with: its saved options (train_opt.json), with
    `args` (test.py flags, e.g. --gpu_ids -1, --epoch 5, --ngf 32) winning, validated as test.py validates
    them. `default_model`: the --model of a run without a saved model (else test.py's default, `test`).

    `models.create_model(opt)` then `model.setup(opt)` gives the loaded networks. OptionError on a bad option,
    in the saved file or in `args`.
    """
    return RunOptions(default_model).parse(["--name", name, "--checkpoints_dir", checkpoints_dir, *args])


def upscale_options(name: str, checkpoints_dir: str = "./checkpoints", epoch: str = "latest",
                    args: Sequence[str] = (), *, gpu_ids: Optional[str] = None, fp32: bool = False) -> Options:
    """The options to upscale with model `name` at `epoch`: a run trained with this toolkit or an SR zoo model,
    installed into `checkpoints_dir` first when it is missing (models.inference.ensure_installed). As
    `run_options` (`args`: test.py flags such as --gpu_ids), with srgan as the model of a folder without saved
    options; `models.inference.load_upscaler(opt)` then gives the Upscaler. OptionError for a model that does not
    upscale (a pix2pix run, say). `gpu_ids` and `fp32`: the upscaling fronts' --gpu_ids and --fp32 (--amp none)."""
    inference.ensure_installed(name, checkpoints_dir, epoch)
    fronts = (["--gpu_ids", gpu_ids] if gpu_ids is not None else []) + (["--amp", "none"] if fp32 else [])
    opt = run_options(name, checkpoints_dir, ["--epoch", epoch, *fronts, *args], default_model="srgan")
    if not models.MODELS.get(opt.model).upscales:
        raise OptionError(f"-n {name} is a --model {opt.model} run, which does not upscale: give a "
                          f"super-resolution model (--model srgan, or an SR zoo model)")
    return opt
