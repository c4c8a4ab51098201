"""Colour photos for `--model colorization`: every image under `dataroot/<phase>/`, recursively.

Each image is cropped and flipped as any other (--preprocess), converted to CIE Lab (util/images/lab.py), and
split as the reference does: 'A' is the lightness L / 50 - 1 (what a grey photo holds), 'B' the colour (a, b)
/ 110 (what the network predicts). Both lie in [-1, 1]. Only colour photos are needed: the pairs are made here.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

import torchvision.transforms.functional as TF

from data.base_dataset import DATASETS, BaseDataset, get_transform
from data.image_folder import load_image, make_dataset
from util.errors import OptionError
from util.images.lab import lab_to_network, rgb_to_lab


@DATASETS.register("colorization")
class ColorizationDataset(BaseDataset):
    """Samples {A: (1, H, W) L, B: (2, H, W) ab}, one per image under --dataroot/--phase."""

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        # The channels are fixed by Lab; another model fed these would mistake ab for an image.
        if (opt.input_nc, opt.output_nc, opt.direction) != (1, 2, "AtoB"):
            raise OptionError(f"--dataset_mode colorization gives the L channel (1) as input and the ab channels (2) "
                              f"as target: it needs --input_nc 1 --output_nc 2 --direction AtoB (got {opt.input_nc}, "
                              f"{opt.output_nc}, {opt.direction}); use it with --model colorization")
        self.dir = os.path.join(opt.dataroot, opt.phase)
        self.paths = make_dataset(self.dir, opt.max_dataset_size)
        self.transform = get_transform(opt, convert=False)  # PIL in, PIL out: crop and flip only

    def __len__(self) -> int:
        return len(self.paths)

    def source_paths(self) -> List[str]:
        return list(self.paths)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        path = self.paths[index]
        rgb = TF.to_tensor(self._apply(self.transform, load_image(path, "RGB"), path))  # (3, H, W) in [0, 1]
        l_channel, ab = lab_to_network(rgb_to_lab(rgb))  # (1, H, W), (2, H, W)
        return {"A": l_channel, "B": ab, "A_paths": path, "B_paths": path}
