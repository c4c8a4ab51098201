"""Command-line options: parsed once, validated, frozen, and saved beside the checkpoints.

`TrainOptions().parse()` / `TestOptions().parse()` return a frozen `Options` namespace. Model- and
dataset-specific flags come from the chosen classes' `modify_commandline_options`, as in the reference.
At test time the options that decide the networks default to the run's saved ones (options/saved_run.py);
`run_options(name)` gives scripts the options test.py would build run `name`'s networks with, and
`upscale_options(name)` those to upscale with a run or an SR zoo model (installed when missing).
"""
from .base_options import BaseOptions, Options, save_options
from .saved_run import SavedRun, read_saved_options, saved_options_path
from .test_options import RunOptions, TestOptions, run_options, upscale_options
from .train_options import TrainOptions

__all__ = ["BaseOptions", "Options", "RunOptions", "SavedRun", "TestOptions", "TrainOptions", "read_saved_options",
           "run_options", "save_options", "saved_options_path",
           "upscale_options"]
