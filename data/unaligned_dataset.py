"""Unpaired images (CycleGAN): `dataroot/<phase>A/` and `dataroot/<phase>B/`, any sizes and counts.

Indexing follows the reference (A in order, B at random unless --serial_batches) so the same seed draws the
same B images. The returned 'A' is always the network input: with --direction BtoA the sample is swapped here.
"""
from __future__ import annotations

import os
import random
from typing import Any, Dict, List

from data.base_dataset import DATASETS, BaseDataset, get_transform
from data.image_folder import load_image, make_dataset


@DATASETS.register("unaligned")
class UnalignedDataset(BaseDataset):
    """Samples {A, B} drawn independently, each with its own random crop and flip."""

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        max_size = opt.max_dataset_size
        self.dir_A = os.path.join(opt.dataroot, opt.phase + "A")
        self.dir_B = os.path.join(opt.dataroot, opt.phase + "B")
        self.A_paths = make_dataset(self.dir_A, max_size)  # each side fails with its own folder's name
        self.B_paths = make_dataset(self.dir_B, max_size)
        self.A_size = len(self.A_paths)
        self.B_size = len(self.B_paths)
        self.btoa = opt.direction == "BtoA"
        # Channels of the images stored in <phase>A and <phase>B: in BtoA the B folder is the network input.
        input_nc = opt.output_nc if self.btoa else opt.input_nc
        output_nc = opt.input_nc if self.btoa else opt.output_nc
        self.transform_A = get_transform(opt, grayscale=input_nc == 1)
        self.transform_B = get_transform(opt, grayscale=output_nc == 1)

    def __len__(self) -> int:
        # Both domains are fully visited once per epoch: the larger one sets the length.
        return max(self.A_size, self.B_size)

    def source_paths(self) -> List[str]:
        """Sample i's network input is A_paths[i % A_size] (B_paths[i % B_size] in BtoA with --serial_batches)."""
        paths = self.B_paths if self.btoa else self.A_paths
        return [paths[i % len(paths)] for i in range(len(self))]

    def __getitem__(self, index: int) -> Dict[str, Any]:
        path_a = self.A_paths[index % self.A_size]
        index_b = index % self.B_size if self.opt.serial_batches else random.randint(0, self.B_size - 1)
        path_b = self.B_paths[index_b]
        a = self._apply(self.transform_A, load_image(path_a, "RGB"), path_a)  # (C, H, W)
        b = self._apply(self.transform_B, load_image(path_b, "RGB"), path_b)  # (C, H, W)
        if self.btoa:
            a, b, path_a, path_b = b, a, path_b, path_a
        return {"A": a, "B": b, "A_paths": path_a, "B_paths": path_b}
