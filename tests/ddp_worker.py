"""A few training steps of a model, alone or as one rank of a torchrun job (used by tests/test_distributed.py).

    python tests/ddp_worker.py OUT.pt STEPS <train.py options>
    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT.pt STEPS <options>

It goes through the same pieces as train.py (options, create_dataset for this rank, create_model, setup with
the DDP wrap) and rank 0 writes every rank's parameters, before and after the steps, to OUT.pt.
"""
from __future__ import annotations

import os
import sys
from typing import List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from data import create_dataset  # noqa: E402
from models import create_model, networks  # noqa: E402
from options import TrainOptions  # noqa: E402
from util import distributed  # noqa: E402
from util.cli import seed_everything  # noqa: E402


def gather_parameters(model, world: distributed.World) -> List[torch.Tensor]:
    """Each rank's parameters, flattened in a fixed order, as a list indexed by rank."""
    flat = torch.cat([p.detach().flatten() for _, net in model.named_networks()
                      for p in networks.unwrap(net).parameters()])
    if not world.distributed:
        return [flat]
    gathered = [torch.empty_like(flat) for _ in range(world.size)]
    dist.all_gather(gathered, flat)
    return gathered


def main() -> None:
    out, steps, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    world = distributed.world_from_env()
    opt = TrainOptions().parse(argv)
    distributed.init(world, use_cuda=False)
    seed_everything(opt.seed)
    dataset = create_dataset(opt, world.rank, world.size)
    dataset.set_base_seed(distributed.broadcast_int(dataset.base_seed))
    model = create_model(opt)
    model.setup(opt)
    distributed.diverge_random_streams(world)
    initial = gather_parameters(model, world)
    model.set_epoch(opt.epoch_count)
    dataset.set_epoch(opt.epoch_count)
    done, images = 0, 0
    for data in dataset:
        model.set_input(data)
        model.optimize_parameters()
        done, images = done + 1, images + data["A"].shape[0]
        if done == steps:
            break
    final = gather_parameters(model, world)
    if world.is_main:
        torch.save({"initial": initial, "final": final, "steps": done, "images_rank0": images,
                    "position": dataset.position}, out)
    distributed.shutdown()


if __name__ == "__main__":
    main()
