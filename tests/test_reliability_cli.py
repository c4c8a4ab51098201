"""Reliability of test.py and of the command lines at their edges (issue 13, items 3, 5, 6 and 7): result names
that never collide, 16-bit inputs that keep 16-bit precision under the default bf16 inference, a float TIFF
through test.py, and one-line errors with the right exit code for bad folders, suffixes, files and checkpoints.

Every run is in-process through `run_cli(main, argv)` on tiny networks saved in the test's tmp folder (random
weights: the properties checked do not depend on them); nothing outside tmp_path is written.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import numpy as np
import pytest
import torch
from PIL import Image

from models import networks
from util.cli import run_cli
from util.errors import DataError
from util.images import SRImage, read_image, write_image
from util.reports.names import ResultNames

from helpers import folder_held

CPU = ["--gpu_ids", "-1", "--num_threads", "0"]
SR_G = ["--model", "srgan", "--netG", "srresnet", "--ngf", "8", "--n_blocks", "1", "--norm", "batch", "--scale", "4"]
TEST_G = ["--model", "test", "--netG", "resnet_6blocks", "--ngf", "4", "--norm", "instance", "--no_dropout"]


@pytest.fixture
def cli(monkeypatch, test_main, train_main, one_torch_thread) -> Callable[..., Tuple[int, List[str], str]]:
    """run(script, argv) -> (exit code, stderr lines, stdout), with run_cli's logging set-up put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    mains = {"test": test_main, "train": train_main}

    def run(script: str, argv: Sequence[str], capsys) -> Tuple[int, List[str], str]:
        capsys.readouterr()
        code = run_cli(mains[script], list(argv))
        out, err = capsys.readouterr()
        return code, [line for line in err.splitlines() if line.strip()], out

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)


def save_generator(checkpoints: Path, name: str, netG: str, ngf: int, norm: str, **kwargs) -> Path:
    """A randomly initialised generator saved as run `name`'s latest_net_G.pth (strongly varying outputs)."""
    torch.manual_seed(0)
    net = networks.define_G(3, 3, ngf, netG, norm, False, "kaiming", 1.0, (), **kwargs)
    (checkpoints / name).mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), checkpoints / name / "latest_net_G.pth")
    return checkpoints / name


@pytest.fixture
def sr_run(tmp_path: Path) -> Path:
    return save_generator(tmp_path / "checkpoints", "sr", "srresnet", 8, "batch", n_blocks=1, scale=4).parent


def sr_args(checkpoints: Path, dataroot: Path, results: Path, *extra: str) -> List[str]:
    return ["--dataroot", str(dataroot), "--name", "sr", "--checkpoints_dir", str(checkpoints), "--results_dir",
            str(results), *SR_G, *CPU, *extra]


def noise_image(path: Path, seed: int, size: Tuple[int, int] = (12, 10)) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


# ---- item 3: one name per input ------------------------------------------------------------------------------


def test_result_names_keep_the_extension_where_stems_clash() -> None:
    names = ResultNames()
    names.plan(["in/photo.jpg", "in/photo.PNG", "in/other.png", "in/sub/other.png"])
    assert [names.stem(s) for s in ("in/photo.jpg", "in/photo.PNG", "in/other.png", "in/sub/other.png")] == \
        ["photo_jpg", "photo_PNG", "other_png", "other_png-2"]
    assert names.stem("in/photo.jpg") == "photo_jpg"  # the same source again: the same name


def test_result_names_refuse_a_clash_they_were_not_told_about() -> None:
    names = ResultNames()
    assert names.stem("a/photo.jpg") == "photo"
    with pytest.raises(DataError) as info:
        names.stem("b/Photo.png")  # one file with photo_*.png on a case-insensitive disk
    assert "a/photo.jpg and b/Photo.png would both write their results as Photo_*.png" in str(info.value)


def test_srgan_results_of_inputs_with_one_stem_do_not_overwrite_each_other(cli, capsys, sr_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    noise_image(data / "photo.png", seed=1)
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8)).save(data / "photo.jpg")  # another picture
    code, err, out = cli("test", sr_args(sr_run, data, tmp_path / "results"), capsys)
    assert code == 0, err
    assert "2 results" in out
    images = tmp_path / "results" / "sr" / "test_latest" / "images"
    assert sorted(p.name for p in images.iterdir()) == sorted(
        f"photo_{ext}_{label}.png" for ext in ("jpg", "png") for label in ("LR", "bicubic", "SR"))
    a, b = (np.asarray(Image.open(images / f"photo_{ext}_SR.png")) for ext in ("jpg", "png"))
    assert not np.array_equal(a, b)
    page = (images.parent / "index.html").read_text()
    assert page.count("images/photo_jpg_SR.png") == 2 and page.count("images/photo_png_SR.png") == 2  # img + link


def test_visuals_of_inputs_with_one_stem_do_not_overwrite_each_other(cli, capsys, tmp_path):
    """The 8-bit visuals path (save_images) of --model test follows the same rule."""
    save_generator(tmp_path / "checkpoints", "g", "resnet_6blocks", 4, "instance")
    data = tmp_path / "data"
    data.mkdir()
    noise_image(data / "x.png", seed=1, size=(16, 16))
    noise_image(data / "x.jpg", seed=2, size=(16, 16))
    code, err, out = cli("test", ["--dataroot", str(data), "--name", "g", "--checkpoints_dir",
                                  str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / "results"), *TEST_G,
                                  "--preprocess", "none", *CPU], capsys)
    assert code == 0, err
    images = tmp_path / "results" / "g" / "test_latest" / "images"
    assert sorted(p.name for p in images.iterdir()) == ["x_jpg_fake.png", "x_jpg_real.png", "x_png_fake.png",
                                                         "x_png_real.png"]


# ---- items 5 and 6: float and 16-bit inputs through test.py ---------------------------------------------------


def wide_gradient(path: Path, w: int = 24, h: int = 20) -> np.ndarray:
    """A smooth 16-bit RGB image with almost every level distinct, written with 16 bits per sample."""
    y, x = np.mgrid[0:h, 0:w]
    levels = np.stack([(x * 2711 + y * 131) % 65536, (y * 3203 + x * 97) % 65536, (x * y * 613) % 65536])
    write_image(str(path), SRImage(torch.from_numpy(levels.astype(np.float32) / 65535), None, 16))
    return levels


@pytest.mark.parametrize("amp", ["auto", "bf16"])
def test_16_bit_input_keeps_16_bit_precision_under_bf16(cli, capsys, sr_run, tmp_path, amp):
    """--amp bf16 (what the default --amp auto is on bf16 hardware) upscales a 16-bit image in fp32: the output
    equals --amp none's level for level, and the LR and bicubic companions are 16-bit files too."""
    data = tmp_path / "data"
    data.mkdir()
    wide_gradient(data / "deep.png")
    outputs = {}
    for mode in (amp, "none"):
        code, err, out = cli("test", sr_args(sr_run, data, tmp_path / mode), capsys) if mode == "auto" else \
            cli("test", sr_args(sr_run, data, tmp_path / mode, "--amp", mode), capsys)
        assert code == 0, err
        images = tmp_path / mode / "sr" / "test_latest" / "images"
        outputs[mode] = read_image(str(images / "deep_SR.png"))
        for label in ("LR", "bicubic", "SR"):
            assert read_image(str(images / f"deep_{label}.png")).bit_depth == 16, label
        if mode == "bf16":
            assert "16-bit input: upscaled in fp32" in out
    sr, reference = outputs[amp], outputs["none"]
    assert sr.bit_depth == 16 and torch.equal(sr.pixels, reference.pixels)
    levels = np.unique(np.rint(sr.pixels.numpy() * 65535))
    assert len(levels) > 4 * 256, len(levels)  # far more than an 8-bit image could hold


def test_float_tiff_is_upscaled_by_its_range_not_black(cli, capsys, sr_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    unit = np.linspace(0.0, 1.0, 12 * 10, dtype=np.float32).reshape(10, 12)
    Image.fromarray(unit, "F").save(data / "float.tif")
    code, err, _ = cli("test", sr_args(sr_run, data, tmp_path / "results"), capsys)
    assert code == 0, err
    lr = read_image(str(tmp_path / "results" / "sr" / "test_latest" / "images" / "float_LR.png"))
    assert (lr.channels, lr.bit_depth) == (1, 16)
    assert torch.equal(lr.pixels[0], torch.from_numpy(np.rint(unit.astype(np.float64) * 65535) / 65535).float())


# ---- item 7: errors at the edges -----------------------------------------------------------------------------


def test_results_dir_that_is_a_file_is_an_option_error(cli, capsys, sr_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    noise_image(data / "a.png", seed=1)
    blocker = tmp_path / "results_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as info:
        cli("test", sr_args(sr_run, data, blocker), capsys)
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--results_dir {blocker}: {blocker} is a file, not a folder" in lines[0], lines
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("script", ["train", "test"])
def test_checkpoints_dir_that_is_a_file_is_an_option_error(cli, capsys, tmp_path, script):
    data = tmp_path / "data"
    data.mkdir()
    noise_image(data / "a.png", seed=1, size=(32, 32))
    blocker = tmp_path / "ck_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as info:
        cli(script, ["--dataroot", str(data), "--name", "x", "--checkpoints_dir", str(blocker), *SR_G, *CPU], capsys)
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--checkpoints_dir {blocker}: {blocker} is a file, not a folder" in lines[0], lines


def test_a_bad_suffix_is_reported_as_the_suffix(cli, capsys, sr_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(SystemExit) as info:
        cli("test", sr_args(sr_run, data, tmp_path / "results", "--suffix", "{netG}/x"), capsys)
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--suffix '{netG}/x' gives 'srresnet/x'" in lines[0] and "--name" in lines[0], lines
    assert "--name 'sr_srresnet/x'" not in lines[0]


def test_a_folder_given_as_vgg_weights_is_not_called_missing(cli, capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(SystemExit) as info:
        cli("train", ["--dataroot", str(data), "--name", "x", "--checkpoints_dir", str(tmp_path / "ck"), *SR_G, *CPU,
                      "--vgg_weights", str(tmp_path)], capsys)
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--vgg_weights {tmp_path}: is a folder, not a file" in lines[0], lines


def test_a_checkpoint_that_does_not_fit_names_n_blocks(cli, capsys, sr_run, tmp_path):
    """The hint comes from the one list of shaping options, which includes the architecture's own --n_blocks."""
    data = tmp_path / "data"
    data.mkdir()
    noise_image(data / "a.png", seed=1)
    code, err, _ = cli("test", sr_args(sr_run, data, tmp_path / "results", "--n_blocks", "2"), capsys)
    assert code == 2 and len(err) == 1, err
    assert "does not fit the network" in err[0]
    hint = err[0].rsplit("; check ", 1)[1]
    assert [flag for flag in ("--netG", "--ngf", "--norm", "--scale", "--n_blocks") if flag not in hint] == [], hint


def test_options_that_do_not_fit_the_file_are_refused_before_the_network_is_built(cli, capsys, sr_run, tmp_path,
                                                                                   generator_devices):
    """Issue 22, item 11: `n_blocks: 2000` in a train_opt.json built (and initialised) the whole network for minutes
    before the weights file was found not to fit. The check comes first now: the only networks built are on the
    meta device (no memory, no initialisation)."""
    data = tmp_path / "data"
    data.mkdir()
    noise_image(data / "a.png", seed=1)
    (sr_run / "sr" / "train_opt.json").write_text(json.dumps(
        {"model": "srgan", "netG": "srresnet", "ngf": 8, "n_blocks": 300, "scale": 4, "norm": "batch"}))
    code, err, _ = cli("test", ["--dataroot", str(data), "--name", "sr", "--checkpoints_dir", str(sr_run),
                                "--results_dir", str(tmp_path / "results"), *CPU], capsys)
    assert code == 2 and len(err) == 1 and "latest_net_G.pth does not fit the network" in err[0], err
    assert generator_devices == ["meta"]


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_malicious_checkpoint_is_refused_without_inviting_the_unsafe_load(cli, capsys, sr_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    noise_image(data / "a.png", seed=1)
    marker = tmp_path / "pwned"
    torch.save({"weight": _Evil(str(marker))}, sr_run / "sr" / "latest_net_G.pth")
    code, err, _ = cli("test", sr_args(sr_run, data, tmp_path / "results"), capsys)
    assert code == 2 and len(err) == 1, err
    assert "it holds Python objects (io.open), not only tensors" in err[0] and "refused" in err[0]
    assert "weights_only" not in err[0] and "trust the source" not in err[0].lower()
    assert not marker.exists()


@pytest.mark.parametrize("loads", [True, False])
def test_torch_warnings_reach_the_user_once(monkeypatch, caplog, tmp_path, loads):
    """torch's UserWarnings while reading a file (legacy pickles): logged once when it loads, dropped when it is
    refused (the error line says what matters), never printed by Python besides."""
    from util.errors import CheckpointError
    from util.fileio import load_torch_weights_only

    path = tmp_path / "legacy.pth"
    path.write_bytes(b"x")

    def fake_load(*args, **kwargs):
        for _ in range(2):
            warnings.warn("legacy storage format: TypedStorage is deprecated", UserWarning)
        if not loads:
            raise RuntimeError("Weights only load failed. Re-running `torch.load` with `weights_only` set to False "
                               "will likely succeed")
        return {"w": torch.zeros(1)}

    monkeypatch.setattr(torch, "load", fake_load)
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        if loads:
            assert list(load_torch_weights_only(path)) == ["w"]
        else:
            with pytest.raises(CheckpointError) as info:
                load_torch_weights_only(path)
            assert "weights_only" not in str(info.value)
    assert shown == []
    logged = [r.getMessage() for r in caplog.records if "TypedStorage" in r.getMessage()]
    assert logged == ([f"{path}: legacy storage format: TypedStorage is deprecated"] if loads else [])


# ---- issue 22, item 1: one test.py per results folder ---------------------------------------------------------


def test_a_results_folder_in_use_is_refused_with_the_holder_s_pid(cli, capsys, sr_run, tmp_path):
    """Two test.py writing one results/<name>/<phase>_<epoch>/ would interleave their images and pages: while
    another process writes it, test.py exits 2 in one line naming the folder and that process, and writes nothing."""
    data = tmp_path / "data"
    data.mkdir()
    noise_image(data / "photo.png", seed=1)
    results = tmp_path / "results"
    folder = results / "sr" / "test_latest"
    with folder_held(folder, "test.py") as holder:
        code, err, _ = cli("test", sr_args(sr_run, data, results), capsys)
        assert os.listdir(folder) == [".lock"]  # the holder's, and nothing else
    assert code == 2 and err == [f"error: {folder} is in use by test.py (PID {holder.pid}): wait for it to end, or "
                                 f"give this one another --results_dir"], err
    code, err, _ = cli("test", sr_args(sr_run, data, results), capsys)
    assert code == 0, err
