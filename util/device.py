"""Where a process computes: `--gpu_ids` resolved once, against the machine and torchrun's environment.

`resolve_placement("0,1", training=True)` is the only place that reads the flag's text. The result says which
GPUs this process uses (none on CPU), its torch device, and its place among torchrun's processes; options/
stores it, and everything downstream (models, train.py, test.py) receives it instead of re-deriving it.
"""
from __future__ import annotations

import logging
import os
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
        """Several GPUs asked for outside torchrun: train.py starts one process per GPU (util/launcher.py)."""
        return len(self.gpu_ids) > 1 and not self.world.distributed

    def activate(self) -> None:
        """Make this process's GPU the current CUDA device, before anything else touches CUDA: the data
        loader's pinned-memory thread, NCCL and cuDNN otherwise start on GPU 0 whatever --gpu_ids says."""
        if self.gpu_ids:
            torch.cuda.set_device(self.device)


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


def rank_gpu_ids(gpu_ids: Tuple[int, ...], world: World) -> Tuple[int, ...]:
    """The one GPU of this torchrun process (`device_ids_for_rank`), checked against the GPUs the process sees,
    so a mismatch ends in one line saying what to pass instead of CUDA's "invalid device ordinal" traceback.

    A process that sees exactly one GPU because CUDA_VISIBLE_DEVICES names one device (a scheduler that gives
    each task a GPU of its own) takes that GPU, whatever its local rank.
    """
    if not gpu_ids or not world.distributed:
        return gpu_ids
    if len(gpu_ids) > 1 and len(gpu_ids) != world.local_size:
        raise OptionError(f"--gpu_ids {','.join(map(str, gpu_ids))} lists {len(gpu_ids)} GPUs for the "
                          f"{world.local_size} processes on this node: list one id per process, or give one id "
                          f"(then local rank r takes GPU r)")
    gpu = device_ids_for_rank(gpu_ids, world)[0]
    count = torch.cuda.device_count()
    if gpu < count:
        return (gpu,)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if count == 1 and visible is not None and len([v for v in visible.split(",") if v.strip()]) == 1:
        logger.info("local rank %d: CUDA_VISIBLE_DEVICES=%s gives this process a GPU of its own; using it",
                    world.local_rank, visible)
        return (0,)
    seen = f"{count} GPU{'s' if count != 1 else ''}" + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible else "")
    raise OptionError(f"GPU {gpu} for local rank {world.local_rank} of the {world.local_size} processes on this "
                      f"node, but this process sees {seen}: start at most {count} process"
                      f"{'es' if count != 1 else ''} per node (torchrun --nproc_per_node {count}), or give each "
                      f"process a GPU of its own with CUDA_VISIBLE_DEVICES naming one device")


def resolve_placement(text: str, training: bool) -> Placement:
    """`--gpu_ids` text -> this process's Placement. Training reads torchrun's environment (each rank takes
    one GPU, checked against the GPUs it sees); testing is one process on one GPU. Several ids are refused there:
    DataParallel, the reference's way, splits a batch that is usually one image, and its replica threads broke
    --compile and bf16 autocast."""
    world = world_from_env() if training else World()
    ids = available_gpu_ids(parse_gpu_ids(text))
    if not training and len(ids) > 1:
        raise OptionError(f"--gpu_ids {text}: testing runs on one GPU; pass one id (e.g. --gpu_ids {ids[0]}). "
                          f"To use several, run one test.py per GPU, each on its own part of the images "
                          f"(--dataroot) and with its own --results_dir")
    return Placement(rank_gpu_ids(ids, world), world)
