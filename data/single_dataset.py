"""Single images: every image under `dataroot`, recursively.

For `test.py --model test` each is one input; for a super-resolution model (data/sr_pairs) each is an HR
image to train on, or at test time an LR image to upscale (an HR image with --eval_metrics).
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, List

from data import sr_pairs
from data.base_dataset import DATASETS, BaseDataset, get_transform
from data.degradations import add_degradation_options
from data.image_folder import load_image, make_dataset


@DATASETS.register("single")
class SingleDataset(BaseDataset):
    """Samples {A} in file-name order, one per image under --dataroot."""

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """A model that upscales (one with a --scale, added before the dataset's options) makes its LR from these
        HR images: --degradation chooses how (data/degradations)."""
        if parser.get_default("scale") is not None:
            add_degradation_options(parser)
        return parser

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        self.A_paths = make_dataset(opt.dataroot, opt.max_dataset_size)
        # Same channel rule as the reference, so its test commands give the same inputs.
        input_nc = opt.output_nc if opt.direction == "BtoA" else opt.input_nc
        self.transform = get_transform(opt, grayscale=input_nc == 1)
        self.scale: int = opt.sr_scale  # 0 unless the model upscales (data/sr_pairs)
        if self.scale and opt.isTrain and opt.preprocess == "crop" and self.A_paths:
            self.A_paths = sr_pairs.large_enough(self.A_paths, opt.crop_size)

    def __len__(self) -> int:
        return len(self.A_paths)

    def source_paths(self) -> List[str]:
        return list(self.A_paths)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        path = self.A_paths[index]
        if self.scale:
            if not self.opt.isTrain:
                return sr_pairs.test_sample(self.opt, path)
            return sr_pairs.training_sample_from_hr(load_image(path, "RGB"), self.opt, path)
        return {"A": self._apply(self.transform, load_image(path, "RGB"), path), "A_paths": path}  # A: (C, H, W)
