"""Datasets and the loader that feeds them to the models.

`create_dataset(opt)` is the entry point, as in the reference: it builds the dataset named by
`--dataset_mode` (looked up in the `DATASETS` registry), checks its folders and its first sample right away, so
data problems surface before any network is built, and wraps it in a `DatasetLoader`.
"""
from __future__ import annotations

import logging
import math
import os
import random
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np
import torch
import torch.utils.data

# Importing the dataset modules registers them in DATASETS.
from data import aligned_dataset, single_dataset, unaligned_dataset  # noqa: F401
from data.base_dataset import DATASETS, BaseDataset
from util.errors import OptionError

logger = logging.getLogger(__name__)

__all__ = ["DATASETS", "BaseDataset", "DatasetLoader", "create_dataset", "find_dataset_using_name", "get_option_setter"]


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
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        dataset[0]
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


class DatasetLoader:
    """A torch DataLoader over a dataset, capped at --max_dataset_size samples per epoch (reference API)."""

    def __init__(self, opt: Any, dataset: Optional[BaseDataset] = None) -> None:
        self.opt = opt
        self.dataset = dataset if dataset is not None else find_dataset_using_name(opt.dataset_mode)(opt)
        self.max_dataset_size: float = getattr(opt, "max_dataset_size", math.inf)
        self.batch_size: int = opt.batch_size
        # More workers than CPUs only adds contention (torch warns about it); the reference's default is 4.
        workers = min(int(opt.num_threads), os.cpu_count() or 1)
        extra: Dict[str, Any] = {}
        if workers > 0:
            extra.update(persistent_workers=True, prefetch_factor=2)
        generator = None
        if getattr(opt, "seed", None) is not None:
            generator = torch.Generator()
            generator.manual_seed(int(opt.seed))
        # Workers seed python `random`, numpy and torch from the generator: augmentation differs per worker and
        # is reproducible with --seed.
        self.dataloader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=opt.batch_size,
            shuffle=not opt.serial_batches,
            num_workers=workers,
            pin_memory=bool(opt.gpu_ids) and torch.cuda.is_available(),
            drop_last=False,
            generator=generator,
            **extra,
        )
        logger.info("dataset [%s] was created with %d samples", type(self.dataset).__name__, len(self))

    def load_data(self) -> "DatasetLoader":
        """Kept for the reference's `create_dataset(opt).load_data()` idiom."""
        return self

    def __len__(self) -> int:
        return int(min(len(self.dataset), self.max_dataset_size))

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        """Yield batches until max_dataset_size samples have been yielded (the last batch may be short)."""
        yielded = 0
        for batch in self.dataloader:
            if yielded >= self.max_dataset_size:
                break
            yield batch
            yielded += self.batch_size


def create_dataset(opt: Any) -> DatasetLoader:
    """Build, validate and wrap the dataset for `opt` (folders checked, first sample decoded and transformed)."""
    dataset = find_dataset_using_name(opt.dataset_mode)(opt)
    _probe_first_sample(dataset)
    return DatasetLoader(opt, dataset)
