"""Weight initialisation (`--init_type`, `--init_gain`) and device placement of new networks."""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn
from torch.nn import init

from util.registry import Registry

InitFn = Callable[[torch.Tensor, float], None]

INIT_TYPES: Registry[InitFn] = Registry("init type")
INIT_TYPES.add("normal", lambda w, gain: init.normal_(w, 0.0, gain))
INIT_TYPES.add("xavier", lambda w, gain: init.xavier_normal_(w, gain=gain))
INIT_TYPES.add("kaiming", lambda w, gain: init.kaiming_normal_(w, a=0, mode="fan_in"))
INIT_TYPES.add("orthogonal", lambda w, gain: init.orthogonal_(w, gain=gain))
# The network as its constructor initialised it: the publishers' scheme where the architecture has one (rrdbnet,
# msrresnet: `scaled_kaiming_`), PyTorch's layer defaults elsewhere. Those generators make it their default.
ARCHITECTURE_INIT = "architecture"
INIT_TYPES.add(ARCHITECTURE_INIT, lambda w, gain: None)


def scaled_kaiming_(modules: Iterable[nn.Module], scale: float = 0.1) -> None:
    """Kaiming-normal weights (fan_in, for ReLU) times `scale`, zero biases: BasicSR's `default_init_weights`.

    Residual SR networks without normalisation (RRDBNet, MSRResNet) use it on their residual branches so each
    block starts close to the identity; their constructors call it, as the publishers' do.
    """
    for module in modules:
        init.kaiming_normal_(module.weight, a=0, mode="fan_in")
        with torch.no_grad():
            module.weight.mul_(scale)
        if module.bias is not None:
            init.zeros_(module.bias)


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> None:
    """Initialise conv and linear weights with `init_type`, biases with 0, BatchNorm with N(1, gain).

    `gain` is the std for `normal` and the scale for `xavier`/`orthogonal` (the pix2pix paper's N(0, 0.02)).
    `architecture` leaves the network as its constructor initialised it.
    """
    weight_init = INIT_TYPES.get(init_type)
    if init_type == ARCHITECTURE_INIT:
        return

    def init_module(m: nn.Module) -> None:
        weight = getattr(m, "weight", None)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and weight is not None:
            weight_init(weight.data, init_gain)
            if getattr(m, "bias", None) is not None:
                init.constant_(m.bias.data, 0.0)
        elif isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm)) and weight is not None:
            # BatchNorm's weight is a per-channel scale, not a matrix: centre it on 1.
            init.normal_(m.weight.data, 1.0, init_gain)
            init.constant_(m.bias.data, 0.0)

    net.apply(init_module)


def init_net(
    net: nn.Module, init_type: str = "normal", init_gain: float = 0.02, gpu_ids: Sequence[int] = ()
) -> nn.Module:
    """Initialise `net`, move it to the first GPU in `gpu_ids` (CPU when empty).

    With several GPU ids the network is wrapped in DataParallel, as the reference does; checkpoints are
    always saved from the bare network (`unwrap`), so their keys never carry a `module.` prefix.
    """
    init_weights(net, init_type, init_gain)
    if gpu_ids:
        net.to(torch.device("cuda", gpu_ids[0]))
        if len(gpu_ids) > 1:
            net = nn.DataParallel(net, device_ids=list(gpu_ids))
    return net


def unwrap(net: nn.Module) -> nn.Module:
    """The bare network inside a DataParallel/DistributedDataParallel wrapper (or `net` itself)."""
    return net.module if isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else net
