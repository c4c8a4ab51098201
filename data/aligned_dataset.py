"""Paired images (pix2pix), in either of the two layouts people have them in.

(a) `dataroot/<phase>/`: each file holds A (left half) and B (right half) side by side, the reference's format;
(b) `dataroot/<phase>A/` and `dataroot/<phase>B/`: A and B in separate files paired by name.
The layout is detected from the folders, so no option is needed. Both images of a pair get the same crop and
flip. The returned 'A' is always the network input: with --direction BtoA the pair is swapped here.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Tuple

from PIL import Image

from data import sr_pairs
from data.base_dataset import DATASETS, BaseDataset, get_params, get_transform
from data.image_folder import load_image, make_dataset
from util.errors import DataError

logger = logging.getLogger(__name__)

_MAX_NAMES_SHOWN = 3


class _SideBySidePairs:
    """Layout (a): one file per pair, A left of B; the split is at w // 2 as in the reference. A file less than 2
    pixels wide has an empty A half: a DataError naming it (skipped and counted under --skip_bad_images), never
    a blank A trained on silently."""

    def __init__(self, folder: str, max_dataset_size: float) -> None:
        self.folder = folder
        self.paths = make_dataset(folder, max_dataset_size)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> Tuple[Image.Image, Image.Image, str, str]:
        path = self.paths[index]
        ab = load_image(path, "RGB")  # (H, 2W) side by side
        w, h = ab.size
        w2 = w // 2
        if w2 < 1:
            raise DataError(f"{path}: the image is {w}x{h}, too narrow to hold A and B side by side (each half must "
                            f"be at least 1 pixel wide); remove it or replace it with an A|B pair", path=path)
        return ab.crop((0, 0, w2, h)), ab.crop((w2, 0, w, h)), path, path


def _stem_key(path: str, folder: str) -> str:
    """Pairing key: the path relative to its folder without the extension (a.jpg in A pairs with a.png in B)."""
    return os.path.splitext(os.path.relpath(path, folder))[0]


def _index_by_stem(paths: List[str], folder: str) -> Dict[str, str]:
    index: Dict[str, str] = {}
    for path in paths:
        key = _stem_key(path, folder)
        if key in index:
            raise DataError(
                f"{index[key]} and {path} have the same name in {folder}: "
                "keep one file per name so A and B can be paired"
            )
        index[key] = path
    return index


def _shown(keys: List[str]) -> str:
    more = f" and {len(keys) - _MAX_NAMES_SHOWN} more" if len(keys) > _MAX_NAMES_SHOWN else ""
    return ", ".join(keys[:_MAX_NAMES_SHOWN]) + more


class _TwoFolderPairs:
    """Layout (b): `<phase>A/x.jpg` pairs with `<phase>B/x.*`; every file must have its partner."""

    def __init__(self, dir_a: str, dir_b: str, max_dataset_size: float) -> None:
        a_by_key = _index_by_stem(make_dataset(dir_a), dir_a)
        b_by_key = _index_by_stem(make_dataset(dir_b), dir_b)
        only_a = sorted(set(a_by_key) - set(b_by_key))
        only_b = sorted(set(b_by_key) - set(a_by_key))
        if only_a or only_b:
            problems = []
            if only_a:
                problems.append(f"in {dir_a} without a partner in {dir_b}: {_shown(only_a)}")
            if only_b:
                problems.append(f"in {dir_b} without a partner in {dir_a}: {_shown(only_b)}")
            raise DataError(
                f"unpaired images {'; '.join(problems)}; give A and B files the same names or remove the extra ones"
            )
        keys = sorted(a_by_key)
        if max_dataset_size < len(keys):
            keys = keys[: int(max_dataset_size)]
        self.pairs = [(a_by_key[k], b_by_key[k]) for k in keys]

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> Tuple[Image.Image, Image.Image, str, str]:
        path_a, path_b = self.pairs[index]
        return load_image(path_a, "RGB"), load_image(path_b, "RGB"), path_a, path_b


def _find_pairs(root: str, phase: str, max_dataset_size: float) -> Any:
    """Pick the layout from the folders that exist; side-by-side wins when both are present (reference)."""
    joint = os.path.join(root, phase)
    dir_a, dir_b = os.path.join(root, phase + "A"), os.path.join(root, phase + "B")
    if os.path.isdir(joint):
        return _SideBySidePairs(joint, max_dataset_size)
    if os.path.isdir(dir_a) or os.path.isdir(dir_b):
        return _TwoFolderPairs(dir_a, dir_b, max_dataset_size)  # a missing side fails with its name
    raise DataError(
        f"no paired data in {root}: put side-by-side AB images in {joint}/ "
        f"or matching A and B images in {dir_a}/ and {dir_b}/ (check --dataroot and --phase)"
    )


@DATASETS.register("aligned")
class AlignedDataset(BaseDataset):
    """Pairs {A, B} with identical crop/flip; 'A' is the network input for either --direction."""

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        self.pairs = _find_pairs(opt.dataroot, opt.phase, opt.max_dataset_size)
        self.btoa = opt.direction == "BtoA"
        # Channels of the stored A and B images: in BtoA the stored A is what the network outputs.
        self.input_nc = opt.output_nc if self.btoa else opt.input_nc
        self.output_nc = opt.input_nc if self.btoa else opt.output_nc
        self.scale: int = opt.sr_scale  # 0 unless the model upscales (data/sr_pairs)
        if self.scale and isinstance(self.pairs, _SideBySidePairs):
            raise DataError(f"super-resolution pairs differ in size, so they cannot share one side-by-side file: "
                            f"put LR images in {os.path.join(opt.dataroot, opt.phase + 'A')}/ and HR images with "
                            f"the same names in {os.path.join(opt.dataroot, opt.phase + 'B')}/")

    def __len__(self) -> int:
        return len(self.pairs)

    def source_paths(self) -> List[str]:
        """The side-by-side files, or the stored A files (B in BtoA: the network input's file names the sample)."""
        if isinstance(self.pairs, _SideBySidePairs):
            return list(self.pairs.paths)
        return [b if self.btoa else a for a, b in self.pairs.pairs]

    def __getitem__(self, index: int) -> Dict[str, Any]:
        if self.scale:
            return self._sr_item(index)
        img_a, img_b, path_a, path_b = self.pairs.load(index)
        params = get_params(self.opt, img_a.size)
        a = self._apply(get_transform(self.opt, params, grayscale=self.input_nc == 1), img_a, path_a)  # (C, H, W)
        b = self._apply(get_transform(self.opt, params, grayscale=self.output_nc == 1), img_b, path_b)  # (C, H, W)
        if a.shape[-2:] != b.shape[-2:]:
            raise DataError(
                f"{path_a} and {path_b} differ in size after preprocessing "
                f"({a.shape[-1]}x{a.shape[-2]} vs {b.shape[-1]}x{b.shape[-2]}): make A and B the same size"
            )
        if self.btoa:
            a, b, path_a, path_b = b, a, path_b, path_a
        return {"A": a, "B": b, "A_paths": path_a, "B_paths": path_b}

    def _sr_item(self, index: int) -> Dict[str, Any]:
        """An (LR, HR) pair: 'A' is the stored A (LR), 'B' the stored B (HR); BtoA swaps the folders."""
        path_lr, path_hr = self.pairs.pairs[index]
        if self.btoa:
            path_lr, path_hr = path_hr, path_lr
        if not self.opt.isTrain:
            return sr_pairs.test_sample(self.opt, path_lr, hr_path=path_hr)
        return sr_pairs.training_sample_from_pair(load_image(path_lr, "RGB"), load_image(path_hr, "RGB"), self.opt,
                                                  path_lr, path_hr)
