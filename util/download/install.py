"""Put a catalogue entry where training and testing look for it: a dataset folder or `latest_net_G.pth`.

The fetchers check what is already there before transferring anything (a refusal costs no download),
take the file from the network, a mirror (`url`) or this machine (`from_file`, the offline path), verify
it (sha256 when the catalogue knows it; for generators also that it is a plain state_dict, loaded with
`weights_only=True` so no code runs) and only then move it into place.

`install_sr_model` makes a whole checkpoint folder of an SR zoo model: the weights in the toolkit's layout
and the train_opt.json that lets `test.py --name NAME` rebuild the network. Converting a publisher's file
needs the architectures, which live in models/ (util never imports models), so the caller passes the
converter in: `models.inference.published_weights.to_toolkit_state_dict`.
"""
from __future__ import annotations

import json
import logging
import os
import urllib.parse
from typing import Any, Callable, Dict, Mapping, Optional, Union

from ..errors import CheckpointError, DataError
from ..fileio import atomic_save_torch, atomic_write_text, file_problem, load_torch_weights_only
from ..locks import LOCK_FILE, FolderLock
from .archives import extract_archive
from .catalogue import DATASETS, PRETRAINED, SR_MODELS, SRModelEntry
from .checksum import file_sha256, verify_sha256
from .messages import DownloadError
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
        verify_sha256(local_file(from_file), entry.sha256)
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


def local_file(path: PathLike) -> str:
    """`path` as given to --from-file, when it is a readable regular file; else a CheckpointError saying what it is
    (a folder, a named pipe, a device such as /dev/zero, a dangling link...), before anything reads it."""
    path = os.fspath(path)
    problem = file_problem(path)
    if problem is not None:
        raise CheckpointError(f"--from-file {path}: {'it ' if problem.startswith('is ') else ''}{problem}; give the "
                              f"downloaded file itself")
    return path


def load_weights_only(path: PathLike, shown: str) -> object:
    """`torch.load` with `weights_only=True`: tensors and plain containers only, so a crafted pickle cannot run
    code. Any failure (a payload, a truncated download, an HTML page) is a one-line CheckpointError naming `shown`."""
    return load_torch_weights_only(path, f"{shown} is not a network state_dict that can be loaded safely "
                                         f"(weights_only=True)")


def verify_state_dict(path: PathLike, display_name: Optional[str] = None) -> int:
    """Check that `path` is a plain network state_dict; return its number of tensors.

    `weights_only=True` makes `torch.load` refuse anything but tensors and plain containers, so a crafted
    file cannot run code; the dict-of-tensors check catches whole pickled models, optimizer states and
    unrelated files before they are installed where `test.py` would load them.
    """
    import torch  # local import: fetching datasets does not need torch

    shown = display_name or os.fspath(path)
    state = load_weights_only(path, shown)
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
    if from_file is not None:
        local_file(source)
    staging = os.path.join(folder, ".latest_net_G.pth.download")
    # One install at a time; the lock removes the folder it created when nothing was installed.
    with FolderLock(folder, f"an install of the generator {name}", "wait for it to finish"):
        try:
            download_file(source, staging, timeout=timeout, progress=progress, sha256=entry.sha256)
            count = verify_state_dict(staging, display_name=source)
            os.replace(staging, dest)
        finally:
            if os.path.lexists(staging):
                os.unlink(staging)
    logger.debug("%s generator %s (%d tensors) is in %s", kind, name, count, dest)
    return dest


# ------------------------------------------------------------------------------------- the SR model zoo

# The files of a run's checkpoint folder that test.py reads (options/base_options.save_options writes
# `<phase>_opt.json`; models/checkpoints the `<epoch>_net_<name>.pth`).
TRAIN_OPTIONS_FILE = "train_opt.json"
NETWORK_FILE = "latest_net_G.pth"
SR_STAGING_FILE = ".source.download"  # the transfer, until it is checked and converted
# util/download/install.py -> the repository root, where bundled zoo files live.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (what torch.load returned, the entry, the source as shown to the user) -> the state_dict in the toolkit's
# layout; raises CheckpointError naming the first key that does not fit.
Converter = Callable[[object, SRModelEntry, str], Mapping[str, Any]]


def sr_model_dir(name: str, checkpoints_dir: PathLike = "checkpoints") -> str:
    """`<checkpoints_dir>/<name>`: a zoo model is a run like any other, so `--name NAME` finds it."""
    return os.path.join(os.fspath(checkpoints_dir), name)


def sr_train_options(entry: SRModelEntry, source: str, sha256: str) -> Dict[str, Any]:
    """The train_opt.json of an installed zoo model: the options that rebuild its network (read back by
    options/ at test time) and, under `zoo_*`, which file it was made from."""
    return {"model": "srgan", "name": entry.name, "netG": entry.netG, "scale": entry.scale, "norm": "none",
            "input_nc": 3, "output_nc": 3, **entry.options,
            "zoo_model": entry.name, "zoo_file": entry.file, "zoo_source": source, "zoo_sha256": sha256}


def _sr_source(entry: SRModelEntry, from_file: Optional[PathLike], url: Optional[str]) -> str:
    """Where the file comes from: --from-file, a mirror, the repository (bundled), or the publisher."""
    if from_file is not None:
        return local_file(from_file)
    if url is not None:
        return url
    if entry.bundled:
        path = os.path.join(REPOSITORY, *entry.bundled.split("/"))
        if not os.path.isfile(path):
            raise CheckpointError(f"{entry.name} ships with the repository as {entry.bundled}, which is missing "
                                  f"from this checkout: restore it, or pass a copy with --from-file PATH")
        return path
    if entry.url is None:
        raise DownloadError(f"{entry.name}: {entry.file} has no direct download address: fetch it from "
                            f"{entry.page} and pass it with --from-file PATH")
    return entry.url


def _refuse_foreign_folder(folder: str, name: str) -> None:
    """Never overwrite a training run (or the reference's checkpoint) that happens to bear a zoo name. Called
    under the folder's lock: its lock file, and a staging file an install killed mid-transfer left, are ours."""
    if not os.path.lexists(folder):
        return
    options = os.path.join(folder, TRAIN_OPTIONS_FILE)
    try:
        with open(options, encoding="utf-8") as fh:
            ours = json.load(fh).get("zoo_model") == name
    except (OSError, ValueError, AttributeError):
        ours = False
    if not os.path.isdir(folder) or (not ours and set(os.listdir(folder)) - {LOCK_FILE, SR_STAGING_FILE}):
        raise CheckpointError(f"{folder} already holds something other than the zoo model {name} (a training run?): "
                              f"remove it, or install into another --checkpoints_dir")


def install_sr_model(name: str, checkpoints_dir: PathLike = "checkpoints", *, convert: Converter,
                     from_file: Optional[PathLike] = None, url: Optional[str] = None, timeout: float = 60,
                     progress: bool = True, check_sha256: bool = True) -> str:
    """Install the SR zoo model `name` as the checkpoint folder `<checkpoints_dir>/<name>/`; return the folder.

    The file (downloaded, `from_file`, a mirror `url`, or the repository's copy for bundled entries) is
    checked against the entry's sha256 when known, loaded with `weights_only=True`, turned into the
    toolkit's layout and checked key by key by `convert`
    (models.inference.published_weights.to_toolkit_state_dict), then written as `latest_net_G.pth` beside a
    `train_opt.json` holding the network's options and the source's sha256. `check_sha256` False: any file of
    the entry's layout is taken (upscale.py --model_path: a fine-tuned file of that architecture). Reinstalling
    replaces an earlier install; a folder that holds anything else is refused before any transfer. A failure
    leaves the previous install, or nothing, behind.
    """
    entry = SR_MODELS.get(name)
    folder = sr_model_dir(name, checkpoints_dir)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        _refuse_foreign_folder(folder, name)
    created = not os.path.isdir(folder)
    installed = False
    # One install (or training run) at a time writes the folder; the lock removes the folder it created when the
    # install fails.
    with FolderLock(folder, f"an install of the zoo model {name}", "wait for it to finish"):
        _refuse_foreign_folder(folder, name)
        source = _sr_source(entry, from_file, url)
        staging = os.path.join(folder, SR_STAGING_FILE)
        try:
            download_file(source, staging, timeout=timeout, progress=progress,
                          sha256=entry.sha256 if check_sha256 else None)
            digest = file_sha256(staging, source)
            state = convert(load_weights_only(staging, source), entry, source)
            # The options first: a folder with them and without weights is ours and can be installed again.
            atomic_write_text(os.path.join(folder, TRAIN_OPTIONS_FILE),
                              json.dumps(sr_train_options(entry, source, digest), indent=2, sort_keys=True) + "\n")
            atomic_save_torch(dict(state), os.path.join(folder, NETWORK_FILE))
            installed = True
        finally:
            if os.path.lexists(staging):
                os.unlink(staging)
            if created and not installed:  # only what this call wrote: the folder did not exist before
                for leftover in set(os.listdir(folder)) - {LOCK_FILE}:
                    os.unlink(os.path.join(folder, leftover))
    logger.info("SR model %s (%s, x%d, sha256 %s) is in %s", name, entry.architecture, entry.scale, digest, folder)
    return folder
