"""The images a batch command is given (`scripts/upscale.py -i`: a file or a folder) and where their results go.

A folder is read as Real-ESRGAN's script reads it: its own files, not its subfolders (results are named by
file name, so two subfolders' photo.jpg would meet), sorted, hidden files skipped; files whose names are not
image names (IMG_EXTENSIONS) are left alone and counted in the log. A single file is taken whatever its
name: its contents decide whether it is an image. The output names are util/images.output_stems's, which
never collide; an output that would replace one of the inputs is refused before anything runs.
"""
from __future__ import annotations

import logging
import os
from typing import List

from util.errors import DataError, OptionError
from util.images import IMG_EXTENSIONS, OUTPUT_FORMATS, is_image_file, output_stems

logger = logging.getLogger(__name__)


def list_inputs(path: str) -> List[str]:
    """The image files `path` names: itself when it is a file, else the image files directly inside it."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise DataError(f"-i {path}: no such file or folder", path=path)
    names = sorted(n for n in os.listdir(path) if not n.startswith(".") and os.path.isfile(os.path.join(path, n)))
    images = [os.path.join(path, n) for n in names if is_image_file(n)]
    others = len(names) - len(images)
    if others:
        logger.info("%s: ignoring %d file(s) whose names are not image names", path, others)
    if not images:
        exts = ", ".join(e.lstrip(".") for e in IMG_EXTENSIONS)
        raise DataError(f"-i {path}: no images ({exts}) in this folder (its subfolders are not read)", path=path)
    return images


def plan_outputs(inputs: List[str], output_dir: str, suffix: str) -> List[str]:
    """For each input, its result's path without extension (the format is chosen per image): all different.

    Raises OptionError when a result would replace an input (e.g. `-o` the input folder with `--suffix ''`
    on a PNG): the user's originals are never overwritten.
    """
    stems = [os.path.join(output_dir, stem) for stem in output_stems(inputs, suffix)]
    originals = {os.path.realpath(p) for p in inputs}
    for stem in stems:
        for ext in (f".{fmt}" for fmt in OUTPUT_FORMATS):
            if os.path.realpath(stem + ext) in originals:
                raise OptionError(f"the result {stem + ext} would replace that input: choose another -o folder or "
                                  f"a --suffix")
    return stems
