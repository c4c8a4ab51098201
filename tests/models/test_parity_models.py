"""The reference's remaining models and loss: `--gan_mode hinge`, `--model template`, `--model colorization`
(with its dataset mode and the sRGB <-> Lab conversion of util/images/lab.py).

Expected values come from elsewhere: hinge terms by hand, Lab from scikit-image (the reference's conversion),
images from PIL. Training and test.py run in-process on the shared sample photos (skipped without them).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

from data import DATASETS, create_dataset
from helpers import require_or_skip
from models import create_model
from models.networks import GAN_MODES, GANLoss
from options import TrainOptions
from util.errors import OptionError
from util.images.lab import lab_to_network, lab_to_rgb, network_to_rgb, rgb_to_lab

from test_cli import CPU, FACADES, HORSE2ZEBRA, as_array, assert_links_resolve, decode, require
from test_models import _batch, _params, train_opt

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

X = [-3.0, -0.5, 0.0, 0.25, 2.0, 4.5]  # a "discriminator output" with points on both sides of the margins


def _skimage_color():
    try:
        from skimage import color
    except ImportError:
        color = None
    require_or_skip(color is not None, "scikit-image is not installed (pip install -e .[test]): it gives the "
                                       "independent Lab values")
    return color


def _photos() -> List[Path]:
    return sorted(require(HORSE2ZEBRA).rglob("*.jpg"))


def _rgb01(path: Path) -> np.ndarray:
    return np.asarray(decode(path).convert("RGB"), dtype=np.float64) / 255.0  # (H, W, 3)


def photo_folders(root: Path, train: int = 2) -> Path:
    """`root/train` and `root/test`: links to horse2zebra_mini's photos (`train` training photos, one test photo),
    the layout of colorization data."""
    photos = [p for p in _photos() if "train" in p.parent.name]
    for phase, chosen in (("train", photos[:train]), ("test", sorted(require(HORSE2ZEBRA / "testA").glob("*.jpg")))):
        (root / phase).mkdir(parents=True, exist_ok=True)
        for path in chosen:
            (root / phase / f"{path.parent.name}_{path.name}").symlink_to(path)
    return root


# ---------------------------------------------------------------------------------------------- hinge


def test_hinge_generator_term_is_minus_mean_score() -> None:
    x = torch.tensor(X, dtype=torch.float64).reshape(1, 1, 2, 3).requires_grad_(True)
    loss = GANLoss("hinge")(x, True, for_discriminator=False)
    assert loss.item() == pytest.approx(-sum(X) / len(X))  # no margin: -mean(D(G(a)))
    loss.backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, -1.0 / len(X)))
    # D's term for the same scores is another number: mean(max(0, 1 - x)).
    assert GANLoss("hinge")(x, True).item() == pytest.approx(sum(max(0.0, 1 - v) for v in X) / len(X))


@pytest.mark.parametrize("mode", [m for m in GAN_MODES.names() if m != "hinge"])
def test_other_modes_score_the_generator_as_real(mode: str) -> None:
    x = torch.tensor(X)
    crit = GANLoss(mode, target_real_label=0.9)
    assert crit(x, True, for_discriminator=False).item() == crit(x, True).item()


def test_generator_term_must_judge_fakes_real() -> None:
    with pytest.raises(ValueError, match="target_is_real=True"):
        GANLoss("hinge")(torch.tensor(X), False, for_discriminator=False)


def test_pix2pix_trains_with_hinge_on_facades(tmp_path) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "pix2pix", "--dataroot", str(require(FACADES)), "--gan_mode", "hinge",
                    "--num_threads", "0")
    model = create_model(opt)
    model.setup(opt)
    before = _params(model)
    for data in create_dataset(opt):  # the two training pairs
        model.set_input(data)
        model.optimize_parameters()
        losses = model.get_current_losses()
        assert all(math.isfinite(v) for v in losses.values()), losses
        assert losses["D_real"] >= 0 and losses["D_fake"] >= 0  # hinge terms of D are never negative
    after = _params(model)
    for net in ("netG.", "netD."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(net)), net
    # G's adversarial term is -mean(D(A, G(A))), with D as it was for G's step (D has not moved since).
    with torch.no_grad():
        score = model.netD(torch.cat((model.real_A, model.fake_B), 1))  # (1, 1, h, w) patch scores
    assert losses["G_GAN"] == pytest.approx(-score.mean().item(), rel=1e-5, abs=1e-6)


# ---------------------------------------------------------------------------------------------- template


def test_template_loss_is_weighted_l1_and_falls(tmp_path) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "template", "--lambda_regression", "3", "--no_dropout")
    model = create_model(opt)
    model.setup(opt)
    assert (model.model_names, model.loss_names, opt.dataset_mode) == (["G"], ["G"], "aligned")
    assert not hasattr(model, "netD")
    model.set_input(_batch(seed=3))
    curve = []
    for step in range(20):
        model.optimize_parameters()
        curve.append(model.get_current_losses()["G"])
        if step == 0:  # fake_B is the output the loss was computed on
            assert curve[0] == pytest.approx(3 * (model.fake_B.detach() - model.real_B).abs().mean().item(), rel=1e-5)
    assert curve[-1] < 0.8 * curve[0], curve


def _run(main, *args: object) -> None:
    assert main([str(a) for a in args]) == 0


def test_template_trains_and_tests_end_to_end(train_main, test_main, tmp_path) -> None:
    common = ["--dataroot", require(FACADES), "--name", "tpl", "--model", "template", "--ngf", "8",
              "--checkpoints_dir", tmp_path / "ck", *CPU]
    _run(train_main, *common, "--crop_size", "32", "--load_size", "36", "--n_epochs", "1", "--n_epochs_decay", "0",
         "--print_freq", "1", "--display_id", "0", "--seed", "0")
    run = tmp_path / "ck" / "tpl"
    assert sorted(p.name for p in run.glob("*_net_*.pth")) == ["1_net_G.pth", "latest_net_G.pth"]  # no D
    log = [line for line in (run / "loss_log.txt").read_text().splitlines() if line.startswith("(epoch")]
    assert len(log) == 2 and all(math.isfinite(float(line.split("G: ")[1])) for line in log), log  # 2 iterations
    _run(test_main, *common, "--results_dir", tmp_path / "results")
    page = tmp_path / "results" / "tpl" / "test_latest"
    names = sorted(p.name for p in (page / "images").iterdir())
    assert names == ["3_fake_B.png", "3_real_A.png", "3_real_B.png"]
    assert {p.name for p in assert_links_resolve(page / "index.html")} == set(names)
    assert decode(page / "images" / "3_fake_B.png").size == (32, 32)  # test.py uses the run's crop size


# ---------------------------------------------------------------------------------------------- Lab


def test_lab_matches_scikit_image_and_round_trips_on_photos() -> None:
    color = _skimage_color()
    photos = _photos()
    batch = torch.stack([torch.from_numpy(_rgb01(p)).permute(2, 0, 1).float() for p in photos])  # (N, 3, H, W)
    lab = rgb_to_lab(batch)
    assert lab.shape == batch.shape and lab.dtype == torch.float32
    for i, path in enumerate(photos):
        expected = color.rgb2lab(_rgb01(path))  # (H, W, 3), float64
        np.testing.assert_allclose(lab[i].permute(1, 2, 0).numpy(), expected, atol=1e-3, err_msg=path.name)
    back = lab_to_rgb(lab)
    assert (back - batch).abs().max().item() < 1 / 255
    assert torch.equal((back * 255).round(), (batch * 255).round())  # 8-bit photos come back bit for bit
    assert torch.equal(rgb_to_lab(batch[1]), lab[1])  # (3, H, W) as in a batch


def test_lab_to_rgb_matches_scikit_image_outside_the_gamut() -> None:
    """Predicted colours may not exist in sRGB: clipped as scikit-image (the reference's lab2rgb) clips them."""
    color = _skimage_color()
    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(0, 100, (16, 16)), rng.uniform(-128, 128, (16, 16)),
                    rng.uniform(-128, 128, (16, 16))], axis=-1)  # (H, W, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-image warns of the negative Z it clips
        expected = color.lab2rgb(lab)
    got = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1).float()).permute(1, 2, 0).numpy()
    assert ((expected == 0) | (expected == 1)).mean() > 0.3  # many colours are outside the gamut
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_network_scaling_is_the_references() -> None:
    lab = torch.tensor([[[0.0]], [[-110.0]], [[55.0]]])  # (3, 1, 1): L 0, a -110, b 55
    l_channel, ab = lab_to_network(lab)
    assert l_channel.tolist() == [[[-1.0]]] and ab.tolist() == [[[-1.0]], [[0.5]]]
    white = network_to_rgb(torch.ones(1, 1, 2, 2), torch.zeros(1, 2, 2, 2))  # L 100, no colour
    torch.testing.assert_close(white, torch.ones(1, 3, 2, 2), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------- colorization


def _colorization_opt(tmp_path: Path, dataroot: Path, *extra: str):
    return train_opt(tmp_path, "colorization", "--dataroot", str(dataroot), "--num_threads", "0", *extra)


def test_colorization_dataset_gives_l_and_ab(tmp_path) -> None:
    color = _skimage_color()
    root = photo_folders(tmp_path / "photos")
    opt = _colorization_opt(tmp_path, root, "--no_flip", "--load_size", "32", "--crop_size", "32")
    assert (opt.input_nc, opt.output_nc, opt.dataset_mode) == (1, 2, "colorization")
    dataset = DATASETS.get("colorization")(opt)
    assert len(dataset) == 2
    for i in range(len(dataset)):
        item = dataset[i]
        assert item["A"].shape == (1, 32, 32) and item["B"].shape == (2, 32, 32)
        assert item["A_paths"] == item["B_paths"] == dataset.source_paths()[i]
        assert -1 <= item["A"].min() and item["A"].max() <= 1 and item["B"].abs().max() <= 1
        assert item["B"].abs().max() > 0.05  # horses on grass: colour is there
        # The photo resized as --preprocess resize_and_crop does (the crop is the whole 32x32), in Lab.
        small = np.asarray(decode(Path(item["A_paths"])).convert("RGB").resize((32, 32), Image.BICUBIC)) / 255.0
        lab = color.rgb2lab(small)  # (32, 32, 3)
        np.testing.assert_allclose(item["A"][0].numpy(), lab[..., 0] / 50 - 1, atol=1e-4)
        np.testing.assert_allclose(item["B"].permute(1, 2, 0).numpy(), lab[..., 1:] / 110, atol=1e-4)


def test_colorization_dataset_refuses_other_models(tmp_path) -> None:
    root = photo_folders(tmp_path / "photos")
    opt = train_opt(tmp_path, "pix2pix", "--dataroot", str(root), "--dataset_mode", "colorization")
    with pytest.raises(OptionError, match="--input_nc 1 --output_nc 2.*--model colorization"):
        DATASETS.get("colorization")(opt)


@pytest.mark.parametrize("flags,needles", [
    (["--input_nc", "3"], ["--input_nc 1 --output_nc 2", "got --input_nc 3 --output_nc 2"]),
    (["--output_nc", "3"], ["--input_nc 1 --output_nc 2", "got --input_nc 1 --output_nc 3"]),
    (["--output_nc", "1"], ["ab", "got --input_nc 1 --output_nc 1"]),
    (["--direction", "BtoA"], ["--direction AtoB"]),
    (["--dataset_mode", "aligned"], ["--dataset_mode colorization, not aligned"]),
], ids=["input_nc", "output_nc3", "output_nc1", "direction", "dataset_mode"])
def test_colorization_refuses_other_channels(tmp_path, capsys, flags: List[str], needles: List[str]) -> None:
    with pytest.raises(SystemExit) as info:
        train_opt(tmp_path, "colorization", *flags)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert all(needle in err for needle in needles), err


def test_two_output_channels_only_for_colorization(tmp_path, capsys) -> None:
    assert train_opt(tmp_path, "colorization", "--input_nc", "1", "--output_nc", "2").output_nc == 2
    with pytest.raises(SystemExit) as info:
        train_opt(tmp_path, "pix2pix", "--output_nc", "2")
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--output_nc must be 1 (grey) or 3 (RGB), got 2" in err, err


def _first_conv_channels(path: Path) -> int:
    state: Dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return next(v for v in state.values() if v.dim() == 4).shape[1]


def test_colorization_trains_and_tests_end_to_end(train_main, test_main, tmp_path) -> None:
    root = photo_folders(tmp_path / "photos")
    common = ["--dataroot", root, "--name", "color", "--model", "colorization", "--netG", "resnet_6blocks",
              "--ngf", "8", "--checkpoints_dir", tmp_path / "ck", *CPU]
    _run(train_main, *common, "--ndf", "8", "--crop_size", "32", "--load_size", "36", "--n_epochs", "1",
         "--n_epochs_decay", "0", "--display_freq", "1", "--update_html_freq", "1", "--display_id", "0", "--seed", "0")
    run = tmp_path / "ck" / "color"
    assert _first_conv_channels(run / "latest_net_G.pth") == 1  # L in
    assert _first_conv_channels(run / "latest_net_D.pth") == 3  # D sees L and ab
    shown = {p.name for p in (run / "web" / "images").iterdir()}
    assert {f"epoch001_{label}.png" for label in ("real_A", "real_B_rgb", "fake_B_rgb")} <= shown

    _run(test_main, *common, "--results_dir", tmp_path / "results")
    page = tmp_path / "results" / "color" / "test_latest"
    names = ["testA_5_fake_B_rgb.png", "testA_5_real_A.png", "testA_5_real_B_rgb.png"]
    assert sorted(p.name for p in (page / "images").iterdir()) == names
    assert {p.name for p in assert_links_resolve(page / "index.html")} == set(names)
    real_a, real_rgb, fake_rgb = (as_array(page / "images" / f"testA_5_{label}.png").astype(np.int16)
                                  for label in ("real_A", "real_B_rgb", "fake_B_rgb"))
    assert (real_a == real_a[..., :1]).all()  # the lightness, as a grey image
    # The real colours come back through Lab: the test photo at the run's size, up to the 8-bit truncation.
    photo = np.asarray(decode(HORSE2ZEBRA / "testA" / "5.jpg").convert("RGB").resize((32, 32), Image.BICUBIC))
    assert np.abs(real_rgb - photo).max() <= 1
    assert fake_rgb.shape == (32, 32, 3) and not (fake_rgb == fake_rgb[..., :1]).all()  # colours, not grey
