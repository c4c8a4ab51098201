"""The one place where networks that compute on [0, 1] meet the toolkit's [-1, 1].

Published SR weights (ESRGAN, Real-ESRGAN, BasicSR) were trained on RGB in [0, 1]; every other part of the
toolkit (data, losses, visuals, tiled inference) uses [-1, 1]. Rather than converting at each of those places,
`define_G` gives a generator registered with `value_range="unit"` two hooks: its input is mapped to [0, 1]
before its forward and its output back to [-1, 1] after it. Hooks, unlike a wrapper module, keep the
state_dict keys exactly the published ones, so published files load unchanged and weights trained here load
in the publishers' code. The two maps are exact inverses, so the network inside is the publishers' network.
"""
from __future__ import annotations

import copy
from typing import Any, Tuple

import torch
import torch.nn as nn

VALUE_RANGES = ("toolkit", "unit")  # what a registration's `value_range` may say; "toolkit" ([-1, 1]) when absent
_ADAPTED = "_adapted_to_unit_range"  # set on an adapted network, so it is never adapted twice


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]: what an adapted network's input goes through (split tiling calls it on its own, since
    it runs the network's `trunk` and `hr_head`, which the forward hooks do not see)."""
    return (image + 1) * 0.5


def from_unit(output: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the inverse of `to_unit`: what an adapted network's output goes through."""
    return output * 2 - 1


def _to_unit(module: nn.Module, args: Tuple[Any, ...]) -> Tuple[Any, ...]:
    return (to_unit(args[0]), *args[1:])  # the image


def _from_unit(module: nn.Module, args: Tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    return from_unit(output)


def adapt_unit_range(net: nn.Module) -> nn.Module:
    """Make `net`, which computes on [0, 1], take and return images in [-1, 1]; returns `net` itself.

    Adapting an already adapted network is refused: a second pair of hooks would map the range twice.
    """
    if getattr(net, _ADAPTED, False):
        raise ValueError(f"{type(net).__name__} is already adapted to the [-1, 1] range")
    net.register_forward_pre_hook(_to_unit)
    net.register_forward_hook(_from_unit)
    setattr(net, _ADAPTED, True)
    return net


def adapt_value_range(net: nn.Module, value_range: str) -> nn.Module:
    """`net`, whose registration says it computes on `value_range` (VALUE_RANGES), taking and returning [-1, 1]."""
    if value_range not in VALUE_RANGES:
        raise ValueError(f"unknown value_range {value_range!r}; valid: {', '.join(VALUE_RANGES)}")
    return adapt_unit_range(net) if value_range == "unit" else net


def is_unit_range_adapted(net: nn.Module) -> bool:
    """Whether `net` computes on [0, 1] behind `adapt_unit_range`'s hooks."""
    return bool(getattr(net, _ADAPTED, False))


def own_range_copy(net: nn.Module) -> nn.Module:
    """A copy of `net` computing on its own value range: for an adapted network, without the two hooks
    (export writes the network as published, on [0, 1], not the toolkit's [-1, 1]); else a plain copy."""
    bare = copy.deepcopy(net)
    if is_unit_range_adapted(bare):
        for hooks, hook in ((bare._forward_pre_hooks, _to_unit), (bare._forward_hooks, _from_unit)):
            for key in [k for k, fn in hooks.items() if fn is hook]:
                del hooks[key]
        delattr(bare, _ADAPTED)
    return bare
