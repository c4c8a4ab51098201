"""Put a catalogue entry where training and testing look for it: a dataset folder or `latest_net_G.pth`.

Both fetchers check what is already there before transferring anything (a refusal costs no download),
take the file from the network, a mirror (`url`) or this machine (`from_file`, the offline path), verify
it (sha256 when the catalogue knows it; for generators also that it is a plain state_dict, loaded with
`weights_only=True` so no code runs) and only then move it into place.
"""
from __future__ import annotations

import logging
import os
import urllib.parse
from typing import Optional, Union

from ..errors import CheckpointError, DataError
from .archives import extract_archive
from .catalogue import DATASETS, PRETRAINED
from .checksum import verify_sha256
from .messages import one_line
from .transfer import download_file

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def fetch_dataset(kind: str, name: str, root: PathLike = "datasets", *, from_file: Optional[PathLike] = None,
                  url: Optional[str] = None, overwrite: bool = False, timeout: float = 60,
                  progress: bool = True) -> str:
    """Put the published dataset `name` of `kind` ('pix2pix' or 'cyclegan') in `<root>/<name>`; return it.

    `from_file` uses an archive already on this machine (the offline path); `url` replaces the published
    address (a mirror). Unknown names raise `KeyError` listing the valid ones. The existing folder is
    checked before downloading, so a refusal costs no transfer. When the entry carries a sha256, the
    archive (downloaded or `from_file`) must match it before anything is extracted. The downloaded archive
    is deleted after extraction; a `from_file` archive is left alone.
    """
    entry = DATASETS.get(kind).get(name)
    root = os.fspath(root)
    target = os.path.join(root, name)
    if entry.restricted and from_file is None and url is None:
        raise DataError(entry.restricted)
    if os.path.lexists(target) and not overwrite:
        raise DataError(f"{target} already exists: delete it first to download {name} again")
    if from_file is not None:
        verify_sha256(from_file, entry.sha256)
        extract_archive(from_file, root, overwrite=overwrite, top=name)
    else:
        suffix = os.path.splitext(urllib.parse.urlsplit(entry.url).path)[1]
        archive = os.path.join(root, f".{name}.download{suffix}")
        try:
            download_file(url or entry.url, archive, timeout=timeout, progress=progress, sha256=entry.sha256)
            extract_archive(archive, root, overwrite=overwrite, top=name)
        finally:
            if os.path.lexists(archive):
                os.unlink(archive)
    logger.debug("dataset %s is in %s", name, target)
    return target


def verify_state_dict(path: PathLike, display_name: Optional[str] = None) -> int:
    """Check that `path` is a plain network state_dict; return its number of tensors.

    `weights_only=True` makes `torch.load` refuse anything but tensors and plain containers, so a crafted
    file cannot run code; the dict-of-tensors check catches whole pickled models, optimizer states and
    unrelated files before they are installed where `test.py` would load them.
    """
    import torch  # local import: fetching datasets does not need torch

    shown = display_name or os.fspath(path)
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to load a user's file is the file's problem
        raise CheckpointError(f"{shown} is not a network state_dict that can be loaded safely "
                              f"(weights_only=True): {one_line(e, 200)}") from None
    if not isinstance(state, dict) or not state:
        held = "an empty dict" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise CheckpointError(f"{shown} is not a network state_dict: it holds {held}, expected parameter "
                              "names mapped to tensors")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{shown} is not a network state_dict: {bad[0]!r} holds a "
                              f"{type(state[bad[0]]).__name__}, not a tensor")
    return len(state)


def pretrained_dir(name: str, checkpoints_dir: PathLike = "checkpoints") -> str:
    """`<checkpoints_dir>/<name>_pretrained`: the `--name` the reference uses for its published models."""
    return os.path.join(os.fspath(checkpoints_dir), f"{name}_pretrained")


def fetch_pretrained(kind: str, name: str, checkpoints_dir: PathLike = "checkpoints", *,
                     from_file: Optional[PathLike] = None, url: Optional[str] = None, timeout: float = 60,
                     progress: bool = True) -> str:
    """Install the published generator `name` of `kind` as `<checkpoints_dir>/<name>_pretrained/latest_net_G.pth`.

    Downloads (or copies `from_file`) to a temporary name in that folder, checks its sha256 when the entry
    carries one, verifies it with `verify_state_dict`, and only then renames it onto `latest_net_G.pth`
    (replacing an older copy); a refused file is deleted. Returns the path of the installed file.
    """
    entry = PRETRAINED.get(kind).get(name)
    folder = pretrained_dir(name, checkpoints_dir)
    dest = os.path.join(folder, "latest_net_G.pth")
    source = os.fspath(from_file) if from_file is not None else (url or entry.url)
    if from_file is not None and not os.path.isfile(source):
        raise CheckpointError(f"--from-file {source}: no such file")
    staging = os.path.join(folder, ".latest_net_G.pth.download")
    created = not os.path.isdir(folder)
    installed = False
    try:
        download_file(source, staging, timeout=timeout, progress=progress, sha256=entry.sha256)
        count = verify_state_dict(staging, display_name=source)
        os.replace(staging, dest)
        installed = True
    finally:
        if os.path.lexists(staging):
            os.unlink(staging)
        if created and not installed:  # do not leave an empty <name>_pretrained behind
            try:
                os.rmdir(folder)
            except OSError:
                pass
    logger.debug("%s generator %s (%d tensors) is in %s", kind, name, count, dest)
    return dest
