"""Fetch the reference's published datasets and pretrained generators, safely and with an offline path.

The reference ships shell scripts (`download_pix2pix_dataset.sh`, ...) that pipe `wget` into `tar`: an
interrupted transfer leaves a truncated archive, a hostile archive can write anywhere, and a `.pth` from a
mirror is unpickled with full code execution. This package replaces them, one concern per module:

- `catalogue`: the tables of names, addresses, flags and optional sha256s (`DATASETS`, `PRETRAINED`);
- `transfer`: `download_file`, all-or-nothing, with timeouts and one-line errors naming `--from-file`;
- `checksum`: the sha256 check a catalogue hash triggers before a file is installed;
- `archives`: `extract_archive`, which checks every member before anything is written;
- `install`: `fetch_dataset` and `fetch_pretrained`, which tie those together;
- `hints`: the `train.py` / `test.py` commands printed after a download.

This face re-exports the public API (what `scripts/download.py` uses, the errors, and the building
blocks); anything else is imported from its module.
"""
from .archives import extract_archive
from .catalogue import DATASETS, PRETRAINED, DatasetEntry, PretrainedEntry, dataset_names, pretrained_names
from .hints import test_commands, train_command
from .install import fetch_dataset, fetch_pretrained
from .messages import ChecksumError, DownloadError
from .transfer import download_file

__all__ = [
    "DATASETS", "PRETRAINED", "ChecksumError", "DatasetEntry", "DownloadError", "PretrainedEntry", "dataset_names",
    "download_file", "extract_archive", "fetch_dataset", "fetch_pretrained", "pretrained_names", "test_commands",
    "train_command",
]
