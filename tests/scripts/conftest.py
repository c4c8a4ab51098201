"""Fixtures of the tests of scripts/ (see upscale_runs.py for what they build)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch
from helpers import load_script
from upscale_runs import GENERAL, TINY_SRRESNET, TINY_SRVGG, WDN, save_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Tuple[Path, Dict[str, Dict[str, torch.Tensor]]]:
    """The checkpoints folder and the state_dict of each run in it."""
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    states = {
        "tiny_srvgg": save_run(checkpoints, "tiny_srvgg", TINY_SRVGG, 0),
        "tiny_srresnet": save_run(checkpoints, "tiny_srresnet", TINY_SRRESNET, 1),
        # The two zoo models --denoise blends, installed (as download.py leaves them), tiny.
        GENERAL: save_run(checkpoints, GENERAL, {**TINY_SRVGG, "zoo_model": GENERAL}, 2),
        WDN: save_run(checkpoints, WDN, {**TINY_SRVGG, "zoo_model": WDN}, 3),
    }
    pix2pix = checkpoints / "facades_pix2pix"
    pix2pix.mkdir()
    (pix2pix / "train_opt.json").write_text(json.dumps({"model": "pix2pix", "netG": "unet_128", "ngf": 8}))
    (pix2pix / "latest_net_G.pth").write_bytes(b"never loaded")
    return checkpoints, states


@pytest.fixture(scope="module")
def script():
    return load_script("scripts/upscale.py")
