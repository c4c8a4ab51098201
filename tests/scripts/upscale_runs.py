"""What the tests of scripts/upscale.py share: tiny checkpoint folders, photos and an in-process runner.

The models are tiny networks saved as checkpoint folders (train_opt.json + random weights), as train.py and
`download.py model sr` leave them, so every run takes a second or two. The fixtures that build them are in
tests/scripts/conftest.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from PIL import Image

from models import networks
from util.cli import run_cli

TINY_SRVGG = {"model": "srgan", "netG": "srvgg", "ngf": 8, "n_conv": 1, "scale": 4, "norm": "none"}
TINY_SRRESNET = {"model": "srgan", "netG": "srresnet", "ngf": 8, "n_blocks": 1, "scale": 2, "norm": "batch"}
GENERAL, WDN = "realesr-general-x4v3", "realesr-general-wdn-x4v3"
# fp32 on the CPU: `--amp auto` computes in bf16 on a CPU with native bf16 (AVX512-BF16, AMX), and these tests
# compare with fp32 forwards (bf16 has its own test below).
CPU = ["-g", "-1", "--fp32"]


def save_run(checkpoints: Path, name: str, options: Dict, seed: int) -> Dict[str, torch.Tensor]:
    """A checkpoint folder as training or the zoo leaves it: train_opt.json and latest_net_G.pth (random)."""
    torch.manual_seed(seed)
    extra = {k: options[k] for k in ("n_conv", "n_blocks", "scale") if k in options}
    net = networks.define_G(3, 3, options["ngf"], options["netG"], options["norm"], **extra)
    if options["norm"] == "batch":  # running statistics that are not the identity, so eval mode matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    folder = checkpoints / name
    folder.mkdir(parents=True)
    (folder / "train_opt.json").write_text(json.dumps({**options, "name": name, "input_nc": 3, "output_nc": 3}))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    torch.save(state, folder / "latest_net_G.pth")
    return state


def rgb(path: Path, w: int = 13, h: int = 10, seed: int = 0) -> Path:
    values = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(values).save(path)
    return path


def net_of(states: Dict[str, torch.Tensor], options: Dict) -> torch.nn.Module:
    extra = {k: options[k] for k in ("n_conv", "n_blocks", "scale") if k in options}
    net = networks.define_G(3, 3, options["ngf"], options["netG"], options["norm"], **extra)
    net.load_state_dict(states)
    return net.eval()


def run(script, capsys, argv: List[str]) -> Tuple[int, str, str]:
    """Exit code, stdout and stderr of `upscale.py ARGV`."""
    capsys.readouterr()
    code = run_cli(script.main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
