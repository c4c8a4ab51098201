"""Published super-resolution weights in the toolkit's layout: unwrap, convert old key names, check strictly.

Publishers do not save a bare state_dict of our networks. BasicSR and Real-ESRGAN nest it in a dict under
'params_ema' (the weights' moving average, what they test with) or 'params'. The original ESRGAN release
(2018) names its keys after its old sequential model (model.0, model.1.sub.N.RDBk.convj.0, ..., model.10);
its 2019 re-release after its own RRDBNet (RRDB_trunk.N.RDBk.convj, trunk_conv, upconv1, upconv2, HRconv).
Our rrdbnet, srvgg and msrresnet use BasicSR's names, so installing a file (util.download.install_sr_model,
which receives `to_toolkit_state_dict` from the entry point, since util never imports models) is: take the
weights out of their wrapper, rename the ESRGAN keys, and compare the result key by key and shape by shape
with the network the zoo entry describes, built on the meta device (no memory, no initialisation). The first
key that does not fit is named with the layout that was expected, so a wrong or damaged file is refused at
install time instead of failing later inside test.py.
"""
from __future__ import annotations

import argparse
import os
import re
from collections import OrderedDict
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from util.download import SRModelEntry
from util.errors import CheckpointError
from util.fileio import file_problem

from .. import networks
from ..archs import registration
from ..training.checkpoints import load_into, load_state_dict_file, weights_problem
from ..training.ema import ema_name

# The wrapper keys BasicSR writes, in the order Real-ESRGAN's inference reads them.
WRAPPER_KEYS = ("params_ema", "params")

# (pattern, replacement) on whole keys, for the two ESRGAN layouts (the 2018 one, then the 2019 one).
_ESRGAN_RENAMES: List[Tuple["re.Pattern[str]", str]] = [(re.compile(p), r) for p, r in (
    (r"^model\.0\.(weight|bias)$", r"conv_first.\1"),
    (r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$", r"body.\1.rdb\2.conv\3.\4"),
    (r"^model\.1\.sub\.\d+\.(weight|bias)$", r"conv_body.\1"),  # the trunk's last conv: sub.<n_blocks>
    (r"^model\.3\.(weight|bias)$", r"conv_up1.\1"),
    (r"^model\.6\.(weight|bias)$", r"conv_up2.\1"),
    (r"^model\.8\.(weight|bias)$", r"conv_hr.\1"),
    (r"^model\.10\.(weight|bias)$", r"conv_last.\1"),
    (r"^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)$", r"body.\1.rdb\2.conv\3.\4"),
    (r"^trunk_conv\.(weight|bias)$", r"conv_body.\1"),
    (r"^upconv([12])\.(weight|bias)$", r"conv_up\1.\2"),
    (r"^HRconv\.(weight|bias)$", r"conv_hr.\1"),
)]
_ESRGAN_MARKERS = ("model.0.weight", "RRDB_trunk.0.RDB1.conv1.weight")


def convert_esrgan_keys(state: Mapping[str, Any]) -> "OrderedDict[str, Any]":
    """The original ESRGAN release's key names (2018 or 2019) -> BasicSR's, which our rrdbnet uses.

    Keys already in BasicSR's layout, and keys no rule knows, pass unchanged (the strict check names the
    latter). Only rrdbnet files go through here: msrresnet's own `upconv1` must not be renamed.
    """
    converted: "OrderedDict[str, Any]" = OrderedDict()
    for key, value in state.items():
        for pattern, replacement in _ESRGAN_RENAMES:
            new, count = pattern.subn(replacement, key)
            if count:
                key = new
                break
        converted[key] = value
    return converted


def unwrap(loaded: object, source: str) -> Mapping[str, Any]:
    """The state_dict inside what torch.load returned: under the first of WRAPPER_KEYS present (as Real-ESRGAN
    reads them: the moving average when a file holds both), else the dict itself when it maps names to
    tensors (a bare state_dict)."""
    if not isinstance(loaded, Mapping) or not loaded:
        held = "an empty dict" if isinstance(loaded, Mapping) else f"a {type(loaded).__name__}"
        raise CheckpointError(f"{source} holds {held}, not network weights")
    for key in WRAPPER_KEYS:
        if isinstance(loaded.get(key), Mapping):
            return loaded[key]
    if not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        keys = ", ".join(repr(k) for k in list(loaded)[:4])
        raise CheckpointError(f"{source} holds neither tensors nor a {' / '.join(repr(k) for k in WRAPPER_KEYS)} "
                              f"dict of them (its keys: {keys}): it is not a published SR model")
    return loaded


def published_state(loaded: object, netG: str, source: str) -> Mapping[str, Any]:
    """The state_dict of generator `netG` in what torch.load returned from a published or toolkit file: out of
    its wrapper (`unwrap`), with the original ESRGAN key names converted where `netG` is rrdbnet."""
    state = unwrap(loaded, source)
    if netG == "rrdbnet" and any(marker in state for marker in _ESRGAN_MARKERS):
        state = convert_esrgan_keys(state)
    return state


def to_publisher_state_dict(state: Mapping[str, torch.Tensor], netG: str
                             ) -> Tuple["OrderedDict[str, torch.Tensor]", str]:
    """The toolkit's state_dict of generator `netG` in its publisher's key layout, and that layout's name
    (SR_KEY_LAYOUTS; 'toolkit' for a generator without a publisher's layout, keys unchanged): the inverse of
    `to_toolkit_state_dict`. The registration's `publisher_layout` is the one table for both directions:
    'basicsr' generators keep BasicSR's key names in the toolkit (installing only unwraps and checks them), so
    their keys go back unchanged and a published file round-trips key for key."""
    layout = networks.GENERATORS.meta(netG).get("publisher_layout", "toolkit")
    return OrderedDict((key, value) for key, value in state.items()), layout


def _options_namespace(entry: SRModelEntry) -> argparse.Namespace:
    """The options the entry's network is built from: the architecture's own defaults, then the entry's."""
    parser = argparse.ArgumentParser(add_help=False)
    registration.add_options(networks.GENERATORS, entry.netG, parser, False)
    return argparse.Namespace(**{**vars(parser.parse_args([])), "scale": entry.scale, **entry.options})


def expected_shapes(entry: SRModelEntry) -> "OrderedDict[str, Tuple[int, ...]]":
    """Every key of the state_dict of the network `entry` describes, with its shape, in the network's order."""
    opt = _options_namespace(entry)
    builder = networks.GENERATORS.get(entry.netG)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        net = builder(3, 3, opt.ngf, networks.get_norm_layer("none"), False,
                      **registration.builder_kwargs(networks.GENERATORS, entry.netG, opt))
    return OrderedDict((k, tuple(v.shape)) for k, v in net.state_dict().items())


def describe_layout(entry: SRModelEntry, shapes: Mapping[str, Tuple[int, ...]]) -> str:
    """One line: the file, the network, how many tensors from which first key to which last, and the wrapper."""
    keys = list(shapes)
    names = {"basicsr": "BasicSR's key names", "esrgan-2018": "the original ESRGAN release's key names (or "
             "BasicSR's)"}[entry.key_layout]
    wrapper = f", under {entry.wrapper_key!r}" if entry.wrapper_key else ""
    return (f"{entry.file}: {entry.architecture} x{entry.scale} in {names}, {len(keys)} tensors from "
            f"{keys[0]} {shapes[keys[0]]} to {keys[-1]} {shapes[keys[-1]]}{wrapper}")


def first_mismatch(state: Mapping[str, Any], shapes: Mapping[str, Tuple[int, ...]]) -> Optional[str]:
    """What is wrong with `state` against `shapes`, for the first offending key in the network's order
    (missing, not a tensor, wrong shape), then the first key the network does not have; None if it fits."""
    for key, shape in shapes.items():
        if key not in state:
            return f"key {key!r} is missing"
        value = state[key]
        if not isinstance(value, torch.Tensor):
            return f"{key!r} holds a value of type {type(value).__name__}, not a tensor"
        if tuple(value.shape) != shape:
            return f"{key!r} has shape {tuple(value.shape)}, expected {shape}"
    extra = [key for key in state if key not in shapes]
    return f"unexpected key {extra[0]!r}" if extra else None


def to_toolkit_state_dict(loaded: object, entry: SRModelEntry, source: str) -> "OrderedDict[str, torch.Tensor]":
    """The published weights `loaded` (what torch.load returned) as a plain state_dict of the toolkit's network
    for `entry`; raises CheckpointError naming the first key that does not fit and the layout expected.

    The converter `util.download.install_sr_model` takes. Tensors are kept as published (dtype included):
    loading copies them into the network's own parameters.
    """
    state = published_state(loaded, entry.netG, source)
    shapes = expected_shapes(entry)
    problem = first_mismatch(state, shapes)
    if problem is not None:
        raise CheckpointError(f"{source} does not have the layout of {entry.name}: {problem}; expected "
                              f"{describe_layout(entry, shapes)}")
    problem = weights_problem(state, [k for k in shapes if not k.endswith("num_batches_tracked")])
    if problem is not None:
        raise CheckpointError(f"{source}: {problem}: not usable weights of {entry.name} (a damaged file?)")
    return OrderedDict((key, state[key].detach().contiguous()) for key in shapes)


# What --pretrained_G reads in a checkpoint folder (a zoo install or a training run), first found first: the
# generator's average where one was saved (Real-ESRGAN starts its GAN stage from Real-ESRNet's `params_ema`), else
# the generator itself.
PRETRAINED_FILES = (f"latest_net_{ema_name('G')}.pth", "latest_net_G.pth")


def pretrained_generator_file(path: str) -> str:
    """The generator file `--pretrained_G path` names: `path` itself, or in a checkpoint folder the first of
    PRETRAINED_FILES; raises CheckpointError saying what is missing."""
    if os.path.isdir(path):
        for name in PRETRAINED_FILES:
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise CheckpointError(f"{path} is a folder without {' or '.join(PRETRAINED_FILES)}: name the checkpoint "
                              f"file, or install a zoo model (scripts/download.py model sr NAME)")
    problem = file_problem(path)
    if problem is not None:
        raise CheckpointError(f"{path} {problem}")
    return path


def load_pretrained_generator(net: nn.Module, path: str, netG: str, options: Sequence[str] = ()) -> str:
    """Load `--pretrained_G path` (a file or checkpoint folder: `pretrained_generator_file`) strictly into the bare
    generator `net` (--netG `netG`); return the file read.

    The file may be the toolkit's (a training run, an installed zoo model) or the publisher's as downloaded: a
    BasicSR / Real-ESRGAN `params_ema` / `params` wrapper, or the original ESRGAN key names, go through the same
    conversion as installing (`published_state`). A file that does not fit raises CheckpointError naming its first
    mismatched key, in the network's order, and the options that shape the network.
    """
    file = pretrained_generator_file(path)
    state = published_state(load_state_dict_file(file), netG, file)
    try:
        load_into(net, dict(state), file, options)
    except CheckpointError as e:
        shapes = OrderedDict((key, tuple(value.shape)) for key, value in net.state_dict().items())
        problem = first_mismatch(state, shapes)
        if problem is None:
            raise
        hint = ", ".join(f"--{option}" for option in options) or "the network's options"
        raise CheckpointError(f"--pretrained_G {file} does not fit --netG {netG} as the options build it: {problem} "
                              f"(the network has {len(shapes)} tensors from {next(iter(shapes))}); check {hint}") from e
    return file
