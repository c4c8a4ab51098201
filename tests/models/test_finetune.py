"""Fine-tuning from published weights: `--model srgan --pretrained_G` takes a publisher's file as downloaded
(BasicSR / Real-ESRGAN's `params_ema` / `params` wrapper, the original ESRGAN key names), a toolkit file or a
checkpoint folder (an SR zoo install, a training run), loaded strictly; own LR/HR pairs train through
`--dataset_mode aligned` with the same losses.

The published files are 23-block networks (67 MB); here RRDBNets of one block and 8 features carry the published
key names (checked against tests/fixtures/reference/sr_published_weights.json) with random weights.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from helpers import REFERENCE, ROOT
import torch
from PIL import Image

from models import create_model, networks
from options.train_options import TrainOptions
from util.cli import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

PUBLISHED = json.loads((REFERENCE / "sr_published_weights.json").read_text())
SET5 = ROOT.parent / "shared" / "data" / "sr_eval" / "Set5"
TINY_RRDB = ["--netG", "rrdbnet", "--ngf", "8", "--n_blocks", "1", "--growth_channels", "4", "--scale", "4"]


def _tiny_rrdbnet_state(seed: int) -> Dict[str, torch.Tensor]:
    """Random weights for the tiny RRDBNet, under the toolkit network's (BasicSR's) key names."""
    net = networks.define_G(3, 3, 8, "rrdbnet", "none", False, n_blocks=1, growth_channels=4, scale=4)
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in net.state_dict().items()}


def _opt(tmp_path: Path, *extra: str):
    return TrainOptions().parse([
        "--model", "srgan", "--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir",
        str(tmp_path / "ck"), "--name", "t", "--ndf", "8", "--crop_size", "32", "--display_id", "0",
        "--netD_head", "conv", "--lambda_perceptual", "0", *TINY_RRDB, *extra])


def _assert_generator_holds(model, state: Dict[str, torch.Tensor]) -> None:
    loaded = networks.unwrap(model.netG).state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_the_tiny_network_has_the_published_key_names() -> None:
    """What makes the files below stand-ins for the published ones: the published realesrnet-x4plus keys, less
    those of blocks 1..22, are exactly the one-block network's."""
    published = [k for k in PUBLISHED["realesrnet_x4plus"]["state_dict"] if not re.match(r"body\.([1-9]|1\d|2\d)\.", k)]
    assert list(_tiny_rrdbnet_state(0)) == published


def test_publishers_wrapped_file_loads_its_moving_average(tmp_path) -> None:
    ema, raw = _tiny_rrdbnet_state(1), _tiny_rrdbnet_state(2)
    path = tmp_path / "RealESRNet_x4plus.pth"
    torch.save({"params": raw, "params_ema": ema}, path)  # as BasicSR writes it (and in this order)
    torch.manual_seed(0)
    _assert_generator_holds(create_model(_opt(tmp_path, "--pretrained_G", str(path))), ema)
    only_params = tmp_path / "realesr-general.pth"
    torch.save({"params": raw}, only_params)
    _assert_generator_holds(create_model(_opt(tmp_path, "--pretrained_G", str(only_params))), raw)


def _esrgan_2018_key(key: str) -> str:
    """BasicSR's name -> the original ESRGAN release's, from sr_published_weights.json's description of it."""
    n_blocks = 1
    rules = [(r"^conv_first\.", "model.0."), (r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.", r"model.1.sub.\1.RDB\2.conv\3.0."),
             (r"^conv_body\.", f"model.1.sub.{n_blocks}."), (r"^conv_up1\.", "model.3."), (r"^conv_up2\.", "model.6."),
             (r"^conv_hr\.", "model.8."), (r"^conv_last\.", "model.10.")]
    for pattern, replacement in rules:
        new, count = re.subn(pattern, replacement, key)
        if count:
            return new
    raise AssertionError(f"no ESRGAN name for {key}")


def test_original_esrgan_key_layout_loads(tmp_path) -> None:
    state = _tiny_rrdbnet_state(3)
    old = {_esrgan_2018_key(k): v for k, v in state.items()}
    assert "model.1.sub.0.RDB1.conv1.0.weight" in old and "model.10.bias" in old
    path = tmp_path / "RRDB_ESRGAN_x4.pth"
    torch.save(old, path)
    _assert_generator_holds(create_model(_opt(tmp_path, "--pretrained_G", str(path))), state)


def test_checkpoint_folder_prefers_the_average(tmp_path) -> None:
    folder = tmp_path / "realesrnet-x4plus"
    folder.mkdir()
    plain, average = _tiny_rrdbnet_state(4), _tiny_rrdbnet_state(5)
    torch.save(plain, folder / "latest_net_G.pth")
    _assert_generator_holds(create_model(_opt(tmp_path, "--pretrained_G", str(folder))), plain)
    torch.save(average, folder / "latest_net_G_ema.pth")
    _assert_generator_holds(create_model(_opt(tmp_path, "--pretrained_G", str(folder))), average)


def _hr_folder(root: Path) -> Path:
    """Three 48x48 HR images the test makes: data is read before the model is built, so it must exist, and a
    clone of the project has no ../shared."""
    folder = root / "hr"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _train(train_main, tmp_path: Path, *extra: str) -> int:
    """train.py on a few HR images the test makes."""
    return run_cli(train_main, [
        "--model", "srgan", "--dataroot", str(_hr_folder(tmp_path)), "--gpu_ids", "-1", "--num_threads", "0",
        "--checkpoints_dir", str(tmp_path / "ck"), "--name", "ft", "--ndf", "8", "--crop_size", "32",
        "--display_id", "0", "--lambda_perceptual", "0", *TINY_RRDB, *extra])


@pytest.mark.parametrize("damage,named", [
    ("wider", r"'conv_first\.weight' has shape \(16, 3, 3, 3\), expected \(8, 3, 3, 3\)"),
    ("missing", r"key 'body\.0\.rdb2\.conv3\.bias' is missing"),
    ("extra", r"unexpected key 'body\.1\.rdb1\.conv1\.weight'"),
])
def test_a_file_that_does_not_fit_is_one_line_naming_the_first_bad_key(tmp_path, capsys, train_main, damage: str,
                                                                        named: str) -> None:
    state = _tiny_rrdbnet_state(6)
    if damage == "wider":
        state = {k: v for k, v in networks.define_G(3, 3, 16, "rrdbnet", "none", False, n_blocks=1,
                                                     growth_channels=4, scale=4).state_dict().items()}
    elif damage == "missing":
        del state["body.0.rdb2.conv3.bias"]
        del state["conv_hr.weight"]  # a later one: the first in the network's order is named
    else:
        state["body.1.rdb1.conv1.weight"] = torch.zeros(4, 8, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save({"params_ema": state}, path)
    assert _train(train_main, tmp_path, "--pretrained_G", str(path), "--netD_head", "conv") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pretrained_G" in err[0] and "bad.pth" in err[0], err
    assert re.search(named, err[0]), err[0]
    assert not (tmp_path / "ck" / "ft" / "latest_net_G.pth").exists()


def test_a_folder_without_weights_is_an_option_error(tmp_path, capsys, train_main) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:  # refused by the option parser, before any data or network
        _train(train_main, tmp_path, "--pretrained_G", str(tmp_path / "empty"), "--netD_head", "conv")
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pretrained_G" in err[0] and "latest_net_G_ema.pth or latest_net_G.pth" in err[0]


def _write_set5_pairs(root: Path, hr_side: int = 64, scale: int = 4) -> List[str]:
    """Own LR/HR pairs from Set5: the centre HR crop in trainB/, its bicubic downscale in trainA/ (same names)."""
    (root / "trainA").mkdir(parents=True)
    (root / "trainB").mkdir()
    names = []
    for path in sorted(SET5.glob("*.png"))[:2]:
        with Image.open(path) as img:
            img = img.convert("RGB")
            left, top = (img.width - hr_side) // 2, (img.height - hr_side) // 2
            hr = img.crop((left, top, left + hr_side, top + hr_side))
        hr.save(root / "trainB" / path.name)
        hr.resize((hr_side // scale, hr_side // scale), Image.BICUBIC).save(root / "trainA" / path.name)
        names.append(path.name)
    return names


def test_fine_tune_on_own_aligned_pairs_with_unet_sn(tmp_path, train_main) -> None:
    """Two iterations of the Real-ESRGAN stage on own pairs: from a publisher-style file, L1 + GAN against the
    U-Net discriminator; the generator starts from the file and moves away from it."""
    if not SET5.is_dir():
        pytest.skip(f"{SET5} is not here (the shared sample data)")
    data = tmp_path / "pairs"
    assert len(_write_set5_pairs(data)) == 2
    start = _tiny_rrdbnet_state(7)
    weights = tmp_path / "RealESRNet_x4plus.pth"
    torch.save({"params_ema": start}, weights)
    rc = run_cli(train_main, [
        "--model", "srgan", "--dataroot", str(data), "--dataset_mode", "aligned", "--gpu_ids", "-1",
        "--num_threads", "0", "--checkpoints_dir", str(tmp_path / "ck"), "--name", "ft", "--netD", "unet_sn",
        "--ndf", "8", "--crop_size", "32", "--batch_size", "1", "--n_epochs", "1", "--n_epochs_decay", "0",
        "--display_id", "0", "--print_freq", "1", "--lambda_perceptual", "0", "--pixel_loss", "l1",
        "--lambda_pixel", "1", "--lambda_adv", "0.1", "--pretrained_G", str(weights), "--seed", "0", *TINY_RRDB])
    assert rc == 0
    run = tmp_path / "ck" / "ft"
    trained = torch.load(run / "latest_net_G.pth", weights_only=True)
    assert trained.keys() == start.keys()
    moved = [k for k in start if not torch.equal(trained[k], start[k])]
    assert moved, "the generator did not train"
    assert all((trained[k] - start[k]).abs().max() < 0.01 for k in start)  # two small Adam steps from the file
    d_state = torch.load(run / "latest_net_D.pth", weights_only=True)
    assert "conv1.weight_orig" in d_state and "conv9.bias" in d_state
    log = (run / "loss_log.txt").read_text()
    steps = re.findall(r"G_pixel: ([\d.e+-]+)", log)
    assert len(steps) == 2 and all(0 < float(v) < 2 for v in steps)  # L1 on [-1, 1] images
