"""Datasets and the loader that feeds them to the models.

`create_dataset(opt)` is the entry point, as in the reference: it builds the dataset named by
`--dataset_mode` (looked up in the `DATASETS` registry), checks its folders and its first sample right away, so
data problems surface before any network is built, and wraps it in a `DatasetLoader`.
"""
from __future__ import annotations

from data.base_dataset import DATASETS, BaseDataset
from data.loader import DatasetLoader, EpochSampler, create_dataset, find_dataset_using_name, get_option_setter

__all__ = ["DATASETS", "BaseDataset", "DatasetLoader", "EpochSampler", "create_dataset", "find_dataset_using_name",
           "get_option_setter"]
