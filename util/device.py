"""Where a process computes: `--gpu_ids` resolved once, against the machine and torchrun's environment.

`resolve_placement("0,1", training=True)` is the only place that reads the flag's text. The result says which
GPUs this process uses (none on CPU), its torch device, and its place among torchrun's processes; options/
stores it, and everything downstream (models, train.py, test.py) receives it instead of re-deriving it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch

from .distributed import World, device_ids_for_rank, world_from_env
from .errors import OptionError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """This process's GPUs (`()` on CPU) and its place among the training processes."""

    gpu_ids: Tuple[int, ...] = ()
    world: World = World()

    @property
    def device(self) -> torch.device:
        """The device the networks and batches live on: the first GPU of this process, or the CPU."""
        return torch.device("cuda", self.gpu_ids[0]) if self.gpu_ids else torch.device("cpu")

    @property
    def use_cuda(self) -> bool:
        return bool(self.gpu_ids)

    @property
    def needs_launch(self) -> bool:
        """Several GPUs asked for outside torchrun: train.py starts one process per GPU under torchrun."""
        return len(self.gpu_ids) > 1 and not self.world.distributed


def parse_gpu_ids(text: str) -> List[int]:
    """'0,1' -> [0, 1]; '-1' (or any negative id) -> [] meaning CPU."""
    ids = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            gid = int(part)
        except ValueError:
            raise OptionError(f"--gpu_ids {text!r}: expected comma-separated integers, e.g. 0 or 0,1 or -1 for CPU")
        if gid >= 0:
            ids.append(gid)
    if len(set(ids)) != len(ids):
        raise OptionError(f"--gpu_ids {text!r}: an id is repeated")
    return ids


def available_gpu_ids(gpu_ids: Sequence[int]) -> Tuple[int, ...]:
    """Fall back to CPU with a one-line notice when CUDA is absent; refuse ids the machine lacks."""
    if not gpu_ids:
        return ()
    if not torch.cuda.is_available():
        logger.warning("CUDA is not available: running on CPU (pass --gpu_ids -1 to choose CPU explicitly)")
        return ()
    count = torch.cuda.device_count()
    missing = [g for g in gpu_ids if g >= count]
    if missing:
        raise OptionError(f"--gpu_ids asks for GPU {missing[0]} but this machine has {count} (ids 0..{count - 1})")
    return tuple(gpu_ids)


def resolve_placement(text: str, training: bool) -> Placement:
    """`--gpu_ids` text -> this process's Placement. Training reads torchrun's environment (each rank takes
    one GPU); testing is always one process."""
    world = world_from_env() if training else World()
    return Placement(tuple(device_ids_for_rank(available_gpu_ids(parse_gpu_ids(text)), world)), world)
