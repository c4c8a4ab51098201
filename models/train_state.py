"""The training-state file: everything needed to continue a run exactly where it stopped.

`<checkpoints_dir>/<name>/latest_train_state.pth` holds, in one atomically written file: the networks, the
optimisers, the schedulers, model extras (e.g. CycleGAN's image pools), the epoch and the position in it, the
data stream's seed, the random states of python, numpy and torch (CPU and CUDA), and the options. One file
means a kill at any instant leaves either the previous state or the new one, never a mix. Every value is a
tensor or a plain Python value, so the file loads with `torch.load(..., weights_only=True)`.
"""
from __future__ import annotations

import logging
import os
import random
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from util.errors import CheckpointError, OptionError, StorageError
from util import distributed
from util.fileio import atomic_save_torch, load_torch_weights_only, remove_stale_temp_files

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
    """Write the state file atomically; a full disk or a read-only folder is a StorageError."""
    path = state_path(save_dir)
    try:
        atomic_save_torch({"format_version": FORMAT_VERSION, **state}, path)
    except OSError as e:
        raise StorageError(f"{e}; free some space or choose another --checkpoints_dir "
                           f"(the previous checkpoint files are intact)") from e
    return path


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


def check_writable(folder: str) -> None:
    """Fail early, before any work, if `folder` cannot be created or written (it is not created here)."""
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        what = "is not a folder" if not os.path.isdir(probe) else "is not writable"
        raise StorageError(f"cannot write checkpoints to {folder}: {probe} {what}; choose another --checkpoints_dir")


class Checkpointer:
    """Saves a model's network files and the training state together; the state says where to resume."""

    def __init__(self, model: Any, loader: Any, opt: Any) -> None:
        self.model, self.loader, self.opt = model, loader, opt

    def save(self, labels: Sequence[Any], epoch: int, position: int, total_iters: int) -> None:
        """Network files for each label (e.g. 'latest', 5), then the state: resume at (`epoch`, `position`)."""
        for label in labels:
            self.model.save_networks(label)
        save(self.model.save_dir, {
            **self.model.training_state(),
            "epoch": epoch, "position": position, "total_iters": total_iters,
            "data_seed": self.loader.base_seed,
            "rng": capture_rng(),
            "options": self.opt.plain_dict(),
        })


def restore(model: Any, loader: Any, state: Mapping[str, Any]) -> Tuple[int, int, int]:
    """Put a freshly built model and loader back where `state` was saved; return (epoch, position, total_iters).

    The random states are restored last, after everything that consumed randomness while being built.
    """
    model.load_training_state(state)
    loader.set_base_seed(state["data_seed"])
    restore_rng(state["rng"])
    return state["epoch"], state["position"], state["total_iters"]


def prepare_resume(opt: Any, world: distributed.World, network_options: Iterable[str]) -> Optional[Dict[str, Any]]:
    """Before anything is built: check the checkpoint folder can be written, tidy temporary files a killed run
    left (rank 0), and return the training state when `--continue_train` resumes from it (else None).

    Only `--epoch latest` without `--load_iter` resumes from the state; other epochs load network files only,
    as the reference does. Another --model, or other `network_options` (models.network_options: they would
    change the networks), are refused before anything is read.
    """
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    check_writable(save_dir)
    if world.is_main:
        remove_stale_temp_files(save_dir)
    resumable = opt.continue_train and opt.epoch == "latest" and opt.load_iter == 0
    has_state = resumable and os.path.isfile(state_path(save_dir))
    if distributed.any_rank(has_state) and not distributed.all_ranks(has_state):
        raise CheckpointError(f"{state_path(save_dir)} is missing on some nodes: put --checkpoints_dir on storage "
                              f"all nodes share to resume a multi-node run")
    distributed.barrier()  # no rank reads the checkpoint folder while rank 0 still tidies it
    if not has_state:
        return None
    state = load(save_dir)
    check_compatible(state["options"], opt, ("model", *network_options))
    return state


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
