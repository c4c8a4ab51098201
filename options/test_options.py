"""Test flags. Testing reads images in order, unflipped, without a display, as the reference's test.py."""
from __future__ import annotations

import argparse

from .base_options import BaseOptions, Options, _require


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = BaseOptions.initialize(self, parser)
        g = parser.add_argument_group("testing")
        g.add_argument("--results_dir", type=str, default="./results/", help="saves results here.")
        g.add_argument("--aspect_ratio", type=float, default=1.0, help="aspect ratio of result images")
        g.add_argument("--phase", type=str, default="test", help="train, val, test, etc")
        g.add_argument("--eval", action="store_true", help="use eval mode during test time.")
        g.add_argument("--num_test", type=int, default=50, help="how many test images to run")
        # The model's dropout and the crop are test-time choices; a test image is used whole by default.
        parser.set_defaults(model="test")
        parser.set_defaults(load_size=parser.get_default("crop_size"))
        return parser

    def resolve(self, opt: Options) -> None:
        super().resolve(opt)
        # Test images are read in order and unflipped (the reference hard-codes these in test.py by mutating
        # opt; here they are part of the parse).
        opt.serial_batches = True
        opt.no_flip = True

    def validate(self, opt: Options) -> None:
        super().validate(opt)
        _require(opt.num_test >= 0, f"--num_test must be >= 0, got {opt.num_test}")
        _require(opt.aspect_ratio > 0, f"--aspect_ratio must be > 0, got {opt.aspect_ratio}")
