"""The training-state file: everything needed to continue a run exactly where it stopped, and the save protocol.

`<checkpoints_dir>/<name>/latest_train_state.pth` holds, in one atomically written file: the networks, the
optimisers, the schedulers, model extras (e.g. CycleGAN's image pools), the epoch and the position in it, the
data stream's seed, the random states of python, numpy and torch (CPU and CUDA), the options, and the names of
the network files of its save. Every value is a tensor or a plain Python value, so the file loads with
`torch.load(..., weights_only=True)`.

A save is a set of files (the state and `<label>_net_<name>.pth` for each label and network, the generators'
averages `<name>_ema` included under --ema_decay: models/training/ema.py), and it must be all-or-nothing as a
set. Files are renamed into place one at a time, so the state is the save's commit record:
it is written first, and the network files after it are copies of its networks (for test.py and the
reference). A kill or a full disk before the state is complete leaves the previous save whole (none of the new
network files exists yet); one after it leaves a complete state whose missing or older network files the next
`--continue_train` writes again from it (`complete_network_files`). A run of this toolkit therefore never has
network files without a state, and `--continue_train` either resumes exactly or refuses with the reason; only
network files without any state (the reference's checkpoints) load with fresh optimisers, as there.
"""
from __future__ import annotations

import glob
import logging
import os
import random
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from util.errors import CheckpointError, OptionError
from util import distributed
from util.fileio import load_torch_weights_only, remove_stale_temp_files

from .checkpoints import save_network_file
from .ema import stale_average_files

logger = logging.getLogger(__name__)

STATE_FILE = "latest_train_state.pth"
FORMAT_VERSION = 1


def state_path(save_dir: str) -> str:
    return os.path.join(save_dir, STATE_FILE)


def capture_rng() -> Dict[str, Any]:
    """Random states as tensors and plain values (numpy's key array becomes a tensor for weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(save_dir: str, state: Dict[str, Any]) -> str:
    """Write the state file atomically: the commit point of a save. A full disk or a read-only folder is a
    StorageError, and the previous save is then still whole (its state and its network files)."""
    return save_network_file({"format_version": FORMAT_VERSION, **state}, state_path(save_dir))


def _network_files(state: Mapping[str, Any], save_dir: str) -> Dict[str, str]:
    """{file name: network name} of the save `state` commits (none for states written before the list existed)."""
    files = state.get("files", {})
    for file_name, name in files.items():
        if os.path.basename(file_name) != file_name or not file_name.endswith(".pth") or name not in state["networks"]:
            raise CheckpointError(f"{state_path(save_dir)} is not a training state of this toolkit "
                                  f"(it lists the network file {file_name!r})")
    return dict(files)


def write_network_files(save_dir: str, state: Mapping[str, Any], names: Optional[Iterable[str]] = None) -> List[str]:
    """Write the network files the committed `state` lists (only those in `names` when given): plain
    state_dicts, copies of the state's networks. A full disk is a StorageError saying the state is safe."""
    written = []
    for file_name, name in _network_files(state, save_dir).items():
        if names is not None and file_name not in names:
            continue
        written.append(save_network_file(
            state["networks"][name], os.path.join(save_dir, file_name),
            f"the training state {state_path(save_dir)} is complete: --continue_train resumes from it and writes "
            f"this file again"))
    return written


def _holds(path: str, tensors: Mapping[str, torch.Tensor]) -> bool:
    """Whether the network file at `path` exists and holds exactly `tensors`."""
    if not os.path.isfile(path):
        return False
    try:
        saved = load_torch_weights_only(path)
    except CheckpointError:
        return False
    return (isinstance(saved, dict) and list(saved) == list(tensors)
            and all(isinstance(saved[k], torch.Tensor) and saved[k].dtype == v.dtype and saved[k].shape == v.shape
                    and torch.equal(saved[k], v) for k, v in tensors.items()))


def complete_network_files(save_dir: str, state: Mapping[str, Any]) -> List[str]:
    """Finish a save that was cut short after its state: write again each network file the state lists that is
    missing or holds other weights (an older save's). Returns the paths written."""
    stale = [file_name for file_name, name in _network_files(state, save_dir).items()
             if not _holds(os.path.join(save_dir, file_name), state["networks"][name])]
    written = write_network_files(save_dir, state, stale) if stale else []
    if written:
        logger.info("the last save was interrupted after its training state: wrote %s again from it",
                    ", ".join(os.path.basename(p) for p in written))
    return written


def load(save_dir: str) -> Dict[str, Any]:
    """Read the state file (tensors and plain values only: a crafted file cannot run code)."""
    path = state_path(save_dir)
    state = load_torch_weights_only(path)
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a training state of this toolkit (format {FORMAT_VERSION})")
    return state


def check_compatible(saved: Mapping[str, Any], opt: Any, keys: Iterable[str]) -> None:
    """Refuse to resume with options that would build different networks than the saved ones."""
    for key in keys:
        if key in saved and getattr(opt, key, None) != saved[key]:
            raise OptionError(
                f"--continue_train: --{key} {getattr(opt, key, None)} differs from the run being resumed "
                f"({saved[key]}), which would change the networks; use --{key} {saved[key]} or a new --name")


class Checkpointer:
    """Saves the training state and a model's network files as one set (module docstring): the state first."""

    def __init__(self, model: Any, loader: Any, opt: Any) -> None:
        self.model, self.loader, self.opt = model, loader, opt

    def save(self, labels: Sequence[Any], epoch: int, position: int, total_iters: int) -> None:
        """The state, resuming at (`epoch`, `position`) and listing the network files of each label (e.g.
        'latest', 5), then those files."""
        model = self.model
        os.makedirs(model.save_dir, exist_ok=True)
        training_state = model.training_state()  # its networks: the model's and their averages (--ema_decay)
        files = {os.path.basename(model.network_path(label, name)): name
                 for label in labels for name in training_state["networks"]}
        # Before the commit: the previous state lists any average removed here, and a resume writes it again.
        for path in stale_average_files(model.network_path, labels, training_state["networks"]):
            os.remove(path)
            logger.info("removed %s: this run keeps no average of its generator (--ema_decay 0)", path)
        state = {
            **training_state,
            "epoch": epoch, "position": position, "total_iters": total_iters,
            "data_seed": self.loader.base_seed,
            "rng": capture_rng(),
            "options": self.opt.plain_dict(),
            "files": files,
        }
        save(model.save_dir, state)
        write_network_files(model.save_dir, state)


def restore(model: Any, loader: Any, state: Mapping[str, Any]) -> Tuple[int, int, int]:
    """Put a freshly built model and loader back where `state` was saved; return (epoch, position, total_iters).

    The random states are restored last, after everything that consumed randomness while being built.
    """
    model.load_training_state(state)
    loader.set_base_seed(state["data_seed"])
    restore_rng(state["rng"])
    return state["epoch"], state["position"], state["total_iters"]


def prepare_resume(opt: Any, world: distributed.World, network_options: Iterable[str]) -> Optional[Dict[str, Any]]:
    """Before anything is built: tidy temporary files a killed run left (rank 0), and return the training state
    when `--continue_train` resumes from it (else None), after finishing its save if that was cut short (rank 0).
    options/ has checked that the checkpoint folder can be written.

    Only `--epoch latest` without `--load_iter` resumes from the state; other epochs load network files only,
    as the reference does. Another --model, or other `network_options` (models.network_options: they would
    change the networks), are refused before anything is read.
    """
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    if world.is_main:
        remove_stale_temp_files(save_dir)
    resumable = opt.continue_train and opt.epoch == "latest" and opt.load_iter == 0
    has_state = resumable and os.path.isfile(state_path(save_dir))
    if distributed.any_rank(has_state) and not distributed.all_ranks(has_state):
        raise CheckpointError(f"{state_path(save_dir)} is missing on some nodes: put --checkpoints_dir on storage "
                              f"all nodes share to resume a multi-node run")
    distributed.barrier()  # no rank reads the checkpoint folder while rank 0 still tidies it
    if not has_state:
        if resumable:
            _refuse_nothing_saved(save_dir)
        return None
    state = load(save_dir)
    check_compatible(state["options"], opt, ("model", *network_options))
    if world.is_main:  # the other ranks read the state, never the network files
        complete_network_files(save_dir, state)
    return state


def _refuse_nothing_saved(save_dir: str) -> None:
    """`--continue_train` from the latest save where there is none: no state and no latest network files is
    what a run killed (or stopped by a full disk) during its first save leaves, since the state comes first."""
    if not glob.glob(os.path.join(glob.escape(save_dir), "latest_net_*.pth")):
        raise CheckpointError(
            f"--continue_train: nothing to resume in {save_dir}: there is no {STATE_FILE} and no latest network "
            f"file (a run stopped before its first save completed leaves none); start the run again without "
            f"--continue_train, or check --name and --checkpoints_dir")


def start_position(model: Any, loader: Any, state: Optional[Mapping[str, Any]], opt: Any) -> Tuple[int, int, int]:
    """(epoch, position, total_iters) to start at: where `state` stopped, or `--epoch_count` for a new run (and
    for `--continue_train` from network files alone, which the reference's checkpoints are)."""
    if state is not None:
        epoch, position, total_iters = restore(model, loader, state)
        logger.info("resuming at epoch %d, sample %d of %d (from %s)", epoch, position, len(loader),
                    state_path(model.save_dir))
        return epoch, position, total_iters
    if opt.continue_train:
        logger.warning("no training state in %s: networks loaded from the '%s' files, optimisers start afresh "
                       "at --epoch_count %d", model.save_dir, opt.epoch if opt.load_iter == 0 else opt.load_iter,
                       opt.epoch_count)
    return opt.epoch_count, 0, 0
