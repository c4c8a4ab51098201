"""Deepen a trained SRVGGNetCompact: more body convolutions, the same function, for `--pretrained_G`.

A wider budget of layers pays only if training gets to use it; starting the deeper network from the trained
smaller one (models/archs/srvgg_arch.py `deepen_state`: identity layers spread between the trained ones) keeps
everything the smaller one learned, where a fresh start would spend its first hundreds of epochs relearning it.

    python scripts/deepen_srvgg.py checkpoints/realworld_x4_net deep32.pth --n_conv 32
    bash scripts/realesr_compact.sh DATAROOT NAME --n_conv 32 --pretrained_G deep32.pth

SOURCE is a generator file or a checkpoint folder (its EMA weights first, as --pretrained_G reads it); the output
is written atomically, and the script checks that both networks give the same output before it writes.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import List, Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models.archs.srvgg_arch import SRVGGNetCompact, body_convs, deepen_state  # noqa: E402
from models.inference.published_weights import pretrained_generator_file  # noqa: E402
from models.training.checkpoints import load_state_dict_file  # noqa: E402
from util.cli import OptionParser, run_cli  # noqa: E402
from util.errors import CheckpointError  # noqa: E402
from util.fileio import atomic_save_torch  # noqa: E402

logger = logging.getLogger("deepen_srvgg")


def _same_function(small: dict, deep: dict, n_conv: int) -> float:
    """Largest absolute difference between the two networks' outputs on a fixed random 24x24 input."""
    ngf, input_nc = small["body.0.weight"].shape[:2]
    scale = int(round((small[f"body.{2 + 2 * body_convs(small)}.weight"].shape[0] // input_nc) ** 0.5))
    nets = []
    for state, depth in ((small, body_convs(small)), (deep, n_conv)):
        net = SRVGGNetCompact(input_nc, input_nc, ngf, depth, scale).eval()
        net.load_state_dict({k: v.float() for k, v in state.items()})
        nets.append(net)
    x = torch.rand(1, input_nc, 24, 24, generator=torch.Generator().manual_seed(0))  # (1, C, 24, 24)
    with torch.no_grad():
        return float((nets[0](x) - nets[1](x)).abs().max())


def main(argv: Optional[List[str]] = None) -> int:
    parser = OptionParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="SRVGG generator file or checkpoint folder")
    parser.add_argument("output", help="the deepened generator file to write")
    parser.add_argument("--n_conv", type=int, required=True, help="body convolutions of the deeper network")
    opt = parser.parse_args(argv)
    file = pretrained_generator_file(opt.source)
    small = load_state_dict_file(file)
    try:
        deep = deepen_state(small, opt.n_conv)
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{file}: {e}") from e
    gap = _same_function(small, deep, opt.n_conv)
    if gap > 1e-4:
        logger.error("the deepened network differs from %s by %.2g: not written", file, gap)
        return 1
    atomic_save_torch(deep, opt.output)
    logger.info("%s: %d -> %d body convolutions (outputs agree within %.1g), written to %s",
                file, body_convs(small), opt.n_conv, gap, opt.output)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
