"""Network files: plain state_dicts written from CPU, read with `weights_only=True`, loaded strictly.

The files are the reference's format (`<epoch>_net_<name>.pth`), so checkpoints move between the two
toolkits either way. Loading names the offending tensors when a file does not fit the network.
"""
from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

import torch
import torch.nn as nn

from util.errors import CheckpointError, StorageError
from util.fileio import atomic_save_torch, load_torch_weights_only, write_failure

from ..archs.init import ARCHITECTURE_INIT, unwrap


def match_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Lay each optimiser state tensor out like its parameter (in place of the loaded one).

    The fused Adam kernel reads a parameter, its gradient and its moments as if they shared one memory
    layout, and gives wrong updates, silently, when they do not: a state saved under `--channels_last off`
    and resumed under `on` (or the reverse) would be read scrambled. Autograd already lays gradients out
    like their parameters.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def cpu_state_dict(net: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """The bare network's state_dict copied to CPU (keys without a DataParallel `module.` prefix), in the
    standard layout whatever --channels_last: the files are the same either way."""
    state = unwrap(net).state_dict()
    cpu_state: "OrderedDict[str, torch.Tensor]" = OrderedDict(
        (k, v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)) for k, v in state.items())
    cpu_state._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]
    return cpu_state


def save_network_file(state: object, path: str,
                      intact: str = "the previous checkpoint files are intact") -> str:
    """Write `state` to `path` atomically; return `path`. A full disk or a read-only folder is a StorageError
    that says what failed, what to do about it (util.fileio.write_failure) and what is still safe (`intact`)."""
    try:
        atomic_save_torch(state, path)
    except OSError as e:
        raise StorageError(f"{write_failure(e, 'choose another --checkpoints_dir')} ({intact})") from e
    return path


def check_files_fit(load: Callable[[Any], Any], opt: Any) -> None:
    """Build the networks `opt` describes on the meta device and load their weights into them (`load(probe)`, with
    `probe` the options to build them with), so that options that do not fit the weights (a hand-edited `n_blocks:
    2000` in train_opt.json) are a CheckpointError in a moment, not after the real networks have been built and
    initialised, which can take minutes and all the memory. On the meta device there is no memory and no
    initialisation (torch's initialisers are slow there: none is asked for), and a file's tensors are checked, not
    copied."""
    probe = opt.replace(gpu_ids=(), device=torch.device("meta"), compile=False, init_type=ARCHITECTURE_INIT)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch notes that copying into meta tensors does nothing
        load(probe)


def load_state_dict_file(path: str) -> Dict[str, torch.Tensor]:
    """Read a state_dict with `weights_only=True`: a checkpoint from the internet cannot run code."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}: train first, or check --name, --epoch and --checkpoints_dir")
    state = load_torch_weights_only(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a network state_dict")
    return state


def weights_problem(state: Mapping[str, object], floating: Optional[Iterable[str]] = None) -> Optional[str]:
    """What makes `state` unusable as a network's weights, naming the first bad tensor, or None.

    `floating`: the keys the network holds as floating-point tensors (default: every floating-point tensor of
    `state`). Each of them must be a floating-point tensor of finite values: an all-NaN file (a diverged run,
    a damaged download) or an int32 file of zeros otherwise loads without a word, since `load_state_dict`
    copies and casts, and fails later as a traceback deep in the upscaling or as black images.
    """
    keys = list(floating) if floating is not None else [
        k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    for key in keys:
        value = state.get(key)
        if not isinstance(value, torch.Tensor):
            continue  # a missing or non-tensor entry is load_into's strict check's to report
        if not value.is_floating_point():
            return f"tensor {key} is {str(value.dtype).replace('torch.', '')}, not floating point"
        if not bool(torch.isfinite(value).all()):
            bad = "NaN" if bool(torch.isnan(value).any()) else "infinite"
            return f"tensor {key} holds {bad} values"
    return None


def load_into(net: nn.Module, state: Dict[str, torch.Tensor], path: str = "<state_dict>",
              options: Sequence[str] = ()) -> None:
    """Strictly load `state` into `net`, after dropping InstanceNorm running statistics that checkpoints
    from PyTorch < 0.4 carry (the reference's published models do) and that today's InstanceNorm lacks.

    `options`: the options that decide `net`'s layout (models.BaseModel.network_options), which the error for
    a file that does not fit tells the user to check.
    """
    state = OrderedDict(state)
    state.pop("_metadata", None)
    expected = net.state_dict()
    instance_norms = {name for name, m in net.named_modules() if isinstance(m, nn.InstanceNorm2d)}
    for key in list(state):
        owner, _, leaf = key.rpartition(".")
        if key not in expected and owner in instance_norms and leaf in ("running_mean", "running_var",
                                                                         "num_batches_tracked"):
            del state[key]
    problem = weights_problem(state, [k for k, v in expected.items() if v.is_floating_point()])
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}: the file is damaged or its training diverged; use another "
                              f"checkpoint")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        # torch's message is a header line ("Error(s) in loading state_dict for X:") then one line per problem.
        details = "; ".join(line.strip() for line in str(e).splitlines()[1:] if line.strip())
        if len(details) > 300:
            details = details[:300] + "..."
        hint = ", ".join(f"--{option}" for option in options) if options else "the options it was trained with"
        raise CheckpointError(
            f"{path} does not fit the network built from the options ({details or str(e)}); check {hint}"
        ) from e
