"""The images a batch command is given (`scripts/upscale.py -i`: a file or a folder) and where their results go.

A folder is read as Real-ESRGAN's script reads it: its own files, not its subfolders (results are named by
file name, so two subfolders' photo.jpg would meet), sorted, hidden files skipped; files whose names are not
image names (IMG_EXTENSIONS) are left alone and counted in the log. A single file is taken whatever its
name: its contents decide whether it is an image. The output names are util/images.output_stems's, which
never collide; an output that would replace one of the inputs is refused before anything runs. A result that
is already there (`existing_result`) is a whole file: results are written atomically, under a hidden temporary
name (`.<name>.<random>.tmp`) until complete, so a run killed mid-write leaves nothing under the result's name.
"""
from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Tuple

from util.errors import DataError, OptionError
from util.fileio import file_problem
from util.images import IMG_EXTENSIONS, OUTPUT_FORMATS, is_image_file, output_stems
from util.images.outputs import requested_format

logger = logging.getLogger(__name__)


def list_inputs(path: str, recursive: bool = False) -> List[str]:
    """The images `path` names: itself when it is a file, else the entries directly inside it with image names.

    An entry with an image name that is not a readable file (a dangling link, a link loop, a named pipe, a
    link to a device, a folder called `x.png`) is listed all the same: reading it fails with what it is
    (util/images/reading.check_readable, which never opens such a path), so it is named and counted like an
    unreadable image instead of vanishing. Files whose names are not image names are left alone, named in the
    log; subfolders are read only when `recursive` (hidden ones never), in sorted order.
    """
    if os.path.isdir(path):
        return _tree_images(path) if recursive else _folder_images(path)
    if os.path.lexists(path):
        problem = file_problem(path)
        if problem is not None:
            raise DataError(f"-i {path}: it {problem}; give an image file or a folder of images", path=path)
        return [path]
    raise DataError(f"-i {path}: no such file or folder", path=path)


def _entries(path: str) -> Tuple[List[str], List[str]]:
    """The image-named entries of one folder (paths) and the names of its other files, sorted, hidden left out."""
    names = sorted(n for n in os.listdir(path) if not n.startswith("."))
    images = [os.path.join(path, n) for n in names if is_image_file(n)]
    others = [n for n in names if not is_image_file(n) and not os.path.isdir(os.path.join(path, n))]
    if others:
        shown = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
        logger.info("%s: ignoring %d file(s) whose names are not image names: %s", path, len(others), shown)
    return images, others


def _folder_images(path: str) -> List[str]:
    images, _ = _entries(path)
    if not images:
        exts = ", ".join(e.lstrip(".") for e in IMG_EXTENSIONS)
        raise DataError(f"-i {path}: no images ({exts}) in this folder (its subfolders are not read)", path=path)
    return images


def _tree_images(path: str) -> List[str]:
    """Every image-named entry under `path`, folder by folder in sorted order (links to folders not followed)."""
    images: List[str] = []
    for folder, dirs, _ in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not is_image_file(d))
        images += _entries(folder)[0]
    if not images:
        exts = ", ".join(e.lstrip(".") for e in IMG_EXTENSIONS)
        raise DataError(f"-i {path}: no images ({exts}) in this folder or its subfolders", path=path)
    return images


def plan_outputs(inputs: List[str], output_dir: str, suffix: str, root: Optional[str] = None) -> List[str]:
    """For each input, its result's path without extension (the format is chosen per image): all different.

    `root`: the folder the inputs were found under (upscale.py -r): each result keeps its input's subfolder
    under `output_dir`. Raises OptionError when a result would replace an input (e.g. `-o` the input folder with
    `--suffix ''` on a PNG): the user's originals are never overwritten.
    """
    groups: Dict[str, List[int]] = {}
    for i, path in enumerate(inputs):
        sub = os.path.relpath(os.path.dirname(path), root) if root is not None else "."
        groups.setdefault(sub, []).append(i)
    stems = [""] * len(inputs)
    for sub, indices in groups.items():
        for i, stem in zip(indices, output_stems([inputs[i] for i in indices], suffix)):
            stems[i] = os.path.join(output_dir, stem) if sub == "." else os.path.join(output_dir, sub, stem)
    originals = {os.path.realpath(p) for p in inputs}
    for stem in stems:
        for ext in (f".{fmt}" for fmt in OUTPUT_FORMATS):
            if os.path.realpath(stem + ext) in originals:
                raise OptionError(f"the result {stem + ext} would replace that input: choose another -o folder or "
                                  f"a --suffix")
    return stems


def existing_result(stem: str, requested: str, source: str) -> Optional[str]:
    """The result already written for input `source` at `stem` (plan_outputs'), or None: `<stem>.<fmt>` in the
    format asked for (`--ext`, util/images/outputs.requested_format) or in PNG, the format a result that format
    cannot hold is written in. A rerun after a crash skips these, so it only does what is missing."""
    for fmt in dict.fromkeys((requested_format(requested, source), "png")):
        if os.path.isfile(f"{stem}.{fmt}"):
            return f"{stem}.{fmt}"
    return None
