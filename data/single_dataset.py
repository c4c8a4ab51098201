"""Single images for inference (`test.py --model test`): every image under `dataroot`, recursively."""
from __future__ import annotations

import math
from typing import Any, Dict

from data.base_dataset import DATASETS, BaseDataset, get_transform
from data.image_folder import load_image, make_dataset


@DATASETS.register("single")
class SingleDataset(BaseDataset):
    """Samples {A} in file-name order, one per image under --dataroot."""

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        self.A_paths = make_dataset(opt.dataroot, getattr(opt, "max_dataset_size", math.inf))
        # Same channel rule as the reference, so its test commands give the same inputs.
        input_nc = opt.output_nc if opt.direction == "BtoA" else opt.input_nc
        self.transform = get_transform(opt, grayscale=input_nc == 1)

    def __len__(self) -> int:
        return len(self.A_paths)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        path = self.A_paths[index]
        return {"A": self._apply(self.transform, load_image(path, "RGB"), path), "A_paths": path}  # A: (C, H, W)
