"""Data-parallel training with torch.distributed: `torchrun --nproc_per_node N train.py ...`.

torchrun starts one process per device and tells each its place through the environment (RANK,
LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE and the rendezvous address); this module reads that, joins the
process group (NCCL on GPUs, gloo on CPUs) and offers the few collectives train.py needs. Each process
trains on its own share of every batch; DistributedDataParallel averages the gradients, so N processes
with --batch_size B step like one process with a batch of N x B.

`train.py --gpu_ids 0,1` outside torchrun starts and supervises the processes itself (util/launcher.py, the
same environment as a standalone, single-node torchrun); several nodes need torchrun on each node (see README).
"""
from __future__ import annotations

import datetime
import inspect
import logging
import os
import shlex
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

logger = logging.getLogger(__name__)

_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, displays and saves."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The World torchrun describes in the environment; a plain `python train.py` is rank 0 of 1."""
    if not all(key in os.environ for key in _ENV):
        return World()
    size = int(os.environ["WORLD_SIZE"])
    return World(rank=int(os.environ["RANK"]), local_rank=int(os.environ["LOCAL_RANK"]), size=size,
                 local_size=int(os.environ.get("LOCAL_WORLD_SIZE", size)))


def under_torchrun() -> bool:
    return world_from_env().distributed


def device_ids_for_rank(gpu_ids: Sequence[int], world: World) -> tuple:
    """The one GPU this process uses: `--gpu_ids` lists one id per local process (`0,1` with
    `--nproc_per_node 2`), or, with a single id or the default, local rank r takes GPU r. () on CPU."""
    if not gpu_ids or not world.distributed:
        return tuple(gpu_ids)
    if len(gpu_ids) == world.local_size:
        return (gpu_ids[world.local_rank],)
    return (world.local_rank,)


def init(world: World, use_cuda: bool) -> None:
    """Join the process group (no-op for one process). NCCL needs each rank's GPU set first."""
    if not world.distributed or dist.is_initialized():
        return
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    logger.info("process group: %s, rank %d of %d (local rank %d)", backend, world.rank, world.size,
                world.local_rank)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_int(value: int) -> int:
    """Rank 0's `value` on every rank (e.g. the data stream's seed when --seed is not given)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.int64, device=_collective_device())
    dist.broadcast(t, src=0)
    return int(t.item())


def reduce_max(flags: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of `flags` over all ranks, on the device (no host transfer; in place), or
    `flags` itself in one process. With 0/1 flags: 1 where any rank raised it (a training step's checks,
    `BaseModel.check_step`, in one all-reduce)."""
    if dist.is_initialized():
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return flags


def any_rank(flag: bool) -> bool:
    """True on every rank if `flag` is true on any: a stop request or a missing file seen by one rank must
    be acted on by all, or the others wait forever in the next gradient all-reduce. It reads the answer
    back (the host waits for the device): for once-per-epoch checks; a training step's go through
    `BaseModel.check_step`."""
    if not dist.is_initialized():
        return flag
    # torch.full fills on the device; torch.tensor([...], device=...) would copy from host memory and wait.
    t = reduce_max(torch.full((1,), int(flag), dtype=torch.int32, device=_collective_device()))
    return bool(t.item())


def all_ranks(flag: bool) -> bool:
    """True on every rank if `flag` is true on all."""
    return not any_rank(not flag)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `net` (already on `device`); the module itself when not distributed.

    Buffers (BatchNorm running statistics) stay per rank: syncing them in every forward would make each
    forward a collective, so a forward run by one rank alone (validation on rank 0) would hang. Use
    `--norm syncbatch` for batch statistics over all ranks' samples. Parameters start equal on all ranks:
    DDP broadcasts rank 0's at construction.
    """
    if not dist.is_initialized():
        return net
    kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters:
        kwargs["forward_sync_buffers"] = False
    else:
        kwargs["broadcast_buffers"] = False
    return nn.parallel.DistributedDataParallel(net, **kwargs)


def resume_command(script: str, argv: Sequence[str], world: World = World()) -> str:
    """The command that continues this run: the same arguments plus `--continue_train`, under the same launcher."""
    args = list(argv)
    if "--continue_train" not in args:
        args.append("--continue_train")
    launcher = f"torchrun --nproc_per_node {world.local_size} " if world.distributed else "python "
    return launcher + script + " " + " ".join(shlex.quote(a) for a in args)


def diverge_random_streams(world: World) -> None:
    """Give each rank its own random stream from here on (dropout masks, image-pool draws, D-input noise),
    derived from the shared stream, so a seeded run stays reproducible. Data augmentation needs nothing:
    every sample's seed comes from its position in the epoch, and the ranks load different positions."""
    if not world.distributed:
        return
    import random

    import numpy as np

    shared = int(torch.randint(0, 2**62, (1,)).item())  # the same draw on every rank
    seed = (shared * 0x9E3779B97F4A7C15 + world.rank) % 2**63
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
