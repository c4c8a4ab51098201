"""Exponential moving average of the generators' weights (`--ema_decay`), for every model.

After each optimiser step that moves a generator, its average follows it:

    ema = decay * ema + (1 - decay) * param          (floating-point parameters)
    ema_buffer = buffer                              (buffers: BatchNorm's running statistics, counters)

Buffers are copied rather than averaged: running statistics are themselves averages, of the activations of the
current weights, and an average of averages would describe no network. The average of a generator named `G`
(`G_A`, ...) is the network `G_ema`, saved beside the others as `<epoch>_net_G_ema.pth`: a plain state_dict with
the generator's keys, in the same save set as the training state (models/training/train_state.py), so test.py, the
reference (`--model test --model_suffix _ema`) and `--pretrained_G` read it like any generator file. BasicSR and
Real-ESRGAN keep theirs under the key `params_ema` inside one file per network; this toolkit's files hold one
state_dict each, so the average is a file of its own, named by the same suffix convention.

No warm-up: the average starts as a copy of the generator (not zeros, so there is no bias to correct) and uses
`decay` from the first step, as BasicSR and Real-ESRGAN do. The recipes that use EMA fine-tune from a pretrained
generator (Real-ESRGAN from Real-ESRNet), where the starting copy is already a good network; a warm-up schedule
would also make the average depend on a step count, one more value to keep exact across a resume. The price:
trained from scratch with decay 0.999, the average still leans on the initial weights for the first few thousand
steps (0.999 ** 3000 = 5%).

The averages are kept beside the bare (unwrapped) generators, never inside DistributedDataParallel or a compiled
wrapper: under DDP every rank steps the same parameters, so every rank's average is the same, and rank 0 saves it.
Under `--amp fp16` a step the loss scaler skips (overflowed gradients) still moves the average towards the
unchanged weights; reading whether it skipped would make the host wait for the device every step.
"""
from __future__ import annotations

import copy
import logging
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .checkpoints import cpu_state_dict, load_into, load_state_dict_file
from ..archs.init import unwrap

logger = logging.getLogger(__name__)

SUFFIX = "_ema"


def ema_name(name: str) -> str:
    """The network name of generator `name`'s average: 'G' -> 'G_ema', 'G_A' -> 'G_A_ema'."""
    return name + SUFFIX


def is_generator(name: str) -> bool:
    """Whether network `name` of a model is a generator (every name but the discriminators' 'D...')."""
    return not name.startswith("D")


class GeneratorEMA:
    """Moving averages of some generators, each a frozen copy of its generator's module (so it can also run).
    Without generators (the default, and --ema_decay 0) it holds, saves and does nothing."""

    def __init__(self, generators: Optional[Mapping[str, nn.Module]] = None,
                 optimizers: Sequence[torch.optim.Optimizer] = (), decay: float = 0.0) -> None:
        """`generators`: {name: bare module}; `optimizers`: those whose steps move them (each generator is averaged
        after the steps of the optimisers that hold its parameters)."""
        generators = generators or {}
        if generators and not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.live: Dict[str, nn.Module] = {name: unwrap(net) for name, net in generators.items()}
        self.averages: Dict[str, nn.Module] = {name: _frozen_copy(net) for name, net in self.live.items()}
        self._moved_by: Dict[int, List[str]] = {}
        for optimizer in optimizers:
            held = {id(p) for group in optimizer.param_groups for p in group["params"]}
            self._moved_by[id(optimizer)] = [name for name, net in self.live.items()
                                             if any(id(p) in held for p in net.parameters())]

    def networks(self) -> List[nn.Module]:
        """The average modules (e.g. for the speed settings: the same layout as the generators)."""
        return list(self.averages.values())

    @torch.no_grad()
    def update(self, optimizer: torch.optim.Optimizer) -> None:
        """Move the averages of the generators `optimizer` has just stepped (no host-device synchronisation)."""
        for name in self._moved_by.get(id(optimizer), ()):
            self._update(name)

    def _update(self, name: str) -> None:
        # Looked up at each update: `.to(memory_format=...)` replaces buffers (and parameters' data) by new tensors.
        live = self.live[name].state_dict(keep_vars=True)
        average = self.averages[name].state_dict(keep_vars=True)
        averaged: Tuple[List[torch.Tensor], List[torch.Tensor]] = ([], [])
        seen = set()
        for key, value in live.items():
            target = average[key]
            if id(target) in seen:  # a tensor shared by two keys (tied weights) moves once
                continue
            seen.add(id(target))
            if isinstance(value, nn.Parameter) and value.is_floating_point():
                averaged[0].append(target)
                averaged[1].append(value.detach())
            else:
                target.copy_(value)
        if averaged[0]:
            torch._foreach_mul_(averaged[0], self.decay)
            torch._foreach_add_(averaged[0], averaged[1], alpha=1.0 - self.decay)

    def state_dicts(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """{'<name>_ema': CPU state_dict}: what a save writes, keys equal to the generator's."""
        return {ema_name(name): cpu_state_dict(net) for name, net in self.averages.items()}

    def reset(self, name: str) -> None:
        """Start generator `name`'s average again from its current weights."""
        self.averages[name].load_state_dict(self.live[name].state_dict())

    def load(self, name: str, state: Dict[str, torch.Tensor], source: str, options: Sequence[str]) -> None:
        """Load a saved average of generator `name`; a file that does not fit is the CheckpointError a generator
        file gets (`options`: the options that decide the generator's layout)."""
        load_into(self.averages[name], state, source, options)

    def load_training_state(self, networks: Mapping[str, Any], options_of: Callable[[str], Sequence[str]]) -> None:
        """Restore the averages from a training state's networks; one a state lacks (a run resumed with
        --ema_decay for the first time) starts from the resumed generator."""
        for name in self.averages:
            if ema_name(name) in networks:
                self.load(name, networks[ema_name(name)], f"training state (network {ema_name(name)})",
                          options_of(name))
            else:
                self.reset(name)
                logger.info("--ema_decay: the run being resumed kept no average of %s; it starts from the resumed "
                            "weights", name)


def _frozen_copy(net: nn.Module) -> nn.Module:
    """A copy of `net` that takes no gradients and stays in eval mode (its buffers change only by copying)."""
    clone = copy.deepcopy(net)
    clone.requires_grad_(False)
    return clone.eval()


def for_training(model: Any, opt: Any, files_label: Union[int, str, None]) -> GeneratorEMA:
    """The averages of `model`'s generators under `--ema_decay` > 0 (else an empty GeneratorEMA), built before the
    speed settings and DDP. `files_label`: the label of the network files just loaded (`--continue_train` from
    files), whose `<label>_net_<G>_ema.pth` the averages start from where present; None when a training state
    provides them (or none was loaded)."""
    decay = float(getattr(opt, "ema_decay", 0.0))
    if not model.isTrain or decay <= 0:
        return GeneratorEMA()
    generators = {name: net for name, net in model.named_networks() if is_generator(name)}
    ema = GeneratorEMA(generators, model.optimizers, decay)
    for name in generators if files_label is not None else ():
        path = model.network_path(files_label, ema_name(name))
        if os.path.isfile(path):
            ema.load(name, load_state_dict_file(path), path, model.shaping_options(name))
            logger.info("loaded %s", path)
    logger.info("--ema_decay %g: averaging %s", decay, ", ".join(generators))
    return ema


def inference_file(model: Any, epoch: Union[int, str], name: str) -> str:
    """The file test.py loads network `name` from: the generator's average `<epoch>_net_<name>_ema.pth` where one
    was saved (unless `--no_ema`), else `<epoch>_net_<name>.pth`. Training always loads the raw weights."""
    raw = model.network_path(epoch, name)
    if model.isTrain or not is_generator(name) or getattr(model.opt, "no_ema", False):
        return raw
    average = model.network_path(epoch, ema_name(name))
    return average if os.path.isfile(average) else raw


def stale_average_files(path_of: Callable[[Any, str], str], labels: Sequence[Any],
                        networks: Mapping[str, Any]) -> List[str]:
    """Average files that a save of `networks` under `labels` would leave behind from an earlier save (a run
    resumed without --ema_decay): `path_of(label, '<G>_ema')` of each generator `G` whose average `networks`
    lacks, where it exists. test.py prefers such a file: it must go with the save that supersedes its generator."""
    return [path for label in labels for name in networks
            if is_generator(name) and not name.endswith(SUFFIX) and ema_name(name) not in networks
            for path in [path_of(label, ema_name(name))] if os.path.isfile(path)]
