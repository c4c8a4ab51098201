"""The SRGAN recipe scripts run end to end (tiny networks, Set5) and train with the settings they document."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
import torch
import torchvision

from helpers import ROOT, require_or_skip

SET5 = ROOT.parent / "shared" / "data" / "sr_eval" / "Set5"
# Tiny overrides appended after the recipe's flags (argparse keeps the last value).
TINY = ["--ngf", "8", "--ndf", "8", "--n_blocks", "1", "--crop_size", "32", "--batch_size", "2", "--gpu_ids", "-1",
        "--num_threads", "0", "--display_id", "0", "--max_dataset_size", "2", "--netD_head", "conv", "--print_freq", "1"]


@pytest.fixture(scope="module")
def vgg19_features(tmp_path_factory) -> Path:
    """Random weights in torchvision's vgg19 layout (features only): enough for phi_5,4, never used for figures."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg19_features.pth"
    features = torchvision.models.vgg19(weights=None).features
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def run_recipe(script: str, tmp_path: Path, env: Dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    require_or_skip(SET5.is_dir(), f"shared SR images are absent ({SET5})")
    environment = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(["bash", f"scripts/{script}", str(SET5), "recipe", *extra], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=600)


def saved_options(folder: Path) -> dict:
    return json.loads((folder / "train_opt.json").read_text(encoding="utf-8"))


def test_paper_recipe_runs_both_stages(tmp_path, vgg19_features) -> None:
    checkpoints = tmp_path / "ck"
    proc = run_recipe("srgan_paper.sh", tmp_path, {"SRRESNET_EPOCHS": "1", "SRGAN_EPOCHS": "1",
                                                   "CHECKPOINTS_DIR": str(checkpoints)},
                      *TINY, "--vgg_weights", str(vgg19_features))
    assert proc.returncode == 0, proc.stderr[-3000:]
    stage1, stage2 = saved_options(checkpoints / "recipe_srresnet"), saved_options(checkpoints / "recipe")
    assert stage1["pretrain_epochs"] == 1 and stage1["lambda_perceptual"] == 0 and stage1["lr"] == 1e-4
    assert stage2["pretrained_G"] == str(checkpoints / "recipe_srresnet" / "latest_net_G.pth")
    assert (stage2["lambda_pixel"], stage2["lambda_perceptual"], stage2["lambda_adv"]) == (0, 0.006, 1e-3)
    assert (stage2["vgg_layer"], stage2["gan_mode"], stage2["beta1"]) == ("54", "vanilla", 0.9)
    assert (stage2["n_epochs"], stage2["lr_policy"], stage2["lr_decay_iters"]) == (2, "step", 1)
    assert (checkpoints / "recipe" / "latest_net_D.pth").is_file()


def test_seed000_recipe_settings(tmp_path, vgg19_features) -> None:
    proc = run_recipe("srgan_seed000.sh", tmp_path, {"PRETRAIN_EPOCHS": "1", "GAN_EPOCHS": "1"}, *TINY,
                      "--vgg_weights", str(vgg19_features), "--checkpoints_dir", str(tmp_path / "ck"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    opt = saved_options(tmp_path / "ck" / "recipe")
    assert (opt["lambda_pixel"], opt["lambda_perceptual"], opt["lambda_adv"], opt["gan_mode"]) == \
        (0.8, 0.006, 1e-3, "lsgan")
    assert (opt["d_noise_std"], opt["d_noise_decay"], opt["real_label"]) == (0.05, 0.9, 0.9)
    assert (opt["lr"], opt["beta1"], opt["lr_policy"], opt["pretrain_epochs"], opt["n_epochs"]) == \
        (1e-4, 0.9, "step", 1, 2)
    log = (tmp_path / "ck" / "recipe" / "loss_log.txt").read_text(encoding="utf-8")
    assert "(epoch: 2," in log


def test_recipes_explain_their_usage_without_arguments() -> None:
    for script in ("srgan_paper.sh", "srgan_seed000.sh"):
        proc = subprocess.run(["bash", f"scripts/{script}"], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 2 and "DATAROOT" in proc.stderr, (script, proc.stderr)
