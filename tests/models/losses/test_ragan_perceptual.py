"""The ESRGAN / Real-ESRGAN losses: relativistic average GAN (`--gan_mode ragan`), the multi-layer perceptual loss
(`--perceptual_layers`, `--perceptual_criterion`) and unsharp-masked targets (`--usm_targets`, models/losses/usm.py).

Expected values are independent: element by element with `math`, torchvision's vgg19 sliced by hand, OpenCV's
GaussianBlur for Real-ESRGAN's USM definition.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import create_model
from models.losses import GAN_MODES, GANLoss
from models.losses.perceptual_loss import VGG19_CONVOLUTIONS, PerceptualLoss, VGGFeatureExtractor, parse_perceptual_layers
from models.losses.content_loss import ContentLoss
from models.losses.usm import UnsharpMask, gaussian_kernel_1d, sharpen_mask
from options import TrainOptions
from util.errors import CheckpointError

from test_perceptual import features_file, reference_vgg  # noqa: F401  (fixtures: the random VGG19 and its file)

REAL = [0.5, -1.0, 2.0, 0.0]  # D's outputs on a real batch (N=1, 1, 2, 2)
FAKE = [-0.5, 1.5, -2.0, 0.25]


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def _bce(xs: List[float], target: float) -> float:
    """Mean BCE of sigmoid(x) against `target`: -t log s(x) - (1 - t) log(1 - s(x)) = t sp(-x) + (1 - t) sp(x)."""
    return sum(target * _softplus(-v) + (1 - target) * _softplus(v) for v in xs) / len(xs)


def _tensor(values: List[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(1, 1, 2, 2).requires_grad_(True)


# ---------------------------------------------------------------------------------------------- ragan


def test_ragan_discriminator_terms_and_gradients_match_hand_computation() -> None:
    mean_r, mean_f = sum(REAL) / 4, sum(FAKE) / 4
    real, fake = _tensor(REAL), _tensor(FAKE)
    loss_real, loss_fake = GANLoss("ragan").pair(real, fake)
    assert loss_real.item() == pytest.approx(_bce([r - mean_f for r in REAL], 1.0), rel=1e-12)
    assert loss_fake.item() == pytest.approx(_bce([f - mean_r for f in FAKE], 0.0), rel=1e-12)
    ((loss_real + loss_fake) * 0.5).backward()

    def sig(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    # d/dr_i of 0.5 [mean_i sp(-(r_i - mf)) + mean_j sp(f_j - mr)]: its own term, and through mean(real) in the
    # fake term (the paper's formula: gradients through both means).
    n = 4
    grad_real = [0.5 * ((sig(r - mean_f) - 1) / n - sum(sig(f - mean_r) for f in FAKE) / n / n) for r in REAL]
    grad_fake = [0.5 * (sig(f - mean_r) / n - sum(sig(r - mean_f) - 1 for r in REAL) / n / n) for f in FAKE]
    torch.testing.assert_close(real.grad.flatten(), torch.tensor(grad_real, dtype=torch.float64))
    torch.testing.assert_close(fake.grad.flatten(), torch.tensor(grad_fake, dtype=torch.float64))


def test_ragan_generator_terms_swap_the_targets() -> None:
    mean_r, mean_f = sum(REAL) / 4, sum(FAKE) / 4
    g_real, g_fake = GANLoss("ragan").pair(_tensor(REAL), _tensor(FAKE), for_discriminator=False)
    assert g_real.item() == pytest.approx(_bce([r - mean_f for r in REAL], 0.0), rel=1e-12)
    assert g_fake.item() == pytest.approx(_bce([f - mean_r for f in FAKE], 1.0), rel=1e-12)
    # one-sided label smoothing moves D's real target only
    smooth_real, _ = GANLoss("ragan", target_real_label=0.9).pair(_tensor(REAL), _tensor(FAKE))
    assert smooth_real.item() == pytest.approx(_bce([r - mean_f for r in REAL], 0.9), rel=1e-12)


def test_ragan_generator_loss_recomputes_real_without_a_graph() -> None:
    torch.manual_seed(0)
    netD = nn.Conv2d(3, 1, 3, padding=1).double()
    calls: List[bool] = []
    netD.register_forward_hook(lambda module, args, out: calls.append(torch.is_grad_enabled()))
    fake = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    real = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    loss = GANLoss("ragan").generator_loss(netD, fake, real)
    assert calls == [True, False]  # D(fake) with G's graph, then D(real) without one
    with torch.no_grad():
        pred_real, pred_fake = netD(real), netD(fake)
    mean_r, mean_f = pred_real.mean().item(), pred_fake.mean().item()
    expected = 0.5 * (_bce([v - mean_f for v in pred_real.flatten().tolist()], 0.0)
                      + _bce([v - mean_r for v in pred_fake.flatten().tolist()], 1.0))
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert real.grad is None and fake.grad is not None and fake.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", [m for m in GAN_MODES.names() if not GAN_MODES.meta(m).get("relativistic")])
def test_other_modes_are_unchanged_bit_for_bit(mode: str) -> None:
    torch.manual_seed(1)
    crit = GANLoss(mode, target_real_label=0.9)
    assert not crit.relativistic
    pred_real, pred_fake = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    loss_real, loss_fake = crit.pair(pred_real, pred_fake)
    assert torch.equal(loss_real, crit(pred_real, True)) and torch.equal(loss_fake, crit(pred_fake, False))
    netD = nn.Conv2d(3, 1, 3, padding=1)
    seen: List[torch.Tensor] = []
    netD.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    fake, real = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    g_loss = crit.generator_loss(netD, fake, real)
    assert len(seen) == 1 and seen[0] is fake  # D never sees the real batch
    assert torch.equal(g_loss, crit(netD(fake), True, for_discriminator=False))
    with pytest.raises(ValueError, match="generator_loss"):
        crit.pair(pred_real, pred_fake, for_discriminator=False)


def _tiny_train_opt(tmp_path: Path, model: str, *extra: str):
    common = ["--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ck"), "--name",
              "t", "--ngf", "8", "--ndf", "8", "--display_id", "0", "--amp", "none", "--model", model]
    if model == "pix2pix":
        common += ["--netG", "resnet_6blocks", "--crop_size", "32", "--load_size", "32"]
    else:
        common += ["--n_blocks", "1", "--crop_size", "32", "--netD_head", "conv", "--lambda_perceptual", "0",
                   "--lambda_pixel", "1"]
    return TrainOptions().parse([*common, *extra])


def _sr_batch(seed: int) -> Dict[str, object]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    return {"A": F.avg_pool2d(hr, 4), "B": hr, "A_paths": ["a.png"] * 2, "B_paths": ["a.png"] * 2}


def _pix2pix_batch(seed: int) -> Dict[str, object]:
    g = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1,
            "A_paths": ["a.png"], "B_paths": ["b.png"]}


@pytest.mark.parametrize("model_name", ["pix2pix", "srgan"])
def test_short_ragan_training_is_finite_and_moves_both_networks(tmp_path, model_name: str) -> None:
    torch.manual_seed(0)
    opt = _tiny_train_opt(tmp_path, model_name, "--gan_mode", "ragan")
    model = create_model(opt)
    model.setup(opt)
    assert model.criterionGAN.relativistic
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.named_networks()}
    make_batch = _pix2pix_batch if model_name == "pix2pix" else _sr_batch
    for step in range(2):
        model.set_input(make_batch(step))
        model.optimize_parameters()
        losses = model.get_current_losses()
        assert all(math.isfinite(v) for v in losses.values()), losses
    for name, net in model.named_networks():
        moved = [not torch.equal(a, b) for a, b in zip(before[name], net.parameters())]
        assert sum(moved) >= len(moved) - 1, f"net{name}: only {sum(moved)} of {len(moved)} tensors changed"
    # D's loss is the mean of its two relativistic terms, both positive
    assert model.loss_D_real.item() > 0 and model.loss_D_fake.item() > 0


def test_srgan_ragan_generator_term_matches_hand_computation(tmp_path) -> None:
    torch.manual_seed(0)
    opt = _tiny_train_opt(tmp_path, "srgan", "--gan_mode", "ragan", "--lambda_adv", "0.005")
    model = create_model(opt)
    model.setup(opt)
    model.netD.eval()  # BatchNorm with running statistics: the recomputation below sees the same D
    model.set_input(_sr_batch(3))
    model.optimize_parameters()
    # G's term was computed after D's step, with the D we have now; recompute it independently.
    with torch.no_grad():
        pred_real, pred_fake = model.netD(model.real_B), model.netD(model.fake_B)
    mean_r, mean_f = pred_real.mean().item(), pred_fake.mean().item()
    expected = 0.5 * (_bce([v - mean_f for v in pred_real.flatten().tolist()], 0.0)
                      + _bce([v - mean_r for v in pred_fake.flatten().tolist()], 1.0))
    assert model.loss_G_GAN.item() == pytest.approx(0.005 * expected, rel=1e-4)


# ---------------------------------------------------------------------------------------------- perceptual

# Written out here (not imported) so that a wrong table in models/losses/perceptual_loss.py fails: convB_J -> its index in
# torchvision's vgg19().features.
CONV_INDEX = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_4": 16, "conv4_1": 19, "conv4_4": 25,
              "conv5_1": 28, "conv5_4": 34}
REAL_ESRGAN_LAYERS = "conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def reference_features(reference_vgg) -> nn.Sequential:
    """torchvision's vgg19().features, random weights with non-zero biases (test_perceptual's)."""
    return reference_vgg.features


@pytest.fixture(scope="module")
def vgg_file(features_file) -> Path:
    """All of vgg19's `features.*` tensors of `reference_features`, in torchvision's layout."""
    return features_file


def _images() -> tuple:
    g = torch.Generator().manual_seed(5)
    return torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, torch.rand(1, 3, 32, 32, generator=g) * 2 - 1


def test_conv_table_matches_torchvision(reference_features) -> None:
    for name, index in CONV_INDEX.items():
        assert VGG19_CONVOLUTIONS[name].conv_index == index
    convs = [i for i, m in enumerate(reference_features) if isinstance(m, nn.Conv2d)]
    assert [spec.conv_index for spec in VGG19_CONVOLUTIONS.values()] == convs
    assert all(isinstance(reference_features[i + 1], nn.ReLU) for i in convs)


@pytest.mark.parametrize("criterion, before_activation", [("l1", True), ("mse", False)])
def test_multi_layer_loss_equals_hand_sliced_torchvision(reference_features, vgg_file, criterion,
                                                         before_activation) -> None:
    weights = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    sr, hr = _images()
    expected = torch.zeros(())
    with torch.no_grad():
        for name, weight in weights.items():
            cut = CONV_INDEX[name] + (1 if before_activation else 2)
            f_sr = reference_features[:cut](((sr + 1) / 2 - MEAN) / STD)
            f_hr = reference_features[:cut](((hr + 1) / 2 - MEAN) / STD)
            diff = f_sr - f_hr
            expected = expected + weight * (diff.abs() if criterion == "l1" else diff ** 2).mean()
    loss = PerceptualLoss(parse_perceptual_layers(REAL_ESRGAN_LAYERS), before_activation, str(vgg_file), criterion)
    value = loss(sr, hr)
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6)
    assert loss(hr, hr).item() == 0.0


def test_one_vgg_pass_per_image_through_the_deepest_layer(vgg_file) -> None:
    loss = PerceptualLoss({"conv1_2": 0.1, "conv3_4": 1.0}, True, str(vgg_file), "l1")
    assert len(loss.vgg.features) == CONV_INDEX["conv3_4"] + 1  # nothing beyond the deepest layer is built
    calls: List[int] = []
    for index, module in enumerate(loss.vgg.features):
        module.register_forward_hook(lambda m, a, o, index=index: calls.append(index))
    sr, hr = _images()
    loss(sr, hr)
    assert sorted(calls) == sorted(list(range(len(loss.vgg.features))) * 2)  # each module twice: sr and hr


def test_one_layer_table_is_the_single_layer_loss(vgg_file) -> None:
    sr, hr = _images()
    single = PerceptualLoss("54", True, str(vgg_file))(sr, hr)
    table = PerceptualLoss({"conv5_4": 1.0}, True, str(vgg_file))(sr, hr)
    assert torch.equal(single, table)


def test_gradients_reach_sr_through_every_layer(vgg_file) -> None:
    sr, hr = _images()
    sr.requires_grad_(True)
    PerceptualLoss(parse_perceptual_layers("conv1_2:0.1,conv2_2:1"), True, str(vgg_file), "l1")(sr, hr).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0


def test_a_file_without_the_deepest_layer_is_refused(reference_features, tmp_path) -> None:
    path = tmp_path / "vgg22.pth"
    torch.save({f"features.{k}": v for k, v in reference_features[:9].state_dict().items()}, path)
    VGGFeatureExtractor(("conv1_2", "conv2_2"), True, str(path))  # enough for these two
    with pytest.raises(CheckpointError, match="features.10.weight"):
        PerceptualLoss({"conv1_2": 0.1, "conv3_4": 1.0}, True, str(path))


@pytest.mark.parametrize("spec, message", [
    ("conv1_2:0.1,conv6_1:1", "unknown VGG19 layer 'conv6_1'; valid: conv1_1, conv1_2, conv2_1"),
    ("relu1_2:1", "unknown VGG19 layer 'relu1_2'"),
    ("conv1_2:0.1,conv1_2:1", "conv1_2 is given twice"),
    ("conv1_2:0", "must be a finite number > 0"),
    ("conv1_2:-1", "must be a finite number > 0"),
    ("conv1_2:nan", "must be a finite number > 0"),
    ("conv1_2:x", "must be a number"),
    ("", "unknown VGG19 layer ''"),
])
def test_layer_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_perceptual_layers(spec)


def test_layer_spec_parses_in_order_with_default_weight() -> None:
    assert list(parse_perceptual_layers(REAL_ESRGAN_LAYERS).items()) == [
        ("conv1_2", 0.1), ("conv2_2", 0.1), ("conv3_4", 1.0), ("conv4_4", 1.0), ("conv5_4", 1.0)]
    assert parse_perceptual_layers(" conv5_4 ") == {"conv5_4": 1.0}


@pytest.mark.parametrize("extra, wanted", [
    (["--perceptual_layers", "conv1_2:0.1,conv9_9:1"], ["--perceptual_layers", "conv9_9", "conv5_4"]),
    (["--perceptual_layers", "conv2_2:1", "--vgg_layer", "22"], ["--vgg_layer 22", "--perceptual_layers",
                                                               "drop --vgg_layer", "conv2_2"]),
])
def test_bad_perceptual_options_exit_2_with_one_line(tmp_path, capsys, extra, wanted) -> None:
    with pytest.raises(SystemExit) as info:
        _tiny_train_opt(tmp_path, "srgan", *extra)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and all(w in err for w in wanted), err


# ---------------------------------------------------------------------------------------------- USM


def test_usm_kernel_is_opencvs() -> None:
    kernel = gaussian_kernel_1d(51)  # OpenCV: sigma 0 -> 0.3 * ((51 - 1) / 2 - 1) + 0.8 = 8
    np.testing.assert_allclose(kernel.double().numpy(), cv2.getGaussianKernel(51, 0)[:, 0], atol=1e-8)
    assert kernel.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_usm_of_a_flat_image_is_the_image() -> None:
    flat = torch.full((1, 3, 40, 40), 0.3)
    assert torch.equal(UnsharpMask()(flat), flat)
    assert torch.equal(UnsharpMask()(flat[:, :, :7, :9]), flat[:, :, :7, :9])  # smaller than the kernel


def test_usm_of_a_step_edge_as_hand_computed() -> None:
    """Radius 3 on a 1-D step 0.25 -> 0.75 in [0, 1] (rows alike): the Gaussian is [a, b, a] with sigma 0.8."""
    sigma = 0.3 * ((3 - 1) * 0.5 - 1) + 0.8
    e = math.exp(-1 / (2 * sigma ** 2))
    a, b = e / (1 + 2 * e), 1 / (1 + 2 * e)
    x = [0.25, 0.25, 0.25, 0.75, 0.75, 0.75]
    padded = [x[1], *x, x[-2]]  # reflect-101 borders
    blur = [a * padded[i] + b * padded[i + 1] + a * padded[i + 2] for i in range(6)]
    residual = [v - bl for v, bl in zip(x, blur)]
    mask = [1.0 if abs(r) * 255 > 10 else 0.0 for r in residual]
    assert mask == [0, 0, 1, 1, 0, 0]
    mpad = [mask[1], *mask, mask[-2]]
    soft = [a * mpad[i] + b * mpad[i + 1] + a * mpad[i + 2] for i in range(6)]
    sharp = [min(max(v + 0.5 * r, 0.0), 1.0) for v, r in zip(x, residual)]
    expected = [s * sh + (1 - s) * v for s, sh, v in zip(soft, sharp, x)]
    image = torch.tensor(x).view(1, 1, 1, 6).expand(1, 1, 4, 6).contiguous()
    out = UnsharpMask(radius=3, value_range=(0.0, 1.0))(image)
    for row in out[0, 0]:
        torch.testing.assert_close(row, torch.tensor(expected), rtol=0, atol=1e-6)
    assert out[0, 0, 0, 2] < 0.25 and out[0, 0, 0, 3] > 0.75  # more contrast at the edge
    assert torch.equal(out[0, 0, :, 0], image[0, 0, :, 0])  # away from the edge: untouched


def test_usm_threshold() -> None:
    residual = torch.tensor([9.9, 10.0, 10.1, -10.1]) / 255
    assert sharpen_mask(residual, 10, (0.0, 1.0)).tolist() == [0, 0, 1, 1]
    assert sharpen_mask(residual * 2, 10, (-1.0, 1.0)).tolist() == [0, 0, 1, 1]  # same levels in [-1, 1]
    # a faint edge (residual below 10 levels everywhere) is left exactly as it is; a stronger one is sharpened
    faint = torch.tensor([0.50] * 30 + [0.53] * 30).view(1, 1, 1, 60).expand(1, 1, 8, 60).contiguous()
    assert torch.equal(UnsharpMask(value_range=(0.0, 1.0))(faint), faint)
    strong = faint * torch.tensor([1.0] * 30 + [1.5] * 30)
    assert not torch.equal(UnsharpMask(value_range=(0.0, 1.0))(strong), strong)


def test_usm_matches_real_esrgans_opencv_definition() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((40, 48, 3)).astype(np.float32) * 0.3 + np.linspace(0, 0.5, 48, dtype=np.float32)[None, :, None]
    img[:, 20:] += 0.2
    blur = cv2.GaussianBlur(img, (51, 51), 0)
    residual = img - blur
    soft = cv2.GaussianBlur((np.abs(residual) * 255 > 10).astype(np.float32), (51, 51), 0)
    expected = soft * np.clip(img + 0.5 * residual, 0, 1) + (1 - soft) * img
    assert np.abs(expected - img).max() > 0.05  # the image is sharpened, not a no-op
    ours = UnsharpMask(value_range=(0.0, 1.0))(torch.from_numpy(img).permute(2, 0, 1)[None])
    np.testing.assert_allclose(ours[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)
    # the toolkit's [-1, 1] images give the same sharpening
    in_pm1 = UnsharpMask()(torch.from_numpy(img * 2 - 1).permute(2, 0, 1)[None])
    np.testing.assert_allclose(in_pm1[0].permute(1, 2, 0).numpy(), expected * 2 - 1, atol=1e-5)


@pytest.mark.parametrize("which", ["pixel", "perceptual", "both"])
def test_content_loss_sharpens_the_chosen_targets(vgg_file, which: str) -> None:
    perceptual = PerceptualLoss({"conv1_2": 1.0}, True, str(vgg_file), "l1")
    content = ContentLoss("l1", perceptual, which)
    sr, hr = _images()
    sharp = UnsharpMask()(hr)
    assert not torch.equal(sharp, hr)
    pixel, percep = content(sr, hr)
    pixel_target = sharp if which in ("pixel", "both") else hr
    percep_target = sharp if which in ("perceptual", "both") else hr
    assert torch.equal(pixel, F.l1_loss(sr, pixel_target))
    assert torch.equal(percep, perceptual(sr, percep_target))


@pytest.fixture(scope="module")
def vgg22_file(reference_features, tmp_path_factory) -> Path:
    """Only the tensors up to conv2_2: a quick file for the model tests."""
    path = tmp_path_factory.mktemp("vgg22") / "vgg19_conv2_2.pth"
    torch.save({f"features.{k}": v for k, v in reference_features[:9].state_dict().items()}, path)
    return path


def test_srgan_real_esrgan_losses_train(tmp_path, vgg22_file) -> None:
    """The Real-ESRGAN loss set in --model srgan (on two layers, for speed): L1 1 against the USM target, VGG
    layers before activation with L1, and the GAN against the plain HR."""
    torch.manual_seed(0)
    opt = TrainOptions().parse([
        "--model", "srgan", "--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ck"),
        "--name", "t", "--ngf", "8", "--ndf", "8", "--n_blocks", "1", "--crop_size", "32", "--display_id", "0",
        "--netD_head", "conv", "--amp", "none", "--pixel_loss", "l1", "--lambda_pixel", "1", "--lambda_perceptual",
        "1", "--perceptual_layers", "conv1_2:0.1,conv2_2:1", "--perceptual_criterion", "l1",
        "--vgg_before_activation", "--vgg_weights", str(vgg22_file), "--usm_targets", "both", "--lambda_adv", "0.1"])
    model = create_model(opt)
    model.setup(opt)
    g_before = [p.detach().clone() for p in model.netG.parameters()]
    model.set_input(_sr_batch(7))
    model.optimize_parameters()
    sharp = UnsharpMask()(model.real_B)
    with torch.no_grad():
        expected_pixel = F.l1_loss(model.fake_B, sharp)
        expected_percep = model.criterionPerceptual(model.fake_B, sharp)
    assert model.loss_G_pixel.item() == pytest.approx(expected_pixel.item(), rel=1e-6)
    assert model.loss_G_perceptual.item() == pytest.approx(expected_percep.item(), rel=1e-5)
    assert all(math.isfinite(v) for v in model.get_current_losses().values())
    assert all(not torch.equal(a, b) for a, b in zip(g_before, model.netG.parameters()))


def test_usm_targets_stay_float32_under_autocast() -> None:
    content = ContentLoss("l1", None, "pixel")
    _, hr = _images()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pixel_target, perceptual_target = content.targets(hr)
    assert torch.equal(pixel_target, UnsharpMask()(hr)) and perceptual_target is hr
