"""Command-line options: parsed once, validated, frozen, and saved beside the checkpoints.

`TrainOptions().parse()` / `TestOptions().parse()` return a frozen `Options` namespace. Model- and
dataset-specific flags come from the chosen classes' `modify_commandline_options`, as in the reference.
"""
from .base_options import BaseOptions, Options, save_options
from .test_options import TestOptions
from .train_options import TrainOptions

__all__ = ["BaseOptions", "Options", "TestOptions", "TrainOptions", "save_options"]
