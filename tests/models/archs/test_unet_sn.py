"""`--netD unet_sn`: Real-ESRGAN's U-Net discriminator with spectral normalisation (models/archs/unet_discriminator_arch.py).

Its registration is also exercised by the registry-wide tests (test_networks.py's shapes and gradients,
test_acceleration.py's channels_last gradients against float64); these check what is particular to it.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F

from models import create_model, networks
from models.archs.unet_discriminator_arch import UNetDiscriminatorSN, spectral_normalised_convs
from options.train_options import TrainOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.mark.parametrize("nc,height,width", [(3, 8, 8), (3, 24, 40), (6, 32, 32), (3, 64, 48)])
def test_one_logit_per_pixel_at_the_input_size(nc: int, height: int, width: int) -> None:
    torch.manual_seed(0)
    net = networks.define_D(nc, 8, "unet_sn", 3, "none")
    y = net(torch.rand(2, nc, height, width) * 2 - 1)
    assert y.shape == (2, 1, height, width)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("height,width", [(12, 16), (16, 20), (7, 8)])
def test_sides_not_multiples_of_8_are_refused(height: int, width: int) -> None:
    net = UNetDiscriminatorSN(3, 4)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, height, width))


def test_the_verdict_is_local_far_from_a_change() -> None:
    """A per-pixel verdict, not a per-image one: changing one corner leaves the far corner's logits unchanged
    (the receptive field of one output pixel is finite), while the changed corner's move."""
    torch.manual_seed(0)
    net = UNetDiscriminatorSN(3, 4).double().eval()  # eval: no power iteration, so both calls share weights
    x = torch.rand(1, 3, 128, 128, dtype=torch.float64)
    x2 = x.clone()
    x2[..., :8, :8] += 1
    with torch.no_grad():
        delta = (net(x2) - net(x)).abs()[0, 0]
    assert delta[:8, :8].max() > 1e-6
    assert delta[-16:, -16:].max() == 0


def _layout(ndf: int, input_nc: int = 3) -> Dict[str, Tuple[int, ...]]:
    """The published UNetDiscriminatorSN's state_dict, written from realesrgan_recipe.md's description: conv0 and
    conv9 plain with bias; conv1..conv8 spectral-normalised without bias (torch's classic spectral_norm keys)."""
    f = ndf
    layout: Dict[str, Tuple[int, ...]] = {"conv0.weight": (f, input_nc, 3, 3), "conv0.bias": (f,)}
    sn = [(1, f, 2 * f, 4), (2, 2 * f, 4 * f, 4), (3, 4 * f, 8 * f, 4), (4, 8 * f, 4 * f, 3), (5, 4 * f, 2 * f, 3),
          (6, 2 * f, f, 3), (7, f, f, 3), (8, f, f, 3)]
    for i, c_in, c_out, k in sn:
        layout.update({f"conv{i}.weight_orig": (c_out, c_in, k, k), f"conv{i}.weight_u": (c_out,),
                       f"conv{i}.weight_v": (c_in * k * k,)})
    layout.update({"conv9.weight": (1, f, 3, 3), "conv9.bias": (1,)})
    return layout


def test_state_dict_has_the_published_layout_at_ndf_64() -> None:
    # No discriminator entry exists in tests/fixtures/reference (state_dict_keys.json, sr_published_weights.json hold
    # generators and PatchGANs only), so the layout is the recipe's, at its published width.
    net = networks.define_D(3, 64, "unet_sn", 3, "batch")
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == _layout(64)
    assert list(got) == list(_layout(64))  # in the published order too
    assert sum(p.numel() for p in net.parameters()) == sum(
        torch.Size(s).numel() for k, s in _layout(64).items() if not k.endswith(("_u", "_v")))


def test_spectral_norms_are_near_1_after_power_iterations() -> None:
    """After training-mode forwards (one power iteration each), every normalised conv weight, as a matrix
    (out, in * k * k), has largest singular value 1, computed independently by torch.linalg.matrix_norm."""
    torch.manual_seed(0)
    net = networks.define_D(3, 8, "unet_sn", 3, "none")
    convs = spectral_normalised_convs(net)
    assert [name for name, m in net.named_modules() if m in convs] == [f"conv{i}" for i in range(1, 9)]
    with torch.no_grad():
        for _ in range(30):
            net(torch.rand(1, 3, 16, 16))
    for conv in convs:
        raw = conv.weight_orig.detach().reshape(conv.weight_orig.shape[0], -1)
        normalised = conv.weight.detach().reshape(raw.shape)
        assert torch.linalg.matrix_norm(normalised, ord=2).item() == pytest.approx(1.0, abs=0.02)
        sigma = torch.linalg.matrix_norm(raw, ord=2)
        assert abs(sigma.item() - 1) > 0.1  # the normalisation did something: the raw weights' norm is not 1
        torch.testing.assert_close(normalised, raw / sigma, rtol=0.02, atol=1e-4)
    for plain in (net.conv0, net.conv9):
        assert not hasattr(plain, "weight_orig")


# ---------------------------------------------------------------------------------------------- in the models


def _opt(tmp_path: Path, model: str, *extra: str):
    tiny = {"srgan": ["--netG", "srresnet", "--n_blocks", "1", "--lambda_perceptual", "0"],
            "pix2pix": ["--netG", "resnet_6blocks"], "cycle_gan": ["--netG", "resnet_6blocks"]}[model]
    return TrainOptions().parse([
        "--model", model, "--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ck"),
        "--name", "t", "--ngf", "8", "--ndf", "8", "--crop_size", "32", "--load_size", "32", "--display_id", "0",
        "--netD", "unet_sn", *tiny, *extra])


def _batch(model: str, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    lr = F.avg_pool2d(hr, 4) if model == "srgan" else torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    return {"A": lr, "B": hr, "A_paths": ["a.png"] * 2, "B_paths": ["b.png"] * 2}


def _d_state(model) -> List[torch.Tensor]:
    return [p.detach().clone() for name, net in model.named_networks() if name.startswith("D")
            for p in net.parameters()]


def test_srgan_step_with_unet_sn_trains_d_on_per_pixel_losses(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model(_opt(tmp_path, "srgan", "--amp", "none"))
    assert isinstance(networks.unwrap(model.netD), UNetDiscriminatorSN)
    batch = _batch("srgan")
    model.set_input(batch)
    d_before = copy.deepcopy(networks.unwrap(model.netD))  # same weights and power-iteration state as the step's
    params_before = _d_state(model)
    model.optimize_parameters()
    # The discriminator's real term: binary cross-entropy of every pixel's logit against 1, averaged over pixels
    # (its first forward of the step is on the real HR, as d_before's is here).
    logits = d_before(batch["B"])  # (2, 1, 32, 32)
    expected = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    assert model.loss_D_real.item() == pytest.approx(expected.item(), rel=1e-5)
    changed = [not torch.equal(a, b) for a, b in zip(params_before, _d_state(model))]
    assert all(changed)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in model.get_current_losses().values())


@pytest.mark.parametrize("model_name", ["pix2pix", "cycle_gan"])
def test_image_to_image_models_train_with_unet_sn(tmp_path, model_name: str) -> None:
    torch.manual_seed(0)
    model = create_model(_opt(tmp_path, model_name, "--amp", "none"))
    model.set_input(_batch(model_name))
    before = _d_state(model)
    model.optimize_parameters()
    assert all(not torch.equal(a, b) for a, b in zip(before, _d_state(model)))


def test_bf16_channels_last_step(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model(_opt(tmp_path, "srgan", "--amp", "bf16", "--channels_last", "on"))
    model.set_input(_batch("srgan"))
    before = _d_state(model)
    model.optimize_parameters()
    # Every weight moves. Not conv9's bias: at initialisation real and fake logits are both near 0, so its
    # gradient, mean(sigmoid(real) - 1) + mean(sigmoid(fake)), is about 0, and exactly 0 after bf16 rounding.
    names = [name for name, _ in model.netD.named_parameters()]
    moved = {name for name, a, b in zip(names, before, _d_state(model)) if not torch.equal(a, b)}
    assert {name for name in names if "weight" in name} <= moved
    assert all(torch.isfinite(torch.as_tensor(v)) for v in model.get_current_losses().values())


@pytest.mark.parametrize("model_name,extra,named", [
    ("srgan", ["--crop_size", "36", "--load_size", "36"], "--crop_size 36"),
    ("srgan", ["--preprocess", "none", "--batch_size", "1", "--netD", "unet_sn"], "--preprocess none"),
    ("pix2pix", ["--preprocess", "scale_width"], "--preprocess scale_width"),
])
def test_sizes_the_discriminator_cannot_take_are_refused_at_option_time(tmp_path, capsys, model_name: str,
                                                                         extra: List[str], named: str) -> None:
    with pytest.raises(SystemExit) as exc:
        _opt(tmp_path, model_name, *extra)
    assert exc.value.code == 2
    message = capsys.readouterr().err.strip()
    assert named in message and "unet_sn" in message and "multiples of 8" in message and "\n" not in message
