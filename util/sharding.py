"""One batch job (scripts/upscale.py over a folder) spread over the processes torchrun starts, on one or many nodes.

    torchrun --nproc_per_node N [--nnodes M --node_rank R --master_addr A --master_port P] scripts/upscale.py ...

Each process is one rank of util/distributed's World (`--gpu_ids 0,1` outside torchrun starts them itself,
util/launcher.py). Rank 0 decides and the others follow, through a few small collectives:

* Which files: rank 0 lists the inputs whose result is still missing and splits them (`split_by_size`), then
  broadcasts the plan (`from_main`). One listing for all, so every file goes to exactly one rank even while
  results appear, or where another node's view of a shared folder lags; a split each rank computed from its
  own listing could drop or double a file.
* The rule is deterministic (the same inputs and world size give the same split) and balances pixels, not
  counts: the work of a photo grows with its pixels, and a folder mixes sizes, so `i % world` could give one
  rank all the large photos while the others wait. Largest first, each to the rank with the fewest pixels so
  far (ties: the lower rank); Graham's LPT rule, within 4/3 of the best split.
* The process group is gloo whatever the device: only the plan and the counts travel, a few Python objects,
  so NCCL's per-rank GPU set-up buys nothing. A rank that fails (a full disk) records why and still joins the
  final exchange (`gather`), so no rank waits for it; a rank that dies (killed, out of memory) closes its
  sockets and gloo raises in the others instead of waiting; one that hangs is given up after util/distributed's
  timeout (30 minutes), which also bounds how long rank 0 waits for the last rank to finish its share.
* Threads: each rank takes its node's cores divided by the ranks on the node (`share_threads`), unless told.
"""
from __future__ import annotations

import contextlib
import heapq
import logging
import os
from typing import Any, Callable, Iterator, List, Optional, Sequence, TypeVar

import torch
import torch.distributed as dist

from . import distributed
from .distributed import World

logger = logging.getLogger(__name__)

T = TypeVar("T")


def split_by_size(sizes: Sequence[int], parts: int) -> List[List[int]]:
    """The indices of `sizes` split into `parts` lists whose sums are close (LPT: largest first, each to the
    least-loaded part, ties by index and part number, so the split is deterministic); each list ascending.
    Every index is in exactly one list."""
    loads = [(0, part) for part in range(parts)]  # (pixels so far, part): a heap, least loaded first
    shares: List[List[int]] = [[] for _ in range(parts)]
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        load, part = heapq.heappop(loads)
        shares[part].append(index)
        heapq.heappush(loads, (load + sizes[index], part))
    return [sorted(share) for share in shares]


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, which a scheduler or taskset may narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share_threads(world: World, threads: Optional[int] = None) -> int:
    """Set torch's intra-op threads: `threads` when given, else, for one of several processes, this rank's
    share of the node's cores, cores // ranks on the node (at least 1): torchrun and util/launcher set
    OMP_NUM_THREADS=1 for N > 1 processes, which leaves cores idle when there are more cores than ranks. One
    process keeps torch's default (every core). Returns the thread count. The thread count can change fp32
    results in the last bit (oneDNN sums a convolution in another order), so runs to compare byte for byte
    take the same `threads`."""
    if threads:
        torch.set_num_threads(threads)
    elif world.distributed:
        torch.set_num_threads(max(1, cpu_cores() // world.local_size))
    return torch.get_num_threads()


@contextlib.contextmanager
def process_group(world: World) -> Iterator[None]:
    """Join the ranks' gloo group for the block (nothing for one process)."""
    distributed.init(world, use_cuda=False)
    try:
        yield
    finally:
        distributed.shutdown()


def from_main(value: Any) -> Any:
    """Rank 0's `value` (any picklable object) on every rank; `value` itself in one process."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> List[Any]:
    """Every rank's `value`, in rank order, on every rank; `[value]` in one process."""
    if not dist.is_initialized():
        return [value]
    values: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def in_turn(world: World, load: Callable[[], T], loaded: Optional[T] = None) -> T:
    """`load()` on every rank but in turn, for what may install a model into a folder that only one process at a
    time may write (util/locks.py): rank 0 first (it has, when `loaded` is given), then the first rank of each
    other node (its own disk may lack the model), then the rest, which find it installed."""
    result = loaded
    if world.local_rank == 0 and result is None:
        result = load()
    distributed.barrier()  # every node's first rank has it before the others look
    if result is None:
        result = load()
    return result
