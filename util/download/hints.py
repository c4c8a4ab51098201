"""The commands printed after a download: how to train on a fetched dataset or test a fetched generator.

They are built from the catalogue's flags (one source of truth), so a printed command always matches
what the entry was published for.
"""
from __future__ import annotations

import os
import shlex
from typing import Iterable, List, Union

from .catalogue import DATASETS, PRETRAINED, SR_MODELS

PathLike = Union[str, "os.PathLike[str]"]

# What `train.py` needs for a dataset of each kind (besides its own flags).
_TRAIN_MODEL = {"pix2pix": ("--model", "pix2pix"), "cyclegan": ("--model", "cycle_gan")}


def _command(script: str, flags: Iterable[str]) -> str:
    return " ".join(["python", script] + [shlex.quote(f) for f in flags])


def _is_default(path: PathLike, default: str) -> bool:
    return os.path.normpath(os.fspath(path)) == os.path.normpath(default)


def train_command(kind: str, name: str, root: PathLike = "datasets") -> str:
    """The `train.py` command for a fetched dataset (shown after the download)."""
    entry = DATASETS.get(kind).get(name)
    flags = ["--dataroot", os.path.join(os.fspath(root), name), "--name", f"{name}_{kind}",
             *_TRAIN_MODEL[kind], *entry.train_flags]
    return _command("train.py", flags)


def test_commands(kind: str, name: str, checkpoints_dir: PathLike = "checkpoints",
                  root: PathLike = "datasets") -> List[str]:
    """`test.py` commands for an installed pretrained generator: on its dataset, and (pix2pix) on single
    images of one's own, whose folder is written as `<your images>`."""
    entry = PRETRAINED.get(kind).get(name)
    common = ["--name", f"{name}_pretrained"]
    if not _is_default(checkpoints_dir, "checkpoints"):
        common += ["--checkpoints_dir", os.fspath(checkpoints_dir)]
    commands = [_command("test.py", ["--dataroot", os.path.join(os.fspath(root), entry.test_dataroot),
                                     *common, *entry.test_flags])]
    if entry.single_image_flags:
        own = _command("test.py", ["--dataroot", "IMAGES", *common, *entry.single_image_flags])
        commands.append(own.replace("IMAGES", "<your images>", 1))
    return commands


def sr_test_command(name: str, checkpoints_dir: PathLike = "checkpoints") -> str:
    """The `test.py` command for an installed SR zoo model: its folder's train_opt.json supplies the rest, so
    `--name` alone rebuilds the network (`PHOTOS`: the user's folder of images)."""
    return _command("test.py", ["--dataroot", "PHOTOS", *_sr_run_flags("--name", name, checkpoints_dir)])


def sr_upscale_command(name: str, checkpoints_dir: PathLike = "checkpoints") -> str:
    """The `scripts/upscale.py` command for an installed SR zoo model (a file or folder in, a folder out)."""
    return _command("scripts/upscale.py", ["-i", "PHOTOS", "-o", "OUTDIR",
                                           *_sr_run_flags("-n", name, checkpoints_dir)])


def _sr_run_flags(name_flag: str, name: str, checkpoints_dir: PathLike) -> List[str]:
    SR_MODELS.get(name)  # the helpful KeyError for unknown names
    flags = [name_flag, name]
    if not _is_default(checkpoints_dir, "checkpoints"):
        flags += ["--checkpoints_dir", os.fspath(checkpoints_dir)]
    return flags
