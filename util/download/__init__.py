"""Fetch the reference's published datasets and pretrained generators, safely and with an offline path.

The reference ships shell scripts (`download_pix2pix_dataset.sh`, ...) that pipe `wget` into `tar`: an
interrupted transfer leaves a truncated archive, a hostile archive can write anywhere, and a `.pth` from a
mirror is unpickled with full code execution. This package replaces them, one concern per module:

- `catalogue`: the tables of names, addresses, flags and optional sha256s (`DATASETS`, `PRETRAINED`, and
  `SR_MODELS`, the super-resolution zoo);
- `transfer`: `download_file`, all-or-nothing, with timeouts and one-line errors naming `--from-file`;
- `checksum`: the sha256 check a catalogue hash triggers before a file is installed;
- `archives`: `extract_archive`, which checks every member before anything is written;
- `install`: `fetch_dataset`, `fetch_pretrained` and `install_sr_model` (a whole checkpoint folder, with
  a converter from models/ passed in), which tie those together;
- `hints`: the `train.py` / `test.py` commands printed after a download.

This face re-exports the public API (what `scripts/download.py` uses, the errors, and the building
blocks); anything else is imported from its module.
"""
from .archives import extract_archive
from .catalogue import (DATASETS, PRETRAINED, SR_MODELS, DatasetEntry, PretrainedEntry, SRModelEntry,
                        closest_sr_names, dataset_names, pretrained_names, sr_model_names, sr_model_table,
                        sr_zoo_name)
from .hints import sr_test_command, sr_upscale_command, test_commands, train_command
from .install import fetch_dataset, fetch_pretrained, install_sr_model, sr_model_dir
from .messages import ChecksumError, DownloadError
from .transfer import download_file

__all__ = [
    "DATASETS", "PRETRAINED", "SR_MODELS", "ChecksumError", "DatasetEntry", "DownloadError", "PretrainedEntry",
    "closest_sr_names", "sr_zoo_name",
    "SRModelEntry", "dataset_names", "download_file", "extract_archive", "fetch_dataset", "fetch_pretrained",
    "install_sr_model", "pretrained_names", "sr_model_dir", "sr_model_names", "sr_model_table", "sr_test_command",
    "sr_upscale_command", "test_commands", "train_command",
]
