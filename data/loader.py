"""The loader that feeds a dataset to the models: build, check, order, seed and batch the samples.

Reproducibility: the order of an epoch is a permutation drawn from (base seed, epoch), and every sample's
augmentation is seeded from (base seed, epoch, position). The stream is therefore the same for any number of
workers, and a run resumed in the middle of an epoch (`set_epoch(epoch, start=position)`) sees exactly the
samples, crops and flips the uninterrupted run would have seen.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import secrets
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.utils.data
from torch.utils.data import default_collate

# Importing the dataset modules registers them in DATASETS.
from data import aligned_dataset, colorization_dataset, single_dataset, unaligned_dataset  # noqa: F401
from data.base_dataset import DATASETS, BaseDataset
from util.errors import DataError, OptionError
from util.stop import ignore_stop_signals

logger = logging.getLogger(__name__)


def find_dataset_using_name(dataset_mode: str) -> type:
    """The dataset class registered as `dataset_mode`; an unknown name is an OptionError listing valid ones."""
    try:
        return DATASETS.get(dataset_mode)
    except KeyError as exc:
        raise OptionError(f"--dataset_mode: {exc.args[0]}") from None


def get_option_setter(dataset_mode: str) -> Callable[..., Any]:
    """The `modify_commandline_options(parser, is_train)` hook of a dataset mode (used by options/)."""
    return find_dataset_using_name(dataset_mode).modify_commandline_options


def _probe_first_sample(dataset: BaseDataset) -> None:
    """Run sample 0 through the full pipeline so an unreadable first file or a too-large crop fails now.

    The random states are restored afterwards: the probe must not shift the augmentation stream.
    """
    with _preserved_rng():
        dataset[0]


@contextlib.contextmanager
def _preserved_rng() -> Iterator[None]:
    """Leave python, numpy and torch (CPU) random states as they were: loading data in the main process
    must not change the model's random stream (dropout, image pool). The CUDA generators are never touched
    by the data path (`_SeededSamples`)."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (SplitMix64 steps): neighbouring inputs give unrelated seeds."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x >> 1


class EpochSampler(torch.utils.data.Sampler):
    """Yields `(index, sample_seed)` for one epoch, from position `start` on.

    The order is a permutation seeded by (base_seed, epoch), or 0..n-1 with --serial_batches; at most
    `limit` samples per epoch (--max_dataset_size: a different random subset each epoch, as the reference).

    With `world_size` processes (DDP), every process draws the same permutation and `rank` takes positions
    start + rank, start + rank + world_size, ...: the processes' k-th batches together are the k-th batch
    of one process with a world_size times larger batch. Each process gets the same number of samples, so
    none waits in a gradient all-reduce the others never reach: the last (count - start) mod world_size
    positions of an epoch are left out (different samples each epoch, as the order changes).
    """

    def __init__(self, size: int, shuffle: bool, base_seed: int, limit: float = math.inf, rank: int = 0,
                 world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.size, self.shuffle, self.base_seed = size, shuffle, base_seed
        self.rank, self.world_size = rank, world_size
        self.count = int(min(size, limit))
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if not 0 <= start <= self.count:
            raise ValueError(f"start position {start} outside 0..{self.count}")
        self.epoch, self.start = epoch, start

    def order(self) -> List[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(_mix(self.base_seed, self.epoch))
        return torch.randperm(self.size, generator=generator).tolist()

    def _stop(self) -> int:
        return self.start + (self.count - self.start) // self.world_size * self.world_size

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        order = self.order()
        for position in range(self.start + self.rank, self._stop(), self.world_size):
            yield order[position], _mix(self.base_seed, self.epoch, position, 1)

    def __len__(self) -> int:
        return (self._stop() - self.start) // self.world_size


SKIPPED = "_skipped"  # key of a sample that could not be loaded under --skip_bad_images


class _SeededSamples(torch.utils.data.Dataset):
    """Runs `dataset[index]` with python, numpy and torch's CPU generator seeded from the sample's own seed.

    Only the CPU generator: `torch.manual_seed` would also reseed every CUDA generator, and with
    --num_threads 0 (samples loaded in the training process) dropout, D-input noise and the WGAN-GP mixing
    weights would then follow the last sample's seed. Augmentation runs on the CPU, so nothing is lost.
    """

    def __init__(self, dataset: BaseDataset, skip_bad_images: bool) -> None:
        self.dataset, self.skip_bad_images = dataset, skip_bad_images

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: Tuple[int, int]) -> Dict[str, Any]:
        index, seed = item
        in_main_process = torch.utils.data.get_worker_info() is None
        with _preserved_rng() if in_main_process else contextlib.nullcontext():
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.default_generator.manual_seed(seed)
            try:
                return self.dataset[index]
            except DataError as e:
                if not self.skip_bad_images:
                    raise
                return {SKIPPED: (e.path or f"sample {index}", str(e))}


def _collate(items: List[Dict[str, Any]]) -> Dict[str, Any]:
    """default_collate over the good samples; the skipped ones travel as a list under SKIPPED."""
    good = [item for item in items if SKIPPED not in item]
    batch = default_collate(good) if good else {}
    batch[SKIPPED] = [item[SKIPPED] for item in items if SKIPPED in item]
    return batch


class DatasetLoader:
    """A torch DataLoader over a dataset, capped at --max_dataset_size samples per epoch (reference API).

    `set_epoch(epoch, start)` picks the epoch's order and where in it to begin; `position` is how many
    samples of the epoch have been handed out (skipped bad images included), which is what a checkpoint
    records to resume mid-epoch. `skipped` maps each image skipped under --skip_bad_images to the reason.
    Under DDP (`rank`, `world_size`) this process loads its share of each batch (see `EpochSampler`), and
    `position` counts the samples all processes have been handed.
    """

    def __init__(self, opt: Any, dataset: Optional[BaseDataset] = None, rank: int = 0, world_size: int = 1) -> None:
        self.opt = opt
        self.dataset = dataset if dataset is not None else find_dataset_using_name(opt.dataset_mode)(opt)
        self.max_dataset_size: float = opt.max_dataset_size
        self.batch_size: int = opt.batch_size
        self.skipped: Dict[str, str] = {}
        self.position = 0
        seed = opt.seed
        self.sampler = EpochSampler(len(self.dataset), shuffle=not opt.serial_batches,
                                    base_seed=seed if seed is not None else secrets.randbits(62),
                                    limit=self.max_dataset_size, rank=rank, world_size=world_size)
        # More workers than CPUs only adds contention (torch warns about it); the reference's default is 4.
        workers = min(int(opt.num_threads), os.cpu_count() or 1)
        extra: Dict[str, Any] = {}
        if workers > 0:
            extra.update(persistent_workers=True, prefetch_factor=2)
        self.dataloader = torch.utils.data.DataLoader(
            _SeededSamples(self.dataset, bool(opt.skip_bad_images)),
            batch_size=opt.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=_collate,
            worker_init_fn=ignore_stop_signals,
            pin_memory=bool(opt.gpu_ids) and torch.cuda.is_available(),
            drop_last=False,
            # Its own generator: creating an iterator must not consume the global random stream.
            generator=torch.Generator().manual_seed(self.sampler.base_seed),
            **extra,
        )
        logger.info("dataset [%s] was created with %d samples", type(self.dataset).__name__, len(self))

    @property
    def base_seed(self) -> int:
        return self.sampler.base_seed

    def set_base_seed(self, seed: int) -> None:
        """Continue the sample stream of a resumed run (its base seed is in the training state)."""
        self.sampler.base_seed = int(seed)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch, start)
        self.position = start

    def source_paths(self) -> Optional[List[str]]:
        """The path each sample of an epoch in test order is named after (`BaseDataset.source_paths`), or None."""
        paths = self.dataset.source_paths()
        return None if paths is None else list(paths)[: len(self)]

    def load_data(self) -> "DatasetLoader":
        """Kept for the reference's `create_dataset(opt).load_data()` idiom."""
        return self

    def __len__(self) -> int:
        return int(min(len(self.dataset), self.max_dataset_size))

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        """Yield the batches of the current epoch from its start position; skipped images are logged once."""
        for batch in self.dataloader:
            skipped = batch.pop(SKIPPED)
            self.position += (len(skipped) + (len(batch["A"]) if "A" in batch else 0)) * self.sampler.world_size
            for path, reason in skipped:
                if path not in self.skipped:
                    self.skipped[path] = reason
                    logger.warning("skipped bad image (%d so far): %s", len(self.skipped), reason)
            if "A" in batch:
                yield batch


def create_dataset(opt: Any, rank: int = 0, world_size: int = 1) -> DatasetLoader:
    """Build, validate and wrap the dataset for `opt` (folders checked, first sample decoded and transformed);
    under DDP, the loader of process `rank` of `world_size`."""
    dataset = find_dataset_using_name(opt.dataset_mode)(opt)
    if not opt.skip_bad_images:
        _probe_first_sample(dataset)
    return DatasetLoader(opt, dataset, rank=rank, world_size=world_size)
