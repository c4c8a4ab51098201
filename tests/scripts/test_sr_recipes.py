"""The SR recipe scripts (SRGAN, ESRGAN, Real-ESRGAN, the compact real-world model) run end to end on tiny
networks (Set5) and train with the settings they document."""
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
TINY_COMMON = ["--ngf", "8", "--ndf", "8", "--crop_size", "32", "--batch_size", "2", "--gpu_ids", "-1",
               "--num_threads", "0", "--display_id", "0", "--max_dataset_size", "2", "--print_freq", "1"]
TINY = [*TINY_COMMON, "--n_blocks", "1", "--netD_head", "conv"]  # srresnet and --netD srgan


@pytest.fixture(scope="module")
def vgg19_features(tmp_path_factory) -> Path:
    """Random weights in torchvision's vgg19 layout (features only): enough for phi_5,4, never used for figures."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg19_features.pth"
    features = torchvision.models.vgg19(weights=None).features
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def run_recipe(script: str, tmp_path: Path, env: Dict[str, str], *extra: str,
               name: str = "recipe") -> subprocess.CompletedProcess:
    require_or_skip(SET5.is_dir(), f"shared SR images are absent ({SET5})")
    environment = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(["bash", f"scripts/{script}", str(SET5), name, *extra], cwd=ROOT, env=environment,
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


# The recipes' own generators, made tiny (after TINY, so these win).
TINY_RRDB = ["--ngf", "8", "--n_blocks", "1", "--growth_channels", "4"]
TINY_SRVGG = ["--ngf", "8", "--n_conv", "1"]
REAL_ESRGAN_LAYERS = "conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1"


def _real_esrgan_stage2(opt: dict) -> None:
    """Real-ESRGAN's stage-2 losses and optimiser (../shared/reference/realesrgan_recipe.md)."""
    assert (opt["netD"], opt["gan_mode"], opt["lambda_adv"], opt["pretrain_epochs"]) == ("unet_sn", "vanilla", 0.1, 0)
    assert (opt["pixel_loss"], opt["lambda_pixel"], opt["lambda_perceptual"]) == ("l1", 1, 1)
    assert (opt["perceptual_layers"], opt["perceptual_criterion"], opt["vgg_before_activation"]) == \
        (REAL_ESRGAN_LAYERS, "l1", True)
    assert (opt["usm_targets"], opt["lr"], opt["beta1"], opt["beta2"], opt["ema_decay"]) == \
        ("both", 1e-4, 0.9, 0.99, 0.999)
    assert opt["degradation"] == "realesrgan"


def test_realesrgan_recipe_runs_both_stages_and_hands_over_the_ema_weights(tmp_path, vgg19_features) -> None:
    checkpoints = tmp_path / "ck"
    env = {"NET_EPOCHS": "1", "GAN_EPOCHS": "1", "CHECKPOINTS_DIR": str(checkpoints)}
    proc = run_recipe("realesrgan.sh", tmp_path, env, *TINY_COMMON, *TINY_RRDB, "--vgg_weights", str(vgg19_features))
    assert proc.returncode == 0, proc.stderr[-3000:]
    stage1, stage2 = saved_options(checkpoints / "recipe_net"), saved_options(checkpoints / "recipe")
    assert (stage1["netG"], stage1["degradation"], stage1["pixel_loss"], stage1["lambda_perceptual"]) == \
        ("rrdbnet", "realesrgan", "l1", 0)
    assert (stage1["n_blocks"], stage1["growth_channels"], stage1["netD"]) == (1, 4, "unet_sn")  # TINY_RRDB won
    assert stage1["no_rotate"] and stage2["no_rotate"]  # Real-ESRGAN's horizontal flips only
    assert (stage1["lr"], stage1["beta1"], stage1["beta2"], stage1["ema_decay"], stage1["pretrain_epochs"]) == \
        (2e-4, 0.9, 0.99, 0.999, 1)
    _real_esrgan_stage2(stage2)
    assert stage2["netG"] == "rrdbnet" and stage2["pretrained_G"] == str(checkpoints / "recipe_net")
    assert f"generator initialised from {checkpoints / 'recipe_net' / 'latest_net_G_ema.pth'}" in proc.stdout
    assert (checkpoints / "recipe" / "latest_net_G_ema.pth").is_file()
    assert (checkpoints / "recipe" / "latest_net_D.pth").is_file()

    # START_FROM skips Real-ESRNet: stage 2 starts from the given weights (here stage 1's folder).
    env = {**env, "START_FROM": str(checkpoints / "recipe_net")}
    proc = run_recipe("realesrgan.sh", tmp_path, env, *TINY_COMMON, *TINY_RRDB, "--vgg_weights",
                      str(vgg19_features), name="again")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (checkpoints / "again_net").exists()
    assert saved_options(checkpoints / "again")["pretrained_G"] == str(checkpoints / "recipe_net")


def test_esrgan_recipe_halves_the_rate_at_its_milestones(tmp_path, vgg19_features) -> None:
    checkpoints = tmp_path / "ck"
    env = {"PSNR_EPOCHS": "4", "GAN_EPOCHS": "8", "CHECKPOINTS_DIR": str(checkpoints)}
    proc = run_recipe("esrgan.sh", tmp_path, env, *TINY, *TINY_RRDB, "--vgg_weights", str(vgg19_features))
    assert proc.returncode == 0, proc.stderr[-3000:]
    psnr, gan = saved_options(checkpoints / "recipe_psnr"), saved_options(checkpoints / "recipe")
    assert (psnr["netG"], psnr["degradation"], psnr["pixel_loss"], psnr["lambda_perceptual"], psnr["lr"]) == \
        ("rrdbnet", "bicubic", "l1", 0, 2e-4)
    assert (psnr["lr_policy"], psnr["lr_milestones"], psnr["lr_gamma"], psnr["beta2"]) == \
        ("multistep", [1, 2, 3], 0.5, 0.99)
    assert (gan["gan_mode"], gan["lambda_adv"], gan["lambda_pixel"], gan["lambda_perceptual"]) == \
        ("ragan", 5e-3, 1e-2, 1)
    assert (gan["perceptual_layers"], gan["perceptual_criterion"], gan["vgg_before_activation"]) == \
        ("conv5_4:1", "l1", True)
    assert (gan["netD"], gan["lr"], gan["lr_milestones"], gan["ema_decay"]) == ("srgan", 1e-4, [1, 2, 4, 6], 0)
    assert gan["pretrained_G"] == str(checkpoints / "recipe_psnr")
    # Stage 1's rate as train.py reports it after each epoch: halved after epochs 1, 2 and 3.
    halvings = [line for line in proc.stdout.splitlines() if line.startswith("learning rate 0.0002000 ->")]
    assert halvings == ["learning rate 0.0002000 -> 0.0001000"], proc.stdout[-2000:]
    assert "learning rate 0.0001000 -> 0.0000500" in proc.stdout and "0.0000500 -> 0.0000250" in proc.stdout


def test_compact_recipe_runs_both_stages_and_stops_after_the_first_when_asked(tmp_path, vgg19_features) -> None:
    checkpoints = tmp_path / "ck"
    env = {"NET_EPOCHS": "1", "GAN_EPOCHS": "1", "CHECKPOINTS_DIR": str(checkpoints)}
    proc = run_recipe("realesr_compact.sh", tmp_path, env, *TINY_COMMON, *TINY_SRVGG, "--vgg_weights",
                      str(vgg19_features))
    assert proc.returncode == 0, proc.stderr[-3000:]
    stage1, stage2 = saved_options(checkpoints / "recipe_net"), saved_options(checkpoints / "recipe")
    assert (stage1["netG"], stage1["degradation"], stage1["pixel_loss"], stage1["lr_policy"], stage1["ema_decay"]) \
        == ("srvgg", "realesrgan", "l1", "cosine", 0.999)
    _real_esrgan_stage2(stage2)
    assert not stage1["no_rotate"]  # all eight flips and rotations: more from a small dataset
    assert (stage2["netG"], stage2["ndf"]) == ("srvgg", 8)  # the recipe's --ndf 32, overridden by TINY_COMMON
    assert (checkpoints / "recipe" / "latest_net_G_ema.pth").is_file()

    env = {**env, "STAGES": "1"}
    proc = run_recipe("realesr_compact.sh", tmp_path, env, *TINY_COMMON, *TINY_SRVGG, name="only1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (checkpoints / "only1_net" / "latest_net_G_ema.pth").is_file() and not (checkpoints / "only1").exists()


def test_recipes_explain_their_usage_without_arguments() -> None:
    for script in ("srgan_paper.sh", "srgan_seed000.sh", "realesrgan.sh", "esrgan.sh", "realesr_compact.sh"):
        proc = subprocess.run(["bash", f"scripts/{script}"], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 2 and "DATAROOT" in proc.stderr, (script, proc.stderr)


def test_shipped_realworld_model_recipe_chains_three_runs_and_deepens_the_last(tmp_path) -> None:
    """scripts/train_gan_translate_realworld_x4.sh: 16 convolutions from scratch, again from those weights, then
    deepened to 32 and trained on; each run starts from the previous one's EMA weights."""
    require_or_skip(SET5.is_dir(), f"shared SR images are absent ({SET5})")
    checkpoints = tmp_path / "ck"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "EPOCHS": "1", "DATAROOT": str(SET5),
           "CHECKPOINTS_DIR": str(checkpoints)}
    proc = subprocess.run(["bash", "scripts/train_gan_translate_realworld_x4.sh", "rw", *TINY_COMMON], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b, c = (saved_options(checkpoints / f"rw_{run}_net") for run in "abc")
    assert [(o["n_conv"], o["seed"], o["degradation"], o["lambda_perceptual"]) for o in (a, b, c)] == \
        [(16, 0, "realesrgan", 0), (16, 1, "realesrgan", 0), (32, 2, "realesrgan", 0)]
    deepened = checkpoints / "rw_b_net" / "deepened_n_conv32.pth"
    assert (a["pretrained_G"], b["pretrained_G"], c["pretrained_G"]) == \
        (None, str(checkpoints / "rw_a_net"), str(deepened))
    final = torch.load(checkpoints / "rw_c_net" / "latest_net_G_ema.pth", weights_only=True)
    assert "body.66.weight" in final and "body.67.weight" not in final  # 32 body convolutions
