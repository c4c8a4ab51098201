"""Normalisation layers selectable with `--norm`.

Each entry is a factory `(num_features) -> nn.Module`. The reference's choices are kept so published
checkpoints load: `batch` (affine, running stats), `instance` (no affine, no running stats), `none`; and
`syncbatch` for multi-GPU runs.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch.nn as nn

from util.registry import Registry

NormFactory = Callable[[int], nn.Module]

NORM_LAYERS: Registry[NormFactory] = Registry("norm layer")
NORM_LAYERS.add("batch", functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True))
NORM_LAYERS.add("instance", functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False))
NORM_LAYERS.add("none", lambda num_features: nn.Identity())
# BatchNorm whose statistics span all processes of a torchrun (DDP) run; same state_dict keys as `batch`,
# and plain BatchNorm in a single process.
NORM_LAYERS.add("syncbatch", functools.partial(nn.SyncBatchNorm, affine=True, track_running_stats=True))


def get_norm_layer(norm_type: str = "instance") -> NormFactory:
    """Return the factory for `norm_type`; unknown names raise KeyError listing the valid ones."""
    return NORM_LAYERS.get(norm_type)


def uses_bias(norm_layer: NormFactory) -> bool:
    """Convolutions before BatchNorm need no bias (BN has its own shift); before InstanceNorm they do.

    The reference decides this with the same rule, which fixes which `.bias` keys its checkpoints hold.
    """
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return func is not nn.BatchNorm2d and func is not nn.SyncBatchNorm
