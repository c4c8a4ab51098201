"""The Real-ESRGAN degradation (`--degradation realesrgan`, data/degradations): kernel shapes against their
formulas, the sinc filter's frequency response, noise statistics, the JPEG round trip, the pipeline's seeding and
sizes, the options and their published defaults, the training and evaluation command lines, and a bit-exact
resume of a degraded srgan run stopped mid-epoch.
"""
from __future__ import annotations

import io
import math
import zlib

import numpy as np
import pytest
from helpers import ROOT
import torch
from PIL import Image

from data import DatasetLoader, create_dataset
from data.degradations import KERNEL_KINDS, default_settings, degrade, sample_rng
from data.degradations.kernels import (filter2d, gaussian_kernel, generalized_gaussian_kernel, pad_kernel,
                                       plateau_kernel, random_kernel, sinc_kernel)
from data.degradations.noise import gaussian_noise, jpeg, poisson_noise_field
from options.train_options import TrainOptions

from test_reliability import (Proc, assert_matches_reference, load_state, run_env, train_args,  # noqa: F401
                              wrapper)

SET5 = ROOT.parent / "shared" / "data" / "sr_eval" / "Set5"


def _grid(size: int):
    ax = torch.arange(size, dtype=torch.float64) - size // 2
    return torch.meshgrid(ax, ax, indexing="xy")  # xx varies along the columns, yy along the rows


def _photo(size: int = 96) -> torch.Tensor:
    """A real photo crop (Set5's baby), (3, size, size) in [0, 1]."""
    if not SET5.is_dir():
        pytest.skip(f"shared SR images {SET5} are absent")
    with Image.open(SET5 / "baby.png") as img:
        crop = np.asarray(img.convert("RGB").crop((200, 150, 200 + size, 150 + size)), dtype=np.float32) / 255
    return torch.from_numpy(crop.transpose(2, 0, 1).copy())


# ---------------------------------------------------------------------------------------------- kernels


def test_every_random_kernel_sums_to_one_and_has_the_padded_size():
    settings = default_settings().first.kernel
    rng = sample_rng(0)
    for _ in range(60):
        kernel = random_kernel(rng, settings)
        assert kernel.shape == (21, 21)
        assert abs(float(kernel.sum()) - 1) < 1e-5


def test_isotropic_kernels_are_symmetric_and_match_their_formulas():
    xx, yy = _grid(15)
    r2 = xx ** 2 + yy ** 2
    sigma = 2.0
    expected = {
        "gaussian": torch.exp(-r2 / (2 * sigma ** 2)),
        "generalized": torch.exp(-0.5 * (r2 / sigma ** 2) ** 0.7),
        "plateau": 1 / (1 + (r2 / sigma ** 2) ** 1.5),
    }
    got = {"gaussian": gaussian_kernel(15, sigma, sigma),
           "generalized": generalized_gaussian_kernel(15, sigma, sigma, 0.4, 0.7),
           "plateau": plateau_kernel(15, sigma, sigma, 1.1, 1.5)}
    for name, kernel in got.items():
        assert torch.allclose(kernel.double(), expected[name] / expected[name].sum(), atol=1e-7), name
        for same in (kernel.T, kernel.flip(0), kernel.flip(1)):
            assert torch.allclose(kernel, same, atol=1e-7), name


def test_anisotropic_gaussian_has_the_rotated_covariance():
    """The second moments of the normalised kernel are S = R diag(sx^2, sy^2) R^T (the window holds > 6 sigma)."""
    theta, sx, sy = 0.6, 3.0, 1.0
    kernel = gaussian_kernel(31, sx, sy, theta).double()
    xx, yy = _grid(31)
    moments = torch.tensor([[(kernel * xx * xx).sum(), (kernel * xx * yy).sum()],
                            [(kernel * xx * yy).sum(), (kernel * yy * yy).sum()]])
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    assert torch.allclose(moments, rot @ torch.diag(torch.tensor([sx ** 2, sy ** 2])).double() @ rot.T, atol=0.02)
    assert not torch.allclose(kernel, kernel.T.contiguous(), atol=1e-4)  # really anisotropic and turned
    assert torch.allclose(gaussian_kernel(21, sx, sy, theta + math.pi), gaussian_kernel(21, sx, sy, theta), atol=1e-7)


def test_generalized_beta_one_is_gaussian_and_plateau_is_flatter_at_the_top():
    assert torch.allclose(generalized_gaussian_kernel(21, 2.5, 1.5, 0.3, 1.0), gaussian_kernel(21, 2.5, 1.5, 0.3),
                          atol=1e-7)
    gauss, plateau = gaussian_kernel(21, 2.0, 2.0), plateau_kernel(21, 2.0, 2.0, 0.0, 2.0)
    c = 10
    # One pixel off the centre the plateau keeps 1 / (1 + (1/4)^2) of its peak, the Gaussian exp(-1/8).
    assert float(plateau[c, c + 1] / plateau[c, c]) == pytest.approx(1 / (1 + 0.25 ** 2), rel=1e-5)
    assert float(gauss[c, c + 1] / gauss[c, c]) == pytest.approx(math.exp(-1 / 8), rel=1e-5)


def test_sinc_passes_below_the_cutoff_and_stops_above_it():
    omega = math.pi / 2
    response = torch.fft.fft2(sinc_kernel(21, omega).double(), s=(128, 128)).abs()
    f = torch.fft.fftfreq(128, dtype=torch.float64) * 2 * math.pi
    radius = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    assert float(response[radius < 0.6 * omega].mean()) > 0.9
    assert float(response[radius > 1.4 * omega].mean()) < 0.05
    # A higher cutoff passes more: at 0.9 * pi/2 the pi/2 filter is still open, the pi/4 one closed.
    narrow = torch.fft.fft2(sinc_kernel(21, omega / 2).double(), s=(128, 128)).abs()
    band = (radius > 0.8 * omega) & (radius < 0.9 * omega)
    assert float(narrow[band].mean()) < 0.1 < 0.8 < float(response[band].mean())
    assert abs(float(sinc_kernel(21, omega).sum()) - 1) < 1e-6


def test_filter2d_with_a_pulse_is_identity_and_blurs_like_a_direct_sum():
    img = torch.rand(2, 3, 20, 24)
    pulse = pad_kernel(torch.ones(1, 1), 7)
    assert torch.equal(filter2d(img, pulse), img)
    kernel = gaussian_kernel(5, 1.3, 0.7, 0.9)
    out = filter2d(img, kernel)
    y, x = 9, 11  # an inner pixel: the convolution sum written out
    direct = sum(float(kernel[i, j]) * img[:, :, y + 2 - i, x + 2 - j] for i in range(5) for j in range(5))
    assert torch.allclose(out[:, :, y, x], direct, atol=1e-5)
    # Zero-padding the kernel to the common 21x21 changes nothing (its border is cut before the convolution).
    assert torch.equal(filter2d(img, pad_kernel(kernel, 21)), out)


# ---------------------------------------------------------------------------------------------- noise and JPEG


def test_gaussian_noise_has_the_std_and_grey_noise_is_shared_by_the_channels():
    img = torch.full((3, 128, 128), 0.5)
    colour = gaussian_noise(img, 0.05, False, sample_rng(1)) - img
    assert float(colour.std()) == pytest.approx(0.05, rel=0.03)
    assert abs(float(colour.mean())) < 0.002
    assert not torch.equal(colour[0], colour[1])
    grey = gaussian_noise(img, 0.05, True, sample_rng(1)) - img
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_poisson_noise_is_unbiased_with_variance_proportional_to_brightness():
    """256 distinct levels -> 256 counts stand for white: E[noise] = 0, E[noise^2] = E[img] / 256."""
    levels = torch.arange(256, dtype=torch.float32).repeat(3, 256, 1) / 255  # (3, 256, 256), every level
    noise = poisson_noise_field(levels, False, sample_rng(2))
    assert abs(float(noise.mean())) < 2e-4
    assert float((noise ** 2).mean()) == pytest.approx(float(levels.mean()) / 256, rel=0.02)
    bright, dark = noise[:, :, 200:], noise[:, :, :50]
    assert float(bright.var()) > 4 * float(dark.var())
    assert poisson_noise_field(levels, True, sample_rng(2)).shape == (1, 256, 256)


def test_lower_jpeg_quality_moves_the_image_further():
    img = _photo()
    errors = [float((jpeg(img, q) - img).abs().mean()) for q in (10, 40, 90)]
    assert errors[0] > errors[1] > errors[2] > 0
    # The same as saving the 8-bit image with PIL and reading it back.
    pil = Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=40)
    direct = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32) / 255
    assert torch.equal(jpeg(img, 40), torch.from_numpy(direct.transpose(2, 0, 1).copy()))


# ---------------------------------------------------------------------------------------------- the pipeline


def test_pipeline_is_deterministic_for_a_seed_and_differs_for_another():
    hr, settings = _photo(), default_settings()
    first = degrade(hr, 4, settings, sample_rng(11))
    assert torch.equal(first, degrade(hr, 4, settings, sample_rng(11)))
    assert not torch.equal(first, degrade(hr, 4, settings, sample_rng(12)))


@pytest.mark.parametrize("shape, scale", [((3, 96, 96), 4), ((3, 64, 40), 2), ((1, 48, 48), 4)])
def test_lr_has_the_size_and_the_8_bit_grid(shape, scale):
    hr = torch.rand(*shape)
    for seed in range(4):
        lr = degrade(hr, scale, default_settings(), sample_rng(seed))
        assert lr.shape == (shape[0], shape[1] // scale, shape[2] // scale)
        assert 0 <= float(lr.min()) and float(lr.max()) <= 1
        assert torch.equal(lr, torch.round(lr * 255) / 255)


def test_default_settings_are_the_published_ones():
    s = default_settings()
    first, second = s.first, s.second
    assert first.kernel.sizes == (7, 9, 11, 13, 15, 17, 19, 21)
    assert dict(zip(KERNEL_KINDS, first.kernel.kind_probs)) == {
        "iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03, "plateau_iso": 0.12,
        "plateau_aniso": 0.03}
    assert second.kernel.kind_probs == first.kernel.kind_probs
    assert (first.kernel.sigma, second.kernel.sigma) == ((0.2, 3.0), (0.2, 1.5))
    assert first.kernel.beta_generalized == second.kernel.beta_generalized == (0.5, 4.0)
    assert first.kernel.beta_plateau == second.kernel.beta_plateau == (1.0, 2.0)
    assert first.kernel.sinc_prob == second.kernel.sinc_prob == 0.1
    assert (first.blur_prob, second.blur_prob) == (1.0, 0.8)
    assert (first.resize_probs, second.resize_probs) == ((0.2, 0.7, 0.1), (0.3, 0.4, 0.3))
    assert (first.resize_range, second.resize_range) == ((0.15, 1.5), (0.3, 1.2))
    assert first.gaussian_noise_prob == second.gaussian_noise_prob == 0.5
    assert (first.noise_sigma, second.noise_sigma) == ((1.0, 30.0), (1.0, 25.0))
    assert (first.poisson_scale, second.poisson_scale) == ((0.05, 3.0), (0.05, 2.5))
    assert first.grey_noise_prob == second.grey_noise_prob == 0.4
    assert first.jpeg_quality == second.jpeg_quality == (30, 95)
    assert (s.final_sinc_prob, s.resize_first_prob) == (0.8, 0.5)


def test_degraded_lr_is_further_from_the_plain_downscale_than_bicubic_on_average():
    """The pipeline does degrade: blur, noise and JPEG move the LR away from an area downscale of the HR."""
    hr = _photo()
    area = torch.nn.functional.interpolate(hr[None], scale_factor=0.25, mode="area")[0]
    bicubic = torch.from_numpy(np.asarray(Image.fromarray((hr.permute(1, 2, 0).numpy() * 255).round().astype(
        np.uint8)).resize((24, 24), Image.Resampling.BICUBIC), dtype=np.float32).transpose(2, 0, 1) / 255)
    degraded = [float((degrade(hr, 4, default_settings(), sample_rng(s)) - area).abs().mean()) for s in range(8)]
    assert np.mean(degraded) > 2 * float((bicubic - area).abs().mean())


# ---------------------------------------------------------------------------------------------- options


def _parse(tmp_path, *args):
    return TrainOptions().parse(["--model", "srgan", "--dataroot", str(tmp_path), "--checkpoints_dir",
                                 str(tmp_path / "ck"), "--gpu_ids", "-1", *args])


def test_options_parse_ranges_and_reach_the_settings(tmp_path):
    opt = _parse(tmp_path, "--degradation", "realesrgan", "--deg2_noise_range", "2,5", "--deg_kernel_range", "3,9")
    assert opt.degradation == "realesrgan" and opt.deg2_noise_range == (2.0, 5.0)
    assert opt.deg_kernel_range == (3, 9) and opt.deg2_blur_prob == 0.8
    assert _parse(tmp_path).degradation == "bicubic"


@pytest.mark.parametrize("flag, value", [("--deg_blur_sigma", "3,0.2"), ("--deg_resize_range", "1.1,1.5"),
                                         ("--deg_kernel_probs", "0.5,0.5,0.5,0,0,0"), ("--deg2_blur_prob", "1.5"),
                                         ("--deg_kernel_range", "6,21"), ("--deg_jpeg_range", "30"),
                                         ("--degradation", "gaussian")])
def test_bad_degradation_option_exits_2_naming_it(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        _parse(tmp_path, flag, value)
    assert exc.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and flag in err[0]


# ---------------------------------------------------------------------------------------------- data stream


def _loader(tmp_path, *args) -> DatasetLoader:
    if not SET5.is_dir():
        pytest.skip(f"shared SR images {SET5} are absent")
    opt = _parse(tmp_path, "--dataroot", str(SET5), "--degradation", "realesrgan", "--crop_size", "32",
                 "--batch_size", "2", "--seed", "3", *args)
    return create_dataset(opt)


def test_training_batches_are_degraded_seeded_and_resume_mid_epoch(tmp_path):
    loader = _loader(tmp_path, "--num_threads", "0")
    loader.set_epoch(1)
    batches = list(loader)
    assert batches[0]["A"].shape == (2, 3, 8, 8) and batches[0]["B"].shape == (2, 3, 32, 32)
    lr01 = (batches[0]["A"] + 1) / 2
    assert torch.allclose(lr01, torch.round(lr01 * 255) / 255, atol=1e-6)  # the pipeline's 8-bit LR
    loader.set_epoch(1, start=2)  # a run resumed after the first batch
    assert all(torch.equal(a["A"], b["A"]) for a, b in zip(batches[1:], loader))
    loader.set_epoch(2)
    assert not torch.equal(next(iter(loader))["A"], batches[0]["A"])
    worker = _loader(tmp_path, "--num_threads", "1")  # the stream does not depend on the workers
    worker.set_epoch(1)
    assert all(torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"]) for a, b in zip(batches, worker))


def test_no_rotate_augments_by_horizontal_flips_only(tmp_path):
    """srgan --no_rotate (Real-ESRGAN's augmentation): every whole-image HR sample is the image or its mirror, and
    both occur; without it the other six flips and rotations occur too (a transposed 32x48 image is 48x32)."""
    root = tmp_path / "hr"
    root.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "a.png")
    image = torch.from_numpy(pixels).permute(2, 0, 1).float() / 127.5 - 1  # (3, 32, 48) in [-1, 1]

    def samples(*flags: str) -> list:
        opt = _parse(tmp_path, "--dataroot", str(root), "--preprocess", "none", "--netD_head", "conv",
                     "--batch_size", "1", "--num_threads", "0", "--seed", "1", *flags)
        loader, out = create_dataset(opt), []
        for epoch in range(1, 13):
            loader.set_epoch(epoch)
            out += [batch["B"][0] for batch in loader]
        return out

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.shape == b.shape and torch.allclose(a, b, atol=1e-6)

    upright = samples("--no_rotate")
    assert all(same(hr, image) or same(hr, image.flip(-1)) for hr in upright)
    assert any(same(hr, image) for hr in upright) and any(same(hr, image.flip(-1)) for hr in upright)
    every = samples()
    assert any(not (same(hr, image) or same(hr, image.flip(-1))) for hr in every)
    assert any(hr.shape == (3, 48, 32) for hr in every)


SRGAN_DEG = ["--model", "srgan", "--degradation", "realesrgan", "--ngf", "8", "--n_blocks", "1", "--ndf", "8",
             "--netD_head", "conv", "--crop_size", "32", "--batch_size", "1", "--max_dataset_size", "3",
             "--lambda_perceptual", "0", "--n_epochs", "2", "--n_epochs_decay", "0", "--display_id", "0",
             "--gpu_ids", "-1", "--seed", "7", "--num_threads", "0", "--print_freq", "1000", "--save_latest_freq", "2"]


LONG_RUN = 600  # seconds


def test_srgan_degraded_run_stopped_mid_epoch_resumes_bit_exact(wrapper, tmp_path):
    """SIGTERM at step 2 of 6 (mid epoch 1), --continue_train: every file and the training state equal the
    uninterrupted run's (the degradations are part of the seeded sample stream, so nothing else needs saving)."""
    if not SET5.is_dir():
        pytest.skip(f"shared SR images {SET5} are absent")
    # The uninterrupted and the stopped run side by side; a long timeout, as the shared CPU may be busy.
    reference = Proc(train_args(SET5, tmp_path / "ck", "ref", SRGAN_DEG), tmp_path, "ref")
    args = train_args(SET5, tmp_path / "ck", "stopped", SRGAN_DEG)
    proc = Proc(args, tmp_path, "stopped", env=run_env(RT_SIGNAL_AT_STEP="2", RT_SIGNAL="15"), script=str(wrapper))
    assert reference.wait(timeout=LONG_RUN) == 0, reference.describe()
    assert proc.wait(timeout=LONG_RUN) == 143, proc.describe()
    assert load_state(tmp_path / "ck" / "stopped")["total_iters"] == 2
    resumed = Proc([*args, "--continue_train"], tmp_path, "resumed")
    assert resumed.wait(timeout=LONG_RUN) == 0 and "resuming at epoch" in resumed.stdout, resumed.describe()
    assert load_state(tmp_path / "ck" / "stopped")["total_iters"] == 6
    assert_matches_reference(tmp_path / "ck" / "stopped", tmp_path / "ck" / "ref")


def test_eval_metrics_with_degradation_uses_one_seeded_lr_per_image(tmp_path, train_main, test_main):
    """test.py --eval_metrics --degradation realesrgan --seed N: the saved LR is the pipeline's draw for
    (N, file name), computed here independently of the run (so the same for every model), and another seed
    gives another LR; the page's images are the degraded LR, bicubic, SR and HR."""
    if not SET5.is_dir():
        pytest.skip(f"shared SR images {SET5} are absent")
    ck = tmp_path / "ck"
    assert train_main([*map(str, train_args(SET5, ck, "tiny", SRGAN_DEG)), "--n_epochs", "1"]) == 0
    common = ["--model", "srgan", "--dataroot", str(SET5), "--checkpoints_dir", str(ck), "--name", "tiny",
              "--eval_metrics", "--degradation", "realesrgan", "--gpu_ids", "-1", "--num_threads", "0",
              "--max_dataset_size", "1"]  # baby.png, Set5's first
    lrs = {}
    for tag, seed in (("a", "5"), ("c", "6")):
        assert test_main([*common, "--seed", seed, "--results_dir", str(tmp_path / tag)]) == 0
        images = tmp_path / tag / "tiny" / "test_latest" / "images"
        assert {p.name for p in images.glob("baby_*")} >= {"baby_LR.png", "baby_bicubic.png", "baby_SR.png",
                                                           "baby_HR.png"}
        lrs[tag] = np.asarray(Image.open(images / "baby_LR.png").convert("RGB"))
    with Image.open(SET5 / "baby.png") as img:
        hr = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32).transpose(2, 0, 1).copy()) / 255
    hr = hr[:, : hr.shape[1] // 4 * 4, : hr.shape[2] // 4 * 4]
    expected = degrade(hr, 4, default_settings(), sample_rng(5, zlib.crc32(b"baby.png")))
    assert np.array_equal(lrs["a"], (expected.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert not np.array_equal(lrs["a"], lrs["c"])
