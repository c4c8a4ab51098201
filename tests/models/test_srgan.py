"""Tests of SRGAN's parts: the SRResNet generator and SRGAN discriminator, tiled inference, the model's losses and
stages, and the super-resolution data pipeline. End-to-end CLI runs are in test_sr_cli.py.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image

from data.aligned_dataset import AlignedDataset
from data.single_dataset import SingleDataset
from models import create_model
from models import networks
from models.inference.tiles import upscale_tiled
from models.archs.srgan_discriminator_arch import SRGANDiscriminator
from models.archs.srresnet_arch import SRResidualBlock, SRResNet
from options import TrainOptions
from util.errors import CheckpointError, DataError

from helpers import ROOT, require_or_skip

SET5 = ROOT.parent / "shared" / "data" / "sr_eval" / "Set5"


# ---------------------------------------------------------------------------------------------- generator


@pytest.mark.parametrize("scale,factors", [(2, [2]), (3, [3]), (4, [2, 2]), (8, [2, 2, 2])])
def test_srresnet_shapes_and_upsampling_stages(scale: int, factors: List[int]) -> None:
    net = networks.define_G(3, 3, 8, "srresnet", "batch", n_blocks=2, scale=scale)
    shuffles = [m.upscale_factor for m in net.modules() if isinstance(m, nn.PixelShuffle)]
    assert shuffles == factors
    convs_before_shuffle = [m for m in net.upsample if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs_before_shuffle] == [8 * f * f for f in factors]
    with torch.no_grad():
        y = net(torch.rand(2, 3, 7, 5) * 2 - 1)
    assert y.shape == (2, 3, 7 * scale, 5 * scale)


def test_srresnet_layout_and_parameter_count() -> None:
    """The paper's SRResNet: 9x9 head + PReLU, 16 blocks conv-BN-PReLU-conv-BN, conv-BN, 2 x (conv, PS, PReLU), 9x9."""
    net = networks.define_G(3, 3, 64, "srresnet", "batch")
    assert isinstance(net, SRResNet)
    assert net.head[0].kernel_size == (9, 9) and isinstance(net.head[1], nn.PReLU)
    blocks = [m for m in net.body if isinstance(m, SRResidualBlock)]
    assert len(blocks) == 16
    assert [type(m) for m in blocks[0].body] == [nn.Conv2d, nn.BatchNorm2d, nn.PReLU, nn.Conv2d, nn.BatchNorm2d]
    assert [type(m) for m in list(net.body)[-2:]] == [nn.Conv2d, nn.BatchNorm2d]
    assert net.tail.kernel_size == (9, 9) and net.tail.out_channels == 3
    # Counted by hand: head, 16 blocks, the long-skip conv + BN, two upsampling stages, tail.
    head = 3 * 64 * 81 + 64 + 1
    block = 2 * 64 * 64 * 9 + 2 * 2 * 64 + 1  # convs without bias before BN, two BNs, one PReLU
    body_end = 64 * 64 * 9 + 2 * 64
    up = 2 * (64 * 256 * 9 + 256 + 1)
    tail = 64 * 3 * 81 + 3
    assert sum(p.numel() for p in net.parameters()) == head + 16 * block + body_end + up + tail == 1_547_350


def test_srresnet_without_norm_has_no_batchnorm_and_uses_biases() -> None:
    net = networks.define_G(3, 3, 8, "srresnet", "none", n_blocks=3)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert all(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))


def test_srresnet_long_skip_makes_zero_body_transparent() -> None:
    """With the body's last norm scaled to zero the body adds nothing: output = tail(upsample(head(x)))."""
    torch.manual_seed(0)
    net = networks.define_G(3, 3, 8, "srresnet", "batch", n_blocks=2).eval()
    nn.init.zeros_(net.body[-1].weight)
    nn.init.zeros_(net.body[-1].bias)
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(net(x), net.tail(net.upsample(net.head(x))))


# ---------------------------------------------------------------------------------------------- discriminator


def test_srgan_discriminator_layout() -> None:
    net = networks.define_D(3, 64, "srgan", norm="batch", head="dense", input_size=96)
    assert isinstance(net, SRGANDiscriminator)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.features) == 7  # all but the first block
    assert not isinstance(net.features[1], nn.BatchNorm2d)
    relus = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(relus) == 9 and all(m.negative_slope == 0.2 for m in relus)
    dense = [m for m in net.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dense] == [(512 * 6 * 6, 1024), (1024, 1)]
    with torch.no_grad():
        assert net(torch.rand(2, 3, 96, 96)).shape == (2, 1)
    with pytest.raises(ValueError, match="netD_head conv"):
        net(torch.rand(2, 3, 64, 64))


def test_srgan_discriminator_conv_head_takes_any_size() -> None:
    net = networks.define_D(3, 8, "srgan", norm="batch", head="conv")
    with torch.no_grad():
        assert net(torch.rand(2, 3, 48, 80)).shape == (2, 1)
        assert net(torch.rand(2, 3, 16, 16)).shape == (2, 1)


def test_srgan_discriminator_dense_needs_multiple_of_16() -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        networks.define_D(3, 8, "srgan", norm="batch", head="dense", input_size=40)


# ---------------------------------------------------------------------------------------------- tiled inference


class _Recorder(nn.Module):
    """Passes through to `net` and records the input sizes it sees (how much is on the device at once)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.sizes = net, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        return self.net(x)


def _trained_looking_srresnet(n_blocks: int, ngf: int = 8) -> nn.Module:
    """A small SRResNet with non-trivial BatchNorm statistics and weights large enough to matter, in eval mode."""
    torch.manual_seed(0)
    net = networks.define_G(3, 3, ngf, "srresnet", "batch", init_type="normal", init_gain=0.2, n_blocks=n_blocks)
    with torch.no_grad():
        net(torch.rand(4, 3, 16, 16) * 2 - 1)  # BN running statistics move away from (0, 1)
    return net.eval()


@pytest.mark.parametrize("n_blocks,pad", [(1, 12), (16, 40)])
def test_tiled_equals_untiled(n_blocks: int, pad: int) -> None:
    """With padding over the receptive-field radius (4 + 2 n_blocks + 1 + 1 + 0.5 + 1 LR pixels) tiles are exact."""
    net = _trained_looking_srresnet(n_blocks)
    lr = torch.rand(1, 3, 37, 29) * 2 - 1
    whole = upscale_tiled(net, lr, 4, tile=0)
    recorder = _Recorder(net)
    tiled = upscale_tiled(recorder, lr, 4, tile=10, tile_pad=pad)
    assert tiled.shape == whole.shape == (1, 3, 148, 116)
    assert whole.std() > 0.05  # the comparison is not between near-constant images
    assert (tiled - whole).abs().max() <= 1 / 255
    assert len(recorder.sizes) == 4 * 3  # ceil(37 / 10) x ceil(29 / 10) tiles, one at a time
    assert max(h for h, _ in recorder.sizes) <= 10 + 2 * pad and max(w for _, w in recorder.sizes) <= 10 + 2 * pad


def test_tiles_without_context_differ() -> None:
    """The equality above is not trivial: without padding the tile borders show."""
    net = _trained_looking_srresnet(1)
    lr = torch.rand(1, 3, 37, 29) * 2 - 1
    assert (upscale_tiled(net, lr, 4, tile=10, tile_pad=0) - upscale_tiled(net, lr, 4)).abs().max() > 1 / 255


def test_upscale_rejects_bad_arguments() -> None:
    net = _trained_looking_srresnet(1)
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        upscale_tiled(net, torch.rand(3, 8, 8), 4)
    with pytest.raises(ValueError, match=">= 0"):
        upscale_tiled(net, torch.rand(1, 3, 8, 8), 4, tile=-1)


# ---------------------------------------------------------------------------------------------- the model


def _opt(tmp_path: Path, *extra: str):
    return TrainOptions().parse([
        "--model", "srgan", "--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ck"),
        "--name", "t", "--ngf", "8", "--ndf", "8", "--n_blocks", "1", "--crop_size", "32", "--display_id", "0",
        "--netD_head", "conv", *extra])


def _batch(seed: int = 0, n: int = 2) -> dict:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    return {"A": F.avg_pool2d(hr, 4), "B": hr, "A_paths": ["a.png"] * n, "B_paths": ["a.png"] * n}


@pytest.fixture(scope="module")
def vgg22_weights(tmp_path_factory) -> Path:
    """A random torchvision-layout state_dict with just the layers phi_2,2 needs."""
    torch.manual_seed(0)
    features = torchvision.models.vgg19(weights=None).features[:9]
    path = tmp_path_factory.mktemp("vgg") / "vgg22.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def _independent_vgg22(path: Path, x: torch.Tensor) -> torch.Tensor:
    features = torchvision.models.vgg19(weights=None).features[:9]
    features.load_state_dict({k.removeprefix("features."): v for k, v in torch.load(path, weights_only=True).items()})
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return features(((x + 1) / 2 - mean) / std)


def test_loss_terms_equal_hand_computed_values(tmp_path, vgg22_weights) -> None:
    torch.manual_seed(0)
    opt = _opt(tmp_path, "--gan_mode", "lsgan", "--lambda_pixel", "0.8", "--lambda_perceptual", "0.006",
               "--lambda_adv", "0.001", "--vgg_layer", "22", "--vgg_weights", str(vgg22_weights), "--real_label",
               "0.9", "--amp", "none")  # the formulas, in fp32 (bf16 agreement: test_acceleration.py)
    model = create_model(opt)
    model.setup(opt)
    model.set_epoch(1)
    d_before = copy.deepcopy(model.netD)
    batch = _batch()
    model.set_input(batch)
    model.optimize_parameters()
    fake, real = model.fake_B.detach(), batch["B"]
    with torch.no_grad():
        pixel = ((fake - real) ** 2).mean()
        perceptual = ((_independent_vgg22(vgg22_weights, fake) - _independent_vgg22(vgg22_weights, real)) ** 2).mean()
        g_gan = ((model.netD(fake) - 1.0) ** 2).mean()  # G's target is 1 (no smoothing for G)
        d_real = ((d_before(real) - 0.9) ** 2).mean()  # one-sided smoothing: D's real target is 0.9
        d_fake = (d_before(fake) ** 2).mean()
    assert model.loss_G_pixel.item() == pytest.approx(0.8 * pixel.item(), rel=1e-5)
    assert model.loss_G_perceptual.item() == pytest.approx(0.006 * perceptual.item(), rel=1e-4)
    assert model.loss_G_GAN.item() == pytest.approx(0.001 * g_gan.item(), rel=1e-4)
    assert model.loss_D_real.item() == pytest.approx(d_real.item(), rel=1e-4)
    assert model.loss_D_fake.item() == pytest.approx(d_fake.item(), rel=1e-4)
    assert model.loss_G.item() == pytest.approx(
        model.loss_G_pixel.item() + model.loss_G_perceptual.item() + model.loss_G_GAN.item(), rel=1e-6)
    assert all(not p.requires_grad for p in model.criterionPerceptual.parameters())



@pytest.mark.parametrize("loss,formula", [("mse", lambda d: (d ** 2).mean()), ("l1", lambda d: d.abs().mean())])
def test_pixel_loss_option_selects_the_formula(tmp_path, loss, formula) -> None:
    """--pixel_loss: the pixel stage's loss is the MSE (the paper's, the default) or the L1 (the shipped model's)."""
    opt = _opt(tmp_path, "--pixel_loss", loss, "--pretrain_epochs", "1", "--lambda_perceptual", "0", "--amp", "none")
    model = create_model(opt)
    model.setup(opt)
    model.set_epoch(1)
    batch = _batch()
    model.set_input(batch)
    model.optimize_parameters()
    with torch.no_grad():
        expected = formula(model.fake_B - batch["B"])
    assert model.loss_G_pixel.item() == pytest.approx(expected.item(), rel=1e-5)

def _d_params(model) -> List[torch.Tensor]:
    return [p.detach().clone() for p in model.netD.parameters()]


def test_pretrain_then_adversarial_switch(tmp_path) -> None:
    torch.manual_seed(0)
    opt = _opt(tmp_path, "--pretrain_epochs", "1", "--lambda_perceptual", "0", "--lambda_pixel", "0")
    model = create_model(opt)
    model.setup(opt)
    model.set_epoch(1)  # the SRResNet stage: pixel MSE alone, D untouched
    before = _d_params(model)
    g_before = [p.detach().clone() for p in model.netG.parameters()]
    model.set_input(_batch())
    model.optimize_parameters()
    assert all(torch.equal(a, b) for a, b in zip(before, _d_params(model)))
    assert not all(torch.equal(a, b.detach()) for a, b in zip(g_before, model.netG.parameters()))
    losses = model.get_current_losses()
    assert losses["G_GAN"] == losses["D_real"] == losses["D_fake"] == losses["G_perceptual"] == 0.0
    # The MSE counts with weight 1 in this stage, whatever --lambda_pixel says.
    assert losses["G_pixel"] == pytest.approx(F.mse_loss(model.fake_B, _batch()["B"]).item(), rel=1e-6)

    model.set_epoch(2)  # adversarial from epoch pretrain_epochs + 1
    before = _d_params(model)
    model.set_input(_batch(seed=1))
    model.optimize_parameters()
    assert not all(torch.equal(a, b) for a, b in zip(before, _d_params(model)))
    losses = model.get_current_losses()
    assert losses["G_GAN"] > 0 and losses["D_real"] > 0 and losses["D_fake"] > 0
    assert losses["G_pixel"] == 0.0  # --lambda_pixel 0 now applies


def test_discriminator_noise_decays_per_epoch(tmp_path) -> None:
    opt = _opt(tmp_path, "--pretrain_epochs", "2", "--lambda_perceptual", "0", "--d_noise_std", "0.1",
               "--d_noise_decay", "0.5")
    model = create_model(opt)
    stds = {}
    for epoch in (3, 4, 6):
        model.set_epoch(epoch)
        stds[epoch] = model.d_noise
    assert stds == pytest.approx({3: 0.1, 4: 0.05, 6: 0.0125})
    # The noise reaches D's inputs: with a large std the real images D sees are not the batch's.
    model.set_epoch(3)
    seen = []
    model.netD.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    batch = _batch()
    model.set_input(batch)
    model.optimize_parameters()
    assert (seen[0] - batch["B"]).std().item() == pytest.approx(0.1, rel=0.15)


def test_pretrained_generator_is_loaded(tmp_path) -> None:
    torch.manual_seed(1)
    source = create_model(_opt(tmp_path, "--lambda_perceptual", "0"))
    path = tmp_path / "srresnet_G.pth"
    torch.save(source.netG.state_dict(), path)
    torch.manual_seed(2)
    model = create_model(_opt(tmp_path, "--lambda_perceptual", "0", "--pretrained_G", str(path)))
    for key, value in source.netG.state_dict().items():
        assert torch.equal(value, model.netG.state_dict()[key]), key
    wrong = tmp_path / "wrong.pth"
    torch.save(networks.define_G(3, 3, 16, "srresnet", "batch", n_blocks=1).state_dict(), wrong)
    with pytest.raises(CheckpointError, match="wrong.pth"):
        create_model(_opt(tmp_path, "--lambda_perceptual", "0", "--pretrained_G", str(wrong)))


def test_validation_scores_improve_as_the_generator_learns(tmp_path) -> None:
    """validate() reports PSNR/SSIM on --val_dataroot; a few pixel-loss steps on the validation images raise PSNR."""
    require_or_skip(SET5.is_dir(), f"shared SR images are absent ({SET5})")
    torch.manual_seed(0)
    opt = _opt(tmp_path, "--pretrain_epochs", "5", "--lambda_perceptual", "0", "--val_dataroot", str(SET5),
               "--lr", "1e-3", "--norm", "none")
    model = create_model(opt)
    model.setup(opt)
    model.set_epoch(1)
    first = model.validate()
    assert set(first) == {"psnr", "ssim"} and 0 < first["ssim"] < 1
    hr = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))[:32, :32]).permute(2, 0, 1)
                      for p in sorted(SET5.glob("*.png"))]).float() / 127.5 - 1
    for _ in range(30):
        model.set_input({"A": F.avg_pool2d(hr, 4), "B": hr, "A_paths": ["x"] * 5, "B_paths": ["x"] * 5})
        model.optimize_parameters()
    assert model.validate()["psnr"] > first["psnr"] + 3
    assert model.netG.training  # validation puts the generator back in training mode


# ---------------------------------------------------------------------------------------------- data


def _data_opt(tmp_path: Path, dataroot: Path, *extra: str):
    return TrainOptions().parse(["--model", "srgan", "--dataroot", str(dataroot), "--gpu_ids", "-1",
                                 "--checkpoints_dir", str(tmp_path / "ck"), "--name", "t", "--display_id", "0",
                                 "--lambda_perceptual", "0", *extra])


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return ((t.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def test_single_hr_sample_is_a_crop_and_its_bicubic_lr(tmp_path) -> None:
    require_or_skip(SET5.is_dir(), f"shared SR images are absent ({SET5})")
    dataset = SingleDataset(_data_opt(tmp_path, SET5, "--crop_size", "96"))
    sample = dataset[0]
    assert sample["A"].shape == (3, 24, 24) and sample["B"].shape == (3, 96, 96)
    assert -1 <= sample["B"].min() and sample["B"].max() <= 1
    hr = Image.fromarray(_to_uint8(sample["B"]))
    expected_lr = np.asarray(hr.resize((24, 24), Image.Resampling.BICUBIC))  # antialiased, as MATLAB imresize
    assert np.array_equal(_to_uint8(sample["A"]), expected_lr)
    # The HR crop is a piece of the image, possibly flipped or transposed.
    full = np.asarray(Image.open(dataset.A_paths[0]).convert("RGB"))
    crop = _to_uint8(sample["B"])
    variants = [crop, crop[:, ::-1], crop[::-1], crop[::-1, ::-1]]
    variants += [v.transpose(1, 0, 2) for v in variants]
    found = any((full[y:y + 96, x:x + 96] == v).all() for v in variants
                for y in range(full.shape[0] - 95) for x in range(full.shape[1] - 95)
                if (full[y, x] == v[0, 0]).all())
    assert found


def test_augmentations_cover_flips_and_rotations(tmp_path) -> None:
    img = (np.arange(32 * 32 * 3) % 251).astype(np.uint8).reshape(32, 32, 3)
    (tmp_path / "hr").mkdir()
    Image.fromarray(img).save(tmp_path / "hr" / "a.png")
    dataset = SingleDataset(_data_opt(tmp_path, tmp_path / "hr", "--crop_size", "32", "--netD_head", "conv"))
    seen = set()
    import random
    for seed in range(40):
        random.seed(seed)
        seen.add(_to_uint8(dataset[0]["B"]).tobytes())
    assert len(seen) == 8  # the dihedral group: 4 rotations x 2 reflections
    no_flip = SingleDataset(_data_opt(tmp_path, tmp_path / "hr", "--crop_size", "32", "--netD_head", "conv",
                                      "--no_flip"))
    assert np.array_equal(_to_uint8(no_flip[0]["B"]), img)


def test_images_smaller_than_the_crop_are_left_out_with_a_warning(tmp_path, caplog) -> None:
    (tmp_path / "hr").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "hr" / "big.png")
    Image.new("RGB", (20, 40)).save(tmp_path / "hr" / "small.png")
    with caplog.at_level(logging.WARNING):
        dataset = SingleDataset(_data_opt(tmp_path, tmp_path / "hr", "--crop_size", "32", "--netD_head", "conv"))
    assert [Path(p).name for p in dataset.A_paths] == ["big.png"]
    assert "small.png" in caplog.text and "--crop_size 32" in caplog.text
    (tmp_path / "hr" / "big.png").unlink()
    with pytest.raises(DataError, match="lower --crop_size"):
        SingleDataset(_data_opt(tmp_path, tmp_path / "hr", "--crop_size", "32", "--netD_head", "conv"))


def _write_lr_hr_pairs(root: Path, count: int = 2, lr_side: int = 12) -> None:
    (root / "trainA").mkdir(parents=True)
    (root / "trainB").mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        lr = rng.integers(0, 256, (lr_side, lr_side + 2, 3), dtype=np.uint8)
        Image.fromarray(lr).save(root / "trainA" / f"{i}.png")
        Image.fromarray(lr.repeat(4, axis=0).repeat(4, axis=1)).save(root / "trainB" / f"{i}.png")  # nearest x4


def test_aligned_lr_hr_crops_stay_aligned(tmp_path) -> None:
    _write_lr_hr_pairs(tmp_path / "pairs")
    dataset = AlignedDataset(_data_opt(tmp_path, tmp_path / "pairs", "--dataset_mode", "aligned", "--crop_size",
                                       "32", "--netD_head", "conv"))
    import random
    for seed in range(6):
        random.seed(seed)
        sample = dataset[seed % 2]
        assert sample["A"].shape == (3, 8, 8) and sample["B"].shape == (3, 32, 32)
        lr, hr = _to_uint8(sample["A"]), _to_uint8(sample["B"])
        assert np.array_equal(hr, lr.repeat(4, axis=0).repeat(4, axis=1))  # same place, same flips


def test_aligned_size_mismatch_and_side_by_side_are_refused(tmp_path) -> None:
    _write_lr_hr_pairs(tmp_path / "pairs")
    Image.new("RGB", (40, 40)).save(tmp_path / "pairs" / "trainB" / "1.png")
    dataset = AlignedDataset(_data_opt(tmp_path, tmp_path / "pairs", "--dataset_mode", "aligned", "--crop_size",
                                       "32", "--netD_head", "conv"))
    with pytest.raises(DataError, match=r"1\.png is 40x40 but its LR partner .*1\.png is 14x12"):
        dataset[1]
    (tmp_path / "sbs" / "train").mkdir(parents=True)
    Image.new("RGB", (64, 32)).save(tmp_path / "sbs" / "train" / "x.png")
    with pytest.raises(DataError, match="trainA"):
        AlignedDataset(_data_opt(tmp_path, tmp_path / "sbs", "--dataset_mode", "aligned", "--crop_size", "32",
                                 "--netD_head", "conv"))


def test_unpaired_data_is_refused_for_super_resolution(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _opt(tmp_path, "--dataset_mode", "unaligned")
    assert exit_info.value.code == 2
    assert "--dataset_mode unaligned" in capsys.readouterr().err
