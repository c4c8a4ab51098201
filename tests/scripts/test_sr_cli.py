"""End-to-end tests of super-resolution through the command line: train.py / test.py --model srgan and
scripts/eval_sr.py, on tiny networks and the real Set5 / Set14 images (../shared/data/sr_eval).

What only a real run shows: the two training stages (pixel MSE, then perceptual + adversarial), per-epoch
validation, metrics that agree with an independent implementation of the literature's protocol (PIL +
scikit-image, written out here), outputs that keep the input's kind (alpha, greyscale, 16 bit), tiling that
does not change the result, one-line errors with exit code 2, and the evaluation table of the README.

Runs that only need files are made in-process through `main(argv)`; exit codes and stderr are checked on
real subprocesses, started two at a time.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Tuple
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from helpers import ROOT, load_script, require_or_skip
from PIL import Image

from util.images import SRImage, read_image, write_image
from util.errors import DataError, OptionError

SHARED_DATA = ROOT.parent / "shared" / "data"
SET5 = SHARED_DATA / "sr_eval" / "Set5"
SET14 = SHARED_DATA / "sr_eval" / "Set14"

SCALE = 4
NAME = "sr_cli_tiny"
CPU = ["--gpu_ids", "-1", "--num_threads", "0"]
TINY_G = ["--ngf", "8", "--n_blocks", "1"]
TINY_TRAIN = [*TINY_G, "--ndf", "8", "--netD_head", "conv", "--crop_size", "32", "--batch_size", "4",
              "--display_id", "0", *CPU]
# One intra-op thread: on 2 shared cores, 2 OpenMP threads spin against each other and run many times slower.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# phi_2,2 needs the convolutions features.0, 2, 5, 7 of torchvision's vgg19: (out, in) channels.
VGG22_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128)}


# ---- helpers ------------------------------------------------------------------------------------------------


def shared(folder: Path) -> Path:
    require_or_skip(folder.is_dir(), f"shared SR test images {folder} are absent (expected at ../shared/data from "
                                     f"the project root)")
    return folder


def decode(path: Path) -> Image.Image:
    """Open and fully decode an image (raises if the file is not a valid image)."""
    with Image.open(path) as img:
        img.load()
        return img.copy()


def png_ihdr(path: Path) -> Tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk, which must come first."""
    data = path.read_bytes()[:29]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), data[24], data[25])


class _Page(HTMLParser):
    """The <img src>, <a href> and table cells of a results page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: List[str] = []
        self.rows: List[List[str]] = []
        self._cell: List[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.links.append(attrs["src"])
        elif tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._in_cell, self._cell = True, []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._in_cell:
            self.rows[-1].append("".join(self._cell).strip())
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self._cell.append(data)


def parse_page(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def independent_bicubic(path: Path, scale: int = SCALE) -> Tuple[float, float]:
    """Bicubic PSNR / SSIM by the published protocol, without the toolkit: PIL modcrop, BICUBIC down and up on
    the uint8 image, MATLAB rgb2ycbcr's Y in numpy (grey: the grey value), `scale` border, scikit-image."""
    try:
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    except ImportError:
        require_or_skip(False, "scikit-image is not installed: it is the independent reference for the metrics")
    img = decode(path)
    assert img.mode in ("RGB", "L"), f"{path}: unexpected mode {img.mode}"
    w, h = img.size
    hr = img.crop((0, 0, w - w % scale, h - h % scale))
    lr = hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC)
    up = lr.resize(hr.size, Image.BICUBIC)

    def luma(im: Image.Image) -> np.ndarray:
        a = np.asarray(im, dtype=np.float64)
        if a.ndim == 2:
            return a
        return 16.0 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0

    y_hr = luma(hr)[scale:-scale, scale:-scale]
    y_up = luma(up)[scale:-scale, scale:-scale]
    psnr = peak_signal_noise_ratio(y_hr, y_up, data_range=255)
    ssim = structural_similarity(y_hr, y_up, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255)
    return float(psnr), float(ssim)


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def vgg22_file(tmp_path_factory) -> Path:
    """A random stand-in for the VGG19 ImageNet weights holding only what phi_2,2 needs (the real file is
    548 MB and needs the internet): He-initialised, so the features and the loss are of a usual size."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for index, (out_c, in_c) in VGG22_CONVS.items():
        state[f"features.{index}.weight"] = torch.randn(out_c, in_c, 3, 3, generator=generator) * math.sqrt(
            2.0 / (in_c * 9))
        state[f"features.{index}.bias"] = torch.randn(out_c, generator=generator) * 0.01
    path = tmp_path_factory.mktemp("vgg") / "vgg19_phi22.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def eval_sr():
    return load_script("scripts/eval_sr.py")


# ---- 1. train, then test with metrics -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_main, vgg22_file) -> SimpleNamespace:
    """Epoch 1 pixel MSE only (SRResNet), epoch 2 adversarial with the VGG22 perceptual loss; validated on Set5."""
    set5 = shared(SET5)
    base = tmp_path_factory.mktemp("srgan")
    run = SimpleNamespace(checkpoints=base / "checkpoints")
    run.exp = run.checkpoints / NAME
    start = time.monotonic()
    rc = train_main([str(a) for a in [
        "--model", "srgan", "--dataroot", set5, "--name", NAME, "--checkpoints_dir", run.checkpoints,
        "--pretrain_epochs", "1", "--n_epochs", "2", "--n_epochs_decay", "0", "--val_dataroot", set5,
        "--vgg_layer", "22", "--vgg_weights", vgg22_file, "--lambda_perceptual", "1", "--max_dataset_size", "4",
        "--print_freq", "1", "--seed", "0", *TINY_TRAIN]])
    assert rc == 0
    run.seconds = time.monotonic() - start
    return run


def read_metrics_log(exp: Path) -> List[Tuple[int, float, float]]:
    """(epoch, psnr, ssim) per line of metrics_log.txt."""
    pattern = re.compile(r"^\(epoch: (\d+),[^)]*\).*\bpsnr: ([-\d.]+).*\bssim: ([-\d.]+)")
    rows = []
    for line in (exp / "metrics_log.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            match = pattern.match(line)
            assert match, f"unexpected metrics_log.txt line {line!r}"
            rows.append((int(match.group(1)), float(match.group(2)), float(match.group(3))))
    return rows


def test_srgan_train_writes_checkpoints_options_and_validation(trained):
    exp = trained.exp
    for name in ("latest_net_G.pth", "latest_net_D.pth"):
        assert (exp / name).is_file(), f"missing {name}; have {sorted(p.name for p in exp.iterdir())}"
        state = torch.load(exp / name, map_location="cpu", weights_only=True)
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    saved = json.loads((exp / "train_opt.json").read_text(encoding="utf-8"))
    assert (saved["model"], saved["scale"], saved["netG"], saved["ngf"], saved["n_blocks"]) == (
        "srgan", 4, "srresnet", 8, 1)
    rows = read_metrics_log(exp)
    assert [r[0] for r in rows] == [1, 2], rows
    for _, psnr, ssim in rows:
        assert 0 < psnr < 100 and 0 < ssim <= 1, rows


def test_srgan_epoch_2_is_adversarial_with_the_perceptual_loss(trained):
    """Epoch 1 trains the generator alone (no D, no VGG); epoch 2 really runs the VGG and the discriminator."""
    losses: Dict[int, List[Dict[str, float]]] = {1: [], 2: []}
    for line in (trained.exp / "loss_log.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\(epoch: (\d+),[^)]*\) (.*)$", line)
        if match:
            values = dict(re.findall(r"(\w+): ([-\d.]+)", match.group(2)))
            losses[int(match.group(1))].append({k: float(v) for k, v in values.items()})
    assert losses[1] and losses[2], losses
    for step in losses[1]:
        assert step["G_pixel"] > 0 and step["G_perceptual"] == step["G_GAN"] == step["D_real"] == 0, losses
    for step in losses[2]:
        assert step["G_perceptual"] > 0 and step["G_GAN"] > 0 and step["D_real"] > 0, losses


@pytest.fixture(scope="module")
def set14_results(trained, test_main, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("set14_results")
    rc = test_main([str(a) for a in [
        "--model", "srgan", "--dataroot", shared(SET14), "--eval_metrics", "--num_test", "3", "--name", NAME,
        "--checkpoints_dir", trained.checkpoints, "--results_dir", results, *TINY_G, *CPU]])
    assert rc == 0
    return results / NAME / "test_latest"


def test_srgan_test_metrics_json_has_three_images_and_their_mean(set14_results):
    report = json.loads((set14_results / "metrics.json").read_text(encoding="utf-8"))
    images = report["images"]
    assert report["count"] == 3 and report["scale"] == 4
    assert [r["image"] for r in images] == ["baboon.png", "barbara.png", "bridge.png"]  # sorted, first three
    for key in ("SR_psnr", "SR_ssim", "bicubic_psnr", "bicubic_ssim"):
        assert report["mean"][key] == pytest.approx(sum(r[key] for r in images) / 3, abs=1e-12), key
        assert all(math.isfinite(r[key]) for r in images), images


def test_srgan_test_sr_is_scale_times_the_lr(set14_results):
    folder = set14_results / "images"
    for stem in ("baboon", "barbara", "bridge"):
        lr, sr, hr = (decode(folder / f"{stem}_{label}.png") for label in ("LR", "SR", "HR"))
        assert sr.size == (lr.width * SCALE, lr.height * SCALE) == hr.size, (stem, lr.size, sr.size, hr.size)
        with Image.open(shared(SET14) / f"{stem}.png") as source:
            w, h = source.size
            assert hr.size == (w - w % SCALE, h - h % SCALE)  # the modcropped ground truth
            assert sr.mode == ("L" if source.mode == "L" else "RGB"), (stem, sr.mode)  # bridge stays grey


def test_srgan_test_bicubic_metrics_match_an_independent_computation(set14_results):
    report = json.loads((set14_results / "metrics.json").read_text(encoding="utf-8"))
    for row in report["images"]:
        psnr, ssim = independent_bicubic(shared(SET14) / row["image"])
        assert row["bicubic_psnr"] == pytest.approx(psnr, abs=1e-4), row["image"]
        assert row["bicubic_ssim"] == pytest.approx(ssim, abs=1e-4), row["image"]


def test_srgan_test_page_has_the_metrics_table_and_working_links(set14_results):
    page = parse_page(set14_results / "index.html")
    header = next(row for row in page.rows if row and row[0] == "image")
    assert header == ["image", "SR_psnr", "SR_ssim", "bicubic_psnr", "bicubic_ssim"], header
    body = {row[0]: row for row in page.rows if row and row[0] != "image" and len(row) == len(header)}
    assert set(body) >= {"baboon.png", "barbara.png", "bridge.png", "mean"}, page.rows
    report = json.loads((set14_results / "metrics.json").read_text(encoding="utf-8"))
    assert float(body["mean"][3]) == pytest.approx(report["mean"]["bicubic_psnr"], abs=0.006)
    assert page.links, "the page shows no images"
    for link in page.links:
        assert not os.path.isabs(unquote(link)) and "://" not in link, link
        target = set14_results / unquote(link)
        assert target.is_file(), f"index.html links to {link}, which does not exist"
        decode(target)
    assert {Path(unquote(link)).name for link in page.links} >= {
        f"{stem}_{label}.png" for stem in ("baboon", "barbara", "bridge") for label in ("LR", "bicubic", "SR", "HR")}


# ---- 2. the output keeps the input's kind -------------------------------------------------------------------


def sr_test(test_main, trained, dataroot: Path, results: Path, *args: object, name: str = NAME) -> Path:
    """test.py --model srgan in-process with a tiny checkpoint; returns the folder of result images."""
    rc = test_main([str(a) for a in ["--model", "srgan", "--dataroot", dataroot, "--name", name,
                                     "--checkpoints_dir", trained.checkpoints, "--results_dir", results,
                                     *TINY_G, *CPU, *args]])
    assert rc == 0
    return results / name / "test_latest" / "images"


def test_sr_output_keeps_alpha_greyscale_and_16_bit(trained, test_main, tmp_path):
    rng = np.random.default_rng(0)
    w, h = 20, 16
    folder = tmp_path / "kinds"
    folder.mkdir()
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[..., 3] = np.linspace(0, 255, w, dtype=np.uint8)[None, :] // 2 + rng.integers(0, 128, (h, w),
                                                                                         dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L").save(folder / "grey.png")
    grey16 = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    assert grey16.mode == "I;16"
    grey16.save(folder / "grey16.png")
    rgb16 = torch.from_numpy(rng.integers(0, 65536, (3, h, w)).astype(np.float32) / 65535)
    write_image(str(folder / "rgb16.png"), SRImage(rgb16, None, 16))
    assert png_ihdr(folder / "rgb16.png") == (w, h, 16, 2)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").save(folder / "photo.jpg", quality=95)

    images = sr_test(test_main, trained, folder, tmp_path / "results")
    big = (w * SCALE, h * SCALE)

    out = decode(images / "rgba_SR.png")
    assert (out.mode, out.size) == ("RGBA", big)
    expected_alpha = Image.fromarray(rgba[..., 3], "L").resize(big, Image.BICUBIC)
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(expected_alpha)), "alpha is not the bicubic 4x"

    out = decode(images / "grey_SR.png")
    assert (out.mode, out.size) == ("L", big)

    out = decode(images / "grey16_SR.png")
    assert out.mode.startswith("I") and out.size == big, out.mode
    assert png_ihdr(images / "grey16_SR.png") == (*big, 16, 0)  # 16-bit greyscale
    values = read_image(str(images / "grey16_SR.png"))
    assert (values.bit_depth, values.channels) == (16, 1)
    samples = torch.round(values.pixels * 65535).to(torch.int64)
    assert bool((samples % 257 != 0).any()), "the 16-bit output only holds 8-bit values"

    values = read_image(str(images / "rgb16_SR.png"))
    assert (values.bit_depth, values.channels, values.alpha, values.size) == (16, 3, None, big)
    assert png_ihdr(images / "rgb16_SR.png") == (*big, 16, 2)
    samples = torch.round(values.pixels * 65535).to(torch.int64)
    assert bool((samples % 257 != 0).any()), "the 16-bit output only holds 8-bit values"

    out = decode(images / "photo_SR.png")
    assert (out.mode, out.size) == ("RGB", big)


# ---- 3. tiling through the CLI ------------------------------------------------------------------------------


VARIED = "sr_cli_varied"


@pytest.fixture(scope="module")
def varied(trained) -> SimpleNamespace:
    """The tiny checkpoint with He-initialised convolutions and unit BatchNorm statistics, saved as experiment
    VARIED beside it. Two short epochs leave the generator nearly constant (grey ~128 everywhere), which no
    tiling mistake could change; this one maps the image to a strongly varying output, so the comparison sees."""
    generator = torch.Generator().manual_seed(2)
    state = torch.load(trained.exp / "latest_net_G.pth", map_location="cpu", weights_only=True)
    for key, value in state.items():
        if key.endswith("running_mean") or (key.endswith(".bias") and key.replace("bias", "running_mean") in state):
            state[key] = torch.zeros_like(value)
        elif key.endswith("running_var") or (key.endswith(".weight") and key.replace("weight", "running_var")
                                             in state):
            state[key] = torch.ones_like(value)
        elif value.dim() == 4:  # convolution (out, in, k, k)
            fan_in = value.shape[1] * value.shape[2] * value.shape[3]
            state[key] = torch.randn(value.shape, generator=generator) * math.sqrt(2.0 / fan_in)
        elif key.endswith(".bias"):
            state[key] = torch.randn(value.shape, generator=generator) * 0.1
    (trained.checkpoints / VARIED).mkdir(exist_ok=True)
    torch.save(state, trained.checkpoints / VARIED / "latest_net_G.pth")
    return SimpleNamespace(checkpoints=trained.checkpoints, name=VARIED)


def test_tiled_sr_equals_untiled(varied, test_main, tmp_path):
    """The tiny generator's receptive radius (9x9 head 4, block 2, 3x3 1, upsampling 1 + 0.5, 9x9 tail 1 LR
    pixels: < 12) is covered by --tile_pad 12, so tiles give the whole-image result; without context they do not."""
    folder = tmp_path / "lr"
    folder.mkdir()
    with Image.open(shared(SET5) / "butterfly.png") as hr:
        hr.convert("RGB").crop((40, 40, 216, 184)).resize((44, 36), Image.BICUBIC).save(folder / "lr.png")

    def run(label: str, *args: object) -> np.ndarray:
        images = sr_test(test_main, varied, folder, tmp_path / label, *args, name=varied.name)
        out = decode(images / "lr_SR.png")
        assert out.size == (44 * SCALE, 36 * SCALE)
        return np.asarray(out, dtype=np.int16)

    whole = run("whole", "--tile", "0")
    tiled = run("tiled", "--tile", "8", "--tile_pad", "12")
    no_context = run("no_context", "--tile", "8", "--tile_pad", "0")
    assert whole.std() > 10, "the output is nearly constant: the comparison would be blind"
    assert np.abs(tiled - whole).max() <= 1
    assert np.abs(no_context - whole).max() > 1, "tiles without context should differ: the check is blind"


# ---- 4. one-line errors, exit code 2 ------------------------------------------------------------------------

PROXY = "http://127.0.0.1:9"  # a closed loopback port: a download attempt is refused at once, nothing leaves


def error_cases(tmp: Path, set5: Path) -> Dict[str, Tuple[List[str], Dict[str, str], Tuple[str, ...]]]:
    """case -> (command, environment, what the error line must name)."""
    train = [sys.executable, "train.py", "--dataroot", str(set5), "--name", "errors", "--checkpoints_dir",
             str(tmp / "checkpoints"), "--display_id", "0", *CPU]
    offline = {k: v for k, v in SUBPROCESS_ENV.items() if "proxy" not in k.lower()}
    offline.update({var: PROXY for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")})
    offline["TORCH_HOME"] = str(tmp / "torch_home")
    cache = tmp / "torch_home" / "hub" / "checkpoints"
    env = SUBPROCESS_ENV
    return {
        "srgan_netG_resnet": (train + ["--model", "srgan", "--netG", "resnet_9blocks"], env,
                              ("--netG resnet_9blocks", "--model srgan", "upscales")),
        "pix2pix_netG_srresnet": (train + ["--model", "pix2pix", "--netG", "srresnet"], env,
                                  ("--netG srresnet", "--model pix2pix", "keeps the size")),
        "crop_not_multiple_of_scale": (train + ["--model", "srgan", "--crop_size", "90"], env,
                                       ("--crop_size 90", "--scale 4")),
        "dense_head_crop": (train + ["--model", "srgan", "--netD_head", "dense", "--crop_size", "40"], env,
                            ("--crop_size 40", "--netD_head conv")),
        "resize_preprocess": (train + ["--model", "srgan", "--preprocess", "resize_and_crop"], env,
                              ("--preprocess resize_and_crop",)),
        "vgg_weights_missing": (train + ["--model", "srgan", "--vgg_weights", "/nonexistent.pth"], env,
                                ("--vgg_weights", "/nonexistent.pth")),
        "vgg_offline": (train + ["--model", "srgan", *TINY_G, "--ndf", "8"], offline,
                        ("--vgg_weights", "--lambda_perceptual 0", str(cache), "Connection refused")),
        "eval_sr_missing_set": ([sys.executable, "scripts/eval_sr.py", "--sets", str(tmp / "no_such_set")], env,
                                (str(tmp / "no_such_set"), "does not exist")),
    }


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory) -> Dict[str, Tuple[subprocess.CompletedProcess, float, Tuple[str, ...], Path]]:
    """Every error case as a real subprocess, two at a time (most of each is importing torch)."""
    tmp = tmp_path_factory.mktemp("errors")
    cases = error_cases(tmp, shared(SET5))

    def run(item):
        name, (command, env, needles) = item
        start = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        return name, (proc, time.monotonic() - start, needles, tmp)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, cases.items()))


@pytest.mark.parametrize("case", ["srgan_netG_resnet", "pix2pix_netG_srresnet", "crop_not_multiple_of_scale",
                                  "dense_head_crop", "resize_preprocess", "vgg_weights_missing", "vgg_offline",
                                  "eval_sr_missing_set"])
def test_one_line_error_with_exit_code_2(error_runs, case):
    proc, _, needles, _ = error_runs[case]
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in proc.stderr, describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr:\n{describe(proc)}"
    assert "error: " in lines[-1], lines[-1]
    for needle in needles:
        assert needle in lines[-1], f"{needle!r} not in {lines[-1]!r}"


def test_vgg_offline_fails_fast_and_leaves_no_file(error_runs):
    proc, seconds, _, tmp = error_runs["vgg_offline"]
    assert proc.returncode == 2, describe(proc)
    assert seconds < 60, f"the offline VGG error took {seconds:.0f} s: the download should be refused at once"
    cache = tmp / "torch_home" / "hub" / "checkpoints"
    leftovers = sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []
    assert leftovers == [], f"a failed download left files in the cache: {leftovers}"


# ---- 5. aligned LR / HR folders -----------------------------------------------------------------------------


def test_aligned_lr_hr_folders_train_and_a_wrong_hr_size_is_named(train_main, tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "pairs"
    (root / "trainA").mkdir(parents=True)
    (root / "trainB").mkdir()
    for i in range(3):
        lr = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        lr.save(root / "trainA" / f"{i}.png")
        lr.resize((32 * SCALE, 32 * SCALE), Image.NEAREST).save(root / "trainB" / f"{i}.png")
    argv = ["--model", "srgan", "--dataroot", str(root), "--dataset_mode", "aligned", "--lambda_perceptual", "0",
            "--n_epochs", "1", "--n_epochs_decay", "0", "--seed", "0", *TINY_TRAIN]
    checkpoints = tmp_path / "checkpoints"
    assert train_main(argv + ["--name", "aligned", "--checkpoints_dir", str(checkpoints)]) == 0
    assert (checkpoints / "aligned" / "latest_net_G.pth").is_file()

    bad_hr = root / "trainB" / "1.png"
    decode(bad_hr).resize((120, 128), Image.NEAREST).save(bad_hr)
    with pytest.raises(DataError) as exc:
        train_main(argv + ["--name", "aligned_bad", "--checkpoints_dir", str(checkpoints)])
    assert exc.value.exit_code == 2
    message = str(exc.value)
    assert str(bad_hr) in message and str(root / "trainA" / "1.png") in message, message
    assert "120x128" in message and "128x128" in message, message


# ---- scripts/eval_sr.py -------------------------------------------------------------------------------------


def table_rows(text: str) -> Dict[str, List[str]]:
    """label -> cells of a markdown table's body rows."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_eval_sr_bicubic_set5_matches_the_published_figure(eval_sr, capsys, tmp_path):
    assert eval_sr.main(["--sets", str(shared(SET5)), "--json", str(tmp_path / "e.json"),
                         "--markdown", str(tmp_path / "e.md")]) == 0
    printed = capsys.readouterr().out
    rows = table_rows(printed)
    assert list(rows) == ["x4", "bicubic"], printed
    assert rows["x4"] == ["Set5 PSNR / SSIM"]
    psnr, ssim = (float(v) for v in rows["bicubic"][0].split("/"))
    assert psnr == pytest.approx(28.42, abs=0.02) and ssim == pytest.approx(0.810, abs=0.002), printed
    assert (tmp_path / "e.md").read_text(encoding="utf-8") in printed
    report = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))
    set5 = report["results"]["bicubic"]["Set5"]
    assert set5["count"] == 5 and report["scale"] == 4
    assert set5["psnr"] == pytest.approx(28.42, abs=0.02) and set5["ssim"] == pytest.approx(0.810, abs=0.002)
    for row in set5["images"][:2]:  # the same protocol as the independent computation
        assert (row["psnr"], row["ssim"]) == pytest.approx(independent_bicubic(SET5 / row["image"]), abs=1e-4)


def test_eval_sr_with_the_tiny_checkpoint_has_both_rows(eval_sr, trained, capsys, tmp_path):
    args = ["--sets", str(shared(SET5)), "--checkpoints_dir", str(trained.checkpoints), "--gpu_ids", "-1"]
    assert eval_sr.main(args + ["--json", str(tmp_path / "bicubic.json")]) == 0
    assert eval_sr.main(args + ["--name", NAME, "--label", "tiny SRGAN", "--json", str(tmp_path / "model.json")]) == 0
    printed = capsys.readouterr().out
    rows = table_rows(printed.split("| x4 |")[-1])
    assert list(rows) == ["bicubic", "tiny SRGAN"], printed
    bicubic = json.loads((tmp_path / "bicubic.json").read_text(encoding="utf-8"))["results"]["bicubic"]["Set5"]
    report = json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))
    # The network options came from train_opt.json: no --ngf / --n_blocks given here.
    assert report["model"]["options"] == {"netG": "srresnet", "ngf": 8, "n_blocks": 1, "norm": "batch", "scale": 4}
    # test.py's bicubic path and the script's direct one agree exactly.
    assert report["results"]["bicubic"]["Set5"]["psnr"] == pytest.approx(bicubic["psnr"], abs=1e-9)
    assert report["results"]["bicubic"]["Set5"]["ssim"] == pytest.approx(bicubic["ssim"], abs=1e-9)
    # The model's row is the validation of the last epoch: same generator, same images, same protocol.
    model = report["results"]["tiny SRGAN"]["Set5"]
    _, val_psnr, val_ssim = read_metrics_log(trained.exp)[-1]
    assert model["count"] == 5
    assert model["psnr"] == pytest.approx(val_psnr, abs=1e-3) and model["ssim"] == pytest.approx(val_ssim, abs=1e-3)
    assert f"{model['psnr']:.2f} / {model['ssim']:.4f}" == rows["tiny SRGAN"][0]
    assert not (ROOT / "results" / NAME).exists(), "eval_sr.py wrote its results into the repository"
    assert "LR by bicubic" in report["protocol"] and "LR by bicubic" in printed


def test_eval_sr_on_degraded_inputs_names_the_degradation(eval_sr, trained, capsys, tmp_path):
    """Flags after -- reach test.py: with --degradation realesrgan both rows score the same seeded degraded LRs,
    which bicubic upscales worse than the clean bicubic LRs, and the caption and JSON say how the LR was made."""
    args = ["--sets", str(shared(SET5)), "--checkpoints_dir", str(trained.checkpoints), "--gpu_ids", "-1"]
    assert eval_sr.main(args + ["--json", str(tmp_path / "clean.json")]) == 0
    assert eval_sr.main(args + ["--name", NAME, "--json", str(tmp_path / "deg.json"), "--",
                                "--degradation", "realesrgan", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    clean = json.loads((tmp_path / "clean.json").read_text(encoding="utf-8"))["results"]["bicubic"]["Set5"]
    report = json.loads((tmp_path / "deg.json").read_text(encoding="utf-8"))
    assert report["protocol"].endswith("LR by one seeded draw of the realesrgan pipeline (seed 2)")
    assert "realesrgan pipeline (seed 2)" in printed
    assert report["results"]["bicubic"]["Set5"]["psnr"] < clean["psnr"] - 0.5


def test_eval_sr_rejects_bad_options(eval_sr, tmp_path):
    with pytest.raises(OptionError, match="--label"):
        eval_sr.main(["--label", "x", "--sets", str(tmp_path)])
    with pytest.raises(OptionError, match="only runs with --name"):
        eval_sr.main(["--sets", str(tmp_path), "--", "--tile", "64"])
    with pytest.raises(OptionError, match="--scale"):
        eval_sr.main(["--scale", "5"])
    with pytest.raises(DataError, match="does not exist"):
        eval_sr.main(["--sets", str(tmp_path / "missing")])


def test_side_by_side_shows_every_method_with_its_scores(trained, tmp_path):
    """scripts/sr_side_by_side.py: LR, bicubic, the model and HR panels of one region, each a zoomed crop."""
    script = load_script("scripts/sr_side_by_side.py")
    image = shared(SET5) / "butterfly.png"
    out = tmp_path / "side.png"
    rc = script.main(["--image", str(image), "--box", "40,60,32,24", "--zoom", "2", "--checkpoints_dir",
                      str(trained.checkpoints), "--model", f"{NAME}=tiny", "--out", str(out)])
    assert rc == 0
    sheet = Image.open(out)
    panel_w, gap = 32 * 2, 4
    assert sheet.size == (4 * panel_w + 3 * gap, 24 * 2 + script.CAPTION_HEIGHT)
    hr = np.asarray(Image.open(image).convert("RGB"))[60:84, 40:72]
    hr_panel = np.asarray(sheet.convert("RGB"))[:48, 3 * (panel_w + gap):3 * (panel_w + gap) + panel_w]
    assert np.array_equal(hr_panel, hr.repeat(2, axis=0).repeat(2, axis=1))  # the HR panel is the region itself
    with pytest.raises(SystemExit):
        script.main(["--image", str(image), "--box", "500,500,32,32", "--out", str(out)])


def test_side_by_side_degrades_the_lr_as_test_py_does(trained, tmp_path):
    """--degradation realesrgan --seed N: the LR panel is the pipeline's draw for (N, file name), computed here
    from the pipeline itself X."""
    import zlib

    from data.degradations import default_settings, degrade, sample_rng

    script = load_script("scripts/sr_side_by_side.py")
    image = shared(SET5) / "butterfly.png"
    out = tmp_path / "side.png"
    assert script.main(["--image", str(image), "--box", "40,60,32,24", "--zoom", "2", "--checkpoints_dir",
                        str(trained.checkpoints), "--model", f"{NAME}=tiny", "--out", str(out),
                        "--degradation", "realesrgan", "--seed", "3"]) == 0
    with Image.open(image) as img:
        hr = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32).transpose(2, 0, 1).copy()) / 255
    lr = degrade(hr, 4, default_settings(), sample_rng(3, zlib.crc32(b"butterfly.png")))  # (3, 64, 64)
    lr8 = (lr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    region = lr8.repeat(4, axis=0).repeat(4, axis=1)[60:84, 40:72]
    lr_panel = np.asarray(Image.open(out).convert("RGB"))[:48, :64]
    assert np.array_equal(lr_panel, region.repeat(2, axis=0).repeat(2, axis=1))
    bicubic_lr = np.asarray(Image.open(image).convert("RGB").resize((64, 64), Image.Resampling.BICUBIC))
    assert not np.array_equal(lr8, bicubic_lr)
