"""End-to-end tests of train.py and test.py: real runs on tiny networks, the files they write, the reference's
pixel pipeline, and one-line errors with exit code 2 for unusable input.

Real subprocesses check exit codes and stderr; runs that only need the files are made in-process through
`main(argv)` (cheaper: torch is imported once).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections import OrderedDict
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import List, Sequence
from urllib.parse import unquote

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision.transforms.functional as TF
from PIL import Image

from models import networks
from util.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FACADES = SHARED_DATA / "paired" / "facades"
HORSE2ZEBRA = SHARED_DATA / "unpaired" / "horse2zebra_mini"

CPU = ["--gpu_ids", "-1", "--num_threads", "0"]
# One intra-op thread: on 2 shared cores, 2 OpenMP threads spin against each other and run many times slower.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ---- helpers ------------------------------------------------------------------------------------------------


def require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"shared test images {path} are absent (expected at ../shared/data from the project root)")
    return path


def run_script(script: str, args: Sequence[object]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *map(str, args)], cwd=ROOT, env=SUBPROCESS_ENV,
                          capture_output=True, text=True, timeout=300)


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"


def decode(path: Path) -> Image.Image:
    """Open and fully decode an image (raises if the file is not a valid image)."""
    with Image.open(path) as img:
        img.load()
        return img.copy()


def as_array(path: Path) -> np.ndarray:
    return np.asarray(decode(path).convert("RGB"))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: List[str] = []
        self.hrefs: List[str] = []
        self.tags: List[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs["src"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])


def page_links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def assert_links_resolve(page: Path) -> List[Path]:
    """Every <img src> and <a href> of `page` names an existing, decodable file relative to the page."""
    links = page_links(page)
    assert links.srcs, f"{page} shows no images"
    targets = []
    for src in links.srcs + links.hrefs:
        assert not os.path.isabs(unquote(src)) and "://" not in src, f"{src} is not relative to the page"
        target = page.parent / unquote(src)
        assert target.is_file(), f"{page}: {src} does not exist"
        decode(target)
        targets.append(target)
    return targets


def save_noise(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def pth_files(folder: Path) -> List[Path]:
    return sorted(folder.rglob("*.pth")) if folder.exists() else []


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr:\n{describe(proc)}"
    assert "error: " in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


# ---- pix2pix on facades, through real subprocesses ----------------------------------------------------------

P2P_NAME = "facades_tiny"


@pytest.fixture(scope="module")
def pix2pix(tmp_path_factory):
    facades = require(FACADES)
    base = tmp_path_factory.mktemp("pix2pix")
    run = SimpleNamespace(checkpoints=base / "checkpoints", results=base / "results")
    run.exp = run.checkpoints / P2P_NAME
    common = ["--dataroot", facades, "--name", P2P_NAME, "--model", "pix2pix", "--direction", "BtoA",
              "--netG", "unet_128", "--ngf", "8", "--checkpoints_dir", run.checkpoints, *CPU]
    run.train = run_script("train.py", common + [
        "--ndf", "8", "--load_size", "143", "--crop_size", "128", "--n_epochs", "1", "--n_epochs_decay", "1",
        "--print_freq", "1", "--display_freq", "1", "--update_html_freq", "1", "--save_epoch_freq", "1",
        "--display_id", "0", "--seed", "0"])
    assert run.train.returncode == 0, describe(run.train)
    run.test = run_script("test.py", common + ["--load_size", "128", "--crop_size", "128",
                                               "--results_dir", run.results])
    run.page_dir = run.results / P2P_NAME / "test_latest"
    return run


def test_pix2pix_train_exits_0_without_errors(pix2pix):
    assert pix2pix.train.returncode == 0, describe(pix2pix.train)
    assert "Traceback" not in pix2pix.train.stderr
    assert not re.search(r"^(error|\S+: error):", pix2pix.train.stderr, re.M), pix2pix.train.stderr


def test_pix2pix_train_writes_checkpoints(pix2pix):
    exp = pix2pix.exp
    for name in ("latest_net_G.pth", "latest_net_D.pth", "1_net_G.pth", "2_net_G.pth", "2_net_D.pth"):
        assert (exp / name).is_file(), f"missing {name}; have {sorted(p.name for p in exp.iterdir())}"
    latest = torch.load(exp / "latest_net_G.pth", map_location="cpu", weights_only=True)
    last = torch.load(exp / "2_net_G.pth", map_location="cpu", weights_only=True)
    first = torch.load(exp / "1_net_G.pth", map_location="cpu", weights_only=True)
    assert isinstance(latest, dict) and latest and all(isinstance(v, torch.Tensor) for v in latest.values())
    assert latest.keys() == last.keys() == first.keys()
    assert all(torch.equal(latest[k], last[k]) for k in latest), "latest is not the last epoch's weights"
    assert any(not torch.equal(first[k], last[k]) for k in first), "epoch 2 did not change the weights"
    # A conditional D sees input and output stacked: 3 + 3 channels.
    d_state = torch.load(exp / "latest_net_D.pth", map_location="cpu", weights_only=True)
    first_conv = next(v for k, v in d_state.items() if k.endswith("weight") and v.dim() == 4)
    assert first_conv.shape[:2] == (8, 6)


def test_pix2pix_loss_log_has_a_line_per_print(pix2pix):
    log = (pix2pix.exp / "loss_log.txt").read_text(encoding="utf-8")
    pattern = re.compile(r"^\(epoch: (\d+), iters: (\d+), time: [\d.]+, data: [\d.]+\) "
                         r"G_GAN: [-\d.]+ G_L1: [-\d.]+ D_real: [-\d.]+ D_fake: [-\d.]+$")
    matches = [pattern.match(line) for line in log.splitlines() if line.startswith("(epoch")]
    assert all(matches), log
    # 2 training pairs, batch 1, --print_freq 1, 2 epochs: one line per iteration.
    assert [(int(m.group(1)), int(m.group(2))) for m in matches] == [(1, 1), (1, 2), (2, 1), (2, 2)], log
    assert log.startswith("================ Training Loss")


def test_pix2pix_train_saves_options(pix2pix):
    text = (pix2pix.exp / "train_opt.txt").read_text(encoding="utf-8")
    assert re.search(r"netG: unet_128\s+\[default: unet_256\]", text), text
    with open(pix2pix.exp / "train_opt.json", encoding="utf-8") as f:
        saved = json.load(f)
    assert (saved["model"], saved["netG"], saved["direction"], saved["name"]) == (
        "pix2pix", "unet_128", "BtoA", P2P_NAME)
    assert (saved["ngf"], saved["ndf"], saved["crop_size"], saved["load_size"]) == (8, 8, 128, 143)


def test_pix2pix_train_writes_web_page(pix2pix):
    web = pix2pix.exp / "web"
    page = web / "index.html"
    assert page.is_file()
    images = sorted((web / "images").glob("*.png"))
    names = {p.name for p in images}
    for epoch in (1, 2):
        for label in ("real_A", "fake_B", "real_B"):
            assert f"epoch{epoch:03d}_{label}.png" in names, names
    for path in images:
        assert decode(path).size == (128, 128)
    shown = assert_links_resolve(page)
    assert {p.name for p in shown} == names


def test_pix2pix_test_exits_0_and_writes_results(pix2pix):
    proc = pix2pix.test
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stderr and not re.search(r"^(error|\S+: error):", proc.stderr, re.M)
    page = pix2pix.page_dir / "index.html"
    assert page.is_file()
    images = pix2pix.page_dir / "images"
    assert sorted(p.name for p in images.iterdir()) == ["3_fake_B.png", "3_real_A.png", "3_real_B.png"]
    for label in ("real_A", "fake_B", "real_B"):
        img = decode(images / f"3_{label}.png")
        assert img.size == (128, 128) and img.mode == "RGB"
    shown = assert_links_resolve(page)
    assert {p.name for p in shown} == {"3_fake_B.png", "3_real_A.png", "3_real_B.png"}


def test_pix2pix_test_honours_direction_btoa(pix2pix):
    """With BtoA the network input real_A is the RIGHT half of the side-by-side test image."""
    assert pix2pix.test.returncode == 0, describe(pix2pix.test)
    with Image.open(FACADES / "test" / "3.jpg") as ab:
        ab = ab.convert("RGB")
        w, h = ab.size
        right = np.asarray(ab.crop((w // 2, 0, w, h)).resize((128, 128), Image.BICUBIC), dtype=np.int16)
        left = np.asarray(ab.crop((0, 0, w // 2, h)).resize((128, 128), Image.BICUBIC), dtype=np.int16)
    real_a = as_array(pix2pix.page_dir / "images" / "3_real_A.png").astype(np.int16)
    real_b = as_array(pix2pix.page_dir / "images" / "3_real_B.png").astype(np.int16)
    # uint8 -> [-1, 1] -> uint8 truncates, so a value may come back one lower.
    assert np.abs(real_a - right).max() <= 1
    assert np.abs(real_b - left).max() <= 1
    assert np.abs(real_a - left).mean() > 10


# ---- CycleGAN on horse2zebra_mini, in-process ---------------------------------------------------------------

CG_NAME = "h2z_tiny"
CG_NET = ["--netG", "resnet_6blocks", "--ngf", "8"]


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory, train_main):
    h2z = require(HORSE2ZEBRA)
    base = tmp_path_factory.mktemp("cyclegan")
    run = SimpleNamespace(base=base, checkpoints=base / "checkpoints")
    run.exp = run.checkpoints / CG_NAME
    rc = train_main(["--dataroot", str(h2z), "--name", CG_NAME, "--model", "cycle_gan", *CG_NET, "--ndf", "8",
                     "--crop_size", "64", "--load_size", "72", "--n_epochs", "1", "--n_epochs_decay", "0",
                     "--display_id", "0", "--seed", "0", "--checkpoints_dir", str(run.checkpoints), *CPU])
    assert rc == 0
    return run


def cg_test(test_main, cyclegan, results: Path, *args: object) -> Path:
    """Run test.py in-process against the CycleGAN checkpoints; return the results page folder."""
    argv = ["--name", CG_NAME, *CG_NET, "--checkpoints_dir", cyclegan.checkpoints, "--results_dir", results,
            *CPU, *args]
    assert test_main([str(a) for a in argv]) == 0
    return results / CG_NAME / "test_latest"


def test_cyclegan_train_writes_all_four_networks(cyclegan):
    for net in ("G_A", "G_B", "D_A", "D_B"):
        for epoch in ("latest", "1"):
            path = cyclegan.exp / f"{epoch}_net_{net}.pth"
            assert path.is_file(), f"missing {path.name}"
            state = torch.load(path, map_location="cpu", weights_only=True)
            assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    g_a = torch.load(cyclegan.exp / "latest_net_G_A.pth", weights_only=True)
    g_b = torch.load(cyclegan.exp / "latest_net_G_B.pth", weights_only=True)
    assert any(not torch.equal(g_a[k], g_b[k]) for k in g_a), "G_A and G_B are the same network"
    assert (cyclegan.exp / "train_opt.json").is_file() and (cyclegan.exp / "loss_log.txt").is_file()


def test_cyclegan_test_writes_both_directions(cyclegan, test_main, tmp_path):
    page_dir = cg_test(test_main, cyclegan, tmp_path / "results", "--dataroot", HORSE2ZEBRA,
                       "--model", "cycle_gan", "--preprocess", "none")
    labels = ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
    # One row per A image, named after it (testA/5.jpg); B comes from testB.
    assert sorted(p.name for p in (page_dir / "images").iterdir()) == sorted(f"5_{label}.png" for label in labels)
    for label in labels:
        assert decode(page_dir / "images" / f"5_{label}.png").size == (256, 256)
    assert_links_resolve(page_dir / "index.html")
    real_b = as_array(page_dir / "images" / "5_real_B.png").astype(np.int16)
    expected_b = np.asarray(decode(HORSE2ZEBRA / "testB" / "6.jpg").convert("RGB"), dtype=np.int16)
    assert np.abs(real_b - expected_b).max() <= 1


def test_test_model_with_suffix_applies_one_generator_at_full_size(cyclegan, test_main, tmp_path):
    test_a = HORSE2ZEBRA / "testA"
    single = cg_test(test_main, cyclegan, tmp_path / "single", "--dataroot", test_a, "--model", "test",
                     "--model_suffix", "_A", "--no_dropout", "--preprocess", "none")
    assert sorted(p.name for p in (single / "images").iterdir()) == ["5_fake.png", "5_real.png"]
    for label in ("real", "fake"):
        assert decode(single / "images" / f"5_{label}.png").size == (256, 256)
    real = as_array(single / "images" / "5_real.png").astype(np.int16)
    source = np.asarray(decode(test_a / "5.jpg").convert("RGB"), dtype=np.int16)
    assert np.abs(real - source).max() <= 1
    # The generator loaded is the CycleGAN's G_A: same output as the full model's fake_B on the same image.
    both = cg_test(test_main, cyclegan, tmp_path / "both", "--dataroot", HORSE2ZEBRA, "--model", "cycle_gan",
                   "--preprocess", "none")
    assert np.array_equal(as_array(single / "images" / "5_fake.png"), as_array(both / "images" / "5_fake_B.png"))
    assert not np.array_equal(as_array(single / "images" / "5_fake.png"), as_array(both / "images" / "5_fake_A.png"))


def test_test_model_without_no_dropout_cannot_load_a_cyclegan_generator(cyclegan, test_main, tmp_path):
    """CycleGAN's generators have no dropout layers; the test model's default has them: a clear error. (Where
    the run's train_opt.json is beside the generator, --no_dropout comes from it: tests/options/test_saved_run.py; here
    the generator alone, as the reference's downloads are.)"""
    reference = SimpleNamespace(checkpoints=tmp_path / "checkpoints")
    (reference.checkpoints / CG_NAME).mkdir(parents=True)
    shutil.copy(cyclegan.exp / "latest_net_G_A.pth", reference.checkpoints / CG_NAME)
    with pytest.raises(CheckpointError, match="--no_dropout") as exc:
        cg_test(test_main, reference, tmp_path / "r", "--dataroot", HORSE2ZEBRA / "testA", "--model", "test",
                "--model_suffix", "_A", "--preprocess", "none")
    assert "latest_net_G_A.pth" in str(exc.value)


def test_num_test_limits_the_rows(cyclegan, test_main, tmp_path, caplog):
    train_a = HORSE2ZEBRA / "trainA"  # two images: 1.jpg, 2.jpg
    args = ("--dataroot", train_a, "--model", "test", "--model_suffix", "_A", "--no_dropout",
            "--preprocess", "none")
    caplog.set_level(logging.INFO, logger="test")
    one = cg_test(test_main, cyclegan, tmp_path / "one", *args, "--num_test", "1")
    assert "--num_test 1: testing 1 of the 2 images, 1 left out" in caplog.text  # said when it leaves any out
    assert sorted(p.name for p in (one / "images").iterdir()) == ["1_fake.png", "1_real.png"]
    tags = page_links(one / "index.html").tags
    assert tags.count("h3") == 1 and tags.count("table") == 1 and tags.count("img") == 2
    caplog.clear()
    every = cg_test(test_main, cyclegan, tmp_path / "every", *args)
    assert "left out" not in caplog.text
    assert sorted(p.name for p in (every / "images").iterdir()) == [
        "1_fake.png", "1_real.png", "2_fake.png", "2_real.png"]
    assert page_links(every / "index.html").tags.count("h3") == 2


def test_aspect_ratio_changes_the_saved_height(cyclegan, test_main, tmp_path):
    page_dir = cg_test(test_main, cyclegan, tmp_path / "r", "--dataroot", HORSE2ZEBRA / "testA", "--model", "test",
                       "--model_suffix", "_A", "--no_dropout", "--preprocess", "none", "--aspect_ratio", "2.0")
    for label in ("real", "fake"):
        assert decode(page_dir / "images" / f"5_{label}.png").size == (256, 512)


def test_preprocess_none_rounds_odd_sizes_to_multiples_of_4(cyclegan, test_main, tmp_path):
    save_noise(tmp_path / "odd" / "odd.png", 301, 203)
    page_dir = cg_test(test_main, cyclegan, tmp_path / "r", "--dataroot", tmp_path / "odd", "--model", "test",
                       "--model_suffix", "_A", "--no_dropout", "--preprocess", "none")
    for label in ("real", "fake"):
        assert decode(page_dir / "images" / f"odd_{label}.png").size == (300, 204)


# ---- pixel compatibility with the reference's test pipeline -------------------------------------------------


def reference_pipeline(net: nn.Module, path: Path):
    """The reference's test.py for `--model test --preprocess none`, written independently of this toolkit:
    PIL open -> RGB -> __make_power_2(base 4, BICUBIC) -> ToTensor -> Normalize(0.5, 0.5) -> netG (train mode:
    the reference calls eval() only with --eval) -> tensor2im: (x + 1) / 2 * 255 -> astype(uint8)."""
    img = Image.open(path).convert("RGB")
    ow, oh = img.size
    h, w = int(round(oh / 4) * 4), int(round(ow / 4) * 4)
    if (w, h) != (ow, oh):
        img = img.resize((w, h), Image.BICUBIC)
    x = TF.normalize(TF.to_tensor(img), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)).unsqueeze(0)  # (1, 3, H, W)
    net.train()
    with torch.no_grad():
        out = net(x)

    def tensor2im(t: torch.Tensor) -> np.ndarray:
        return ((np.transpose(t[0].cpu().float().numpy(), (1, 2, 0)) + 1) / 2.0 * 255.0).astype(np.uint8)

    return tensor2im(x), tensor2im(out)


def test_test_model_output_is_pixel_identical_to_the_reference(test_main, tmp_path):
    source = require(HORSE2ZEBRA / "testA") / "5.jpg"
    dataroot = tmp_path / "images"
    dataroot.mkdir()
    shutil.copy(source, dataroot / "horse.jpg")  # 256x256: used as is
    with Image.open(source) as img:  # 253x187: the reference rounds it to 252x188 with bicubic
        img.convert("RGB").crop((1, 30, 254, 217)).save(dataroot / "odd.png")

    torch.manual_seed(1234)
    net = networks.define_G(3, 3, 8, "resnet_6blocks", "instance", False, "normal", 0.02)
    state = OrderedDict(net.state_dict())
    legacy = 0
    for name, module in net.named_modules():
        if isinstance(module, nn.InstanceNorm2d):  # what PyTorch 0.3 saved, as in the published checkpoints
            state[f"{name}.running_mean"] = torch.rand(module.num_features)
            state[f"{name}.running_var"] = torch.rand(module.num_features) + 0.5
            legacy += 2
    assert legacy > 0
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "pretrained").mkdir(parents=True)
    torch.save(state, checkpoints / "pretrained" / "latest_net_G.pth")

    rc = test_main(["--dataroot", str(dataroot), "--name", "pretrained", "--model", "test", "--no_dropout",
                    "--preprocess", "none", "--netG", "resnet_6blocks", "--ngf", "8",
                    "--checkpoints_dir", str(checkpoints), "--results_dir", str(tmp_path / "results"), *CPU])
    assert rc == 0
    images = tmp_path / "results" / "pretrained" / "test_latest" / "images"
    for stem, size in (("horse", (256, 256)), ("odd", (252, 188))):
        want_real, want_fake = reference_pipeline(net, dataroot / (stem + (".jpg" if stem == "horse" else ".png")))
        got_real, got_fake = as_array(images / f"{stem}_real.png"), as_array(images / f"{stem}_fake.png")
        assert decode(images / f"{stem}_fake.png").size == size
        assert got_real.shape == want_real.shape and np.array_equal(got_real, want_real), stem
        assert got_fake.shape == want_fake.shape
        diff = np.abs(got_fake.astype(np.int16) - want_fake.astype(np.int16))
        assert np.array_equal(got_fake, want_fake), f"{stem}: {np.count_nonzero(diff)} pixels differ, max {diff.max()}"
        assert want_fake.std() > 0  # the comparison is not between two blank images


# ---- bad input through the CLI: exit 2, one line naming the path, no checkpoints ----------------------------

TINY_TRAIN = ["--ngf", "4", "--ndf", "4", "--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0", *CPU]


def train_subprocess(tmp_path: Path, dataroot: Path, *args: object) -> subprocess.CompletedProcess:
    return run_script("train.py", ["--dataroot", dataroot, "--name", "bad", "--checkpoints_dir",
                                   tmp_path / "checkpoints", *TINY_TRAIN, *args])


def save_pair(path: Path, size: int, seed: int = 0) -> Path:
    """A side-by-side AB image, each half size x size."""
    return save_noise(path, 2 * size, size, seed)


@pytest.mark.parametrize("lr", ["inf", "1e308"])
def test_an_absurd_lr_is_refused_before_anything_is_written(tmp_path, lr):
    """Issue 22, item 6: `--lr inf` used to write train_opt.* and web/, then stop at the first step with exit 1."""
    root = tmp_path / "ok"
    save_pair(root / "train" / "1.png", 32)
    proc = train_subprocess(tmp_path, root, "--model", "pix2pix", "--netG", "resnet_6blocks", "--preprocess",
                            "none", "--lr", lr)
    line = assert_one_line_error(proc, "--lr ")
    assert line.startswith("train.py: error: --lr must be "), line
    assert not (tmp_path / "checkpoints").exists()


def test_empty_dataroot_is_a_one_line_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = train_subprocess(tmp_path, empty, "--model", "pix2pix", "--netG", "resnet_6blocks")
    assert_one_line_error(proc, str(empty))
    assert pth_files(tmp_path / "checkpoints") == []


def test_unreadable_first_image_is_a_one_line_error(tmp_path):
    root = tmp_path / "aligned"
    broken = root / "train" / "0.jpg"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"")
    save_pair(root / "train" / "1.jpg", 32)
    proc = train_subprocess(tmp_path, root, "--model", "pix2pix", "--netG", "resnet_6blocks",
                            "--load_size", "32", "--crop_size", "32")
    assert_one_line_error(proc, str(broken))
    assert pth_files(tmp_path / "checkpoints") == []


def test_empty_trainB_is_a_one_line_error(tmp_path):
    root = tmp_path / "unaligned"
    save_noise(root / "trainA" / "a.png", 32, 32)
    (root / "trainB").mkdir()
    proc = train_subprocess(tmp_path, root, "--model", "cycle_gan", "--netG", "resnet_6blocks",
                            "--load_size", "32", "--crop_size", "32")
    assert_one_line_error(proc, str(root / "trainB"))
    assert pth_files(tmp_path / "checkpoints") == []


def test_crop_larger_than_the_images_is_a_one_line_error(tmp_path):
    root = tmp_path / "small"
    image = save_pair(root / "train" / "1.png", 32)
    proc = train_subprocess(tmp_path, root, "--model", "pix2pix", "--netG", "resnet_6blocks",
                            "--preprocess", "crop", "--crop_size", "64")
    assert_one_line_error(proc, str(image), "--crop_size")
    assert pth_files(tmp_path / "checkpoints") == []


def test_unet_256_with_crop_128_is_an_options_error(tmp_path):
    root = tmp_path / "ok"
    save_pair(root / "train" / "1.png", 128)
    proc = train_subprocess(tmp_path, root, "--model", "pix2pix", "--netG", "unet_256",
                            "--preprocess", "crop", "--crop_size", "128")
    line = assert_one_line_error(proc, "--crop_size 128", "unet_256")
    assert line.startswith("train.py: error: ")
    assert not (tmp_path / "checkpoints").exists()


def test_test_without_checkpoint_names_the_missing_file(tmp_path):
    save_noise(tmp_path / "images" / "x.png", 32, 32)
    checkpoints, results = tmp_path / "checkpoints", tmp_path / "results"
    proc = run_script("test.py", ["--dataroot", tmp_path / "images", "--name", "never_trained", "--model", "test",
                                  "--netG", "resnet_6blocks", "--ngf", "4", "--checkpoints_dir", checkpoints,
                                  "--results_dir", results, "--preprocess", "none", *CPU])
    assert_one_line_error(proc, str(checkpoints / "never_trained" / "latest_net_G.pth"))
    assert proc.stderr.startswith("error: ")
    assert not (results / "never_trained").exists()


# ---- --display_id 0 never touches the network ---------------------------------------------------------------


def test_display_id_0_training_opens_no_socket(train_main, tmp_path, forbid_network):
    save_pair(tmp_path / "data" / "train" / "1.png", 32, seed=1)
    save_pair(tmp_path / "data" / "train" / "2.png", 32, seed=2)
    checkpoints = tmp_path / "checkpoints"
    rc = train_main(["--dataroot", str(tmp_path / "data"), "--name", "offline", "--model", "pix2pix",
                     "--netG", "resnet_6blocks", "--load_size", "32", "--crop_size", "32",
                     "--display_freq", "1", "--print_freq", "1", "--update_html_freq", "1",
                     "--checkpoints_dir", str(checkpoints), *TINY_TRAIN])
    assert rc == 0
    assert forbid_network == []
    assert (checkpoints / "offline" / "latest_net_G.pth").is_file()
    assert (checkpoints / "offline" / "web" / "index.html").is_file()
