"""Running from the saved run: test.py (and the scripts that build a trained network) take the model and the
options that decide its networks from `<checkpoints_dir>/<name>/train_opt.json` when the command line does not
give them (options/saved_run.py).

Each model is trained here for one tiny epoch with network options away from the defaults (so a test run that
did not take them could not load the checkpoint); test.py then runs with `--name` alone and must give exactly
what today's command with every flag typed again gives. Also: flags given win; a flag that contradicts the
checkpoint and a corrupted or hand-edited saved file are one-line errors with exit code 2; a reference-style
folder (no train_opt.json) behaves as before.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List

import numpy as np
import pytest
from helpers import ROOT, require_or_skip
from PIL import Image

import models
from options import TrainOptions, run_options
from options.saved_run import given_options
from options.test_options import TestOptions
from util.errors import CheckpointError, OptionError

SHARED_DATA = ROOT.parent / "shared" / "data"
SET5 = SHARED_DATA / "sr_eval" / "Set5"
FACADES = SHARED_DATA / "paired" / "facades"
HORSE2ZEBRA = SHARED_DATA / "unpaired" / "horse2zebra_mini"

CPU = ["--gpu_ids", "-1", "--num_threads", "0"]
TRAIN = ["--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0", "--seed", "0", *CPU]
# The flags today's test commands need to rebuild each run's networks (what --name alone now replaces).
SR_FLAGS = ["--model", "srgan", "--ngf", "8", "--n_blocks", "1", "--scale", "2"]
P2P_FLAGS = ["--model", "pix2pix", "--direction", "BtoA", "--netG", "unet_128", "--ngf", "8",
             "--load_size", "128", "--crop_size", "128"]
# One intra-op thread: on 2 shared cores, 2 OpenMP threads spin against each other and run many times slower.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


# ---- helpers ------------------------------------------------------------------------------------------------


def shared(folder: Path) -> Path:
    require_or_skip(folder.is_dir(), f"shared test images {folder} are absent (expected at ../shared/data from the "
                                     f"project root)")
    return folder


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def run_test(test_main, checkpoints: Path, name: str, results: Path, *args: object) -> Path:
    """test.py in-process on run `name`; the folder of its result images."""
    argv = ["--name", name, "--checkpoints_dir", checkpoints, "--results_dir", results, *CPU, *args]
    assert test_main([str(a) for a in argv]) == 0
    return results / name / "test_latest" / "images"


def reference_style_copy(run: SimpleNamespace, tmp_path: Path, saved: object = None) -> Path:
    """A checkpoints folder holding `run`'s generators as the reference leaves them: no train_opt.json (or
    `saved` written as one); returns the new checkpoints_dir."""
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / run.name).mkdir(parents=True)
    for path in run.exp.glob("latest_net_G*.pth"):
        shutil.copy(path, checkpoints / run.name / path.name)
    if saved is not None:
        text = saved if isinstance(saved, str) else json.dumps(saved)
        (checkpoints / run.name / "train_opt.json").write_text(text, encoding="utf-8")
    return checkpoints


def saved_run_lines(caplog) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("options from ")]


def train(train_main, base: Path, name: str, *args: object) -> SimpleNamespace:
    run = SimpleNamespace(name=name, checkpoints=base / "checkpoints")
    run.exp = run.checkpoints / name
    assert train_main([str(a) for a in ["--name", name, "--checkpoints_dir", run.checkpoints, *args, *TRAIN]]) == 0
    assert (run.exp / "train_opt.json").is_file()
    return run


# ---- the runs -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory, train_main) -> SimpleNamespace:
    """SRResNet x2, 8 filters, 1 block (the defaults: x4, 64, 16), and one small LR test image."""
    base = tmp_path_factory.mktemp("saved_sr")
    run = train(train_main, base, "sr", "--model", "srgan", "--dataroot", shared(SET5), "--ngf", "8",
                "--n_blocks", "1", "--scale", "2", "--ndf", "8", "--netD_head", "conv", "--crop_size", "32",
                "--batch_size", "4", "--lambda_perceptual", "0", "--pretrain_epochs", "1", "--max_dataset_size", "4")
    run.lr = base / "lr"
    run.lr.mkdir()
    with Image.open(SET5 / "butterfly.png") as hr:
        hr.convert("RGB").crop((60, 60, 160, 140)).resize((25, 20), Image.BICUBIC).save(run.lr / "lr.png")
    return run


@pytest.fixture(scope="module")
def p2p_run(tmp_path_factory, train_main) -> SimpleNamespace:
    """pix2pix BtoA, unet_128 with 8 filters on 128-pixel crops (the defaults: AtoB, unet_256, 64, 256)."""
    return train(train_main, tmp_path_factory.mktemp("saved_p2p"), "p2p", "--model", "pix2pix",
                 "--dataroot", shared(FACADES), "--direction", "BtoA", "--netG", "unet_128", "--ngf", "8", "--ndf", "8",
                 "--load_size", "143", "--crop_size", "128")


@pytest.fixture(scope="module")
def cg_run(tmp_path_factory, train_main, test_main) -> SimpleNamespace:
    """CycleGAN from 1 (greyscale) to 3 channels, resnet_6blocks with 8 filters on 64-pixel crops; and its test
    page from `--name` alone."""
    base = tmp_path_factory.mktemp("saved_cg")
    run = train(train_main, base, "cg", "--model", "cycle_gan", "--dataroot", shared(HORSE2ZEBRA),
                "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--input_nc", "1", "--lambda_identity", "0",
                "--load_size", "72", "--crop_size", "64")
    run.images = run_test(test_main, run.checkpoints, run.name, base / "results", "--dataroot", HORSE2ZEBRA)
    return run


# ---- --name alone, for each model ---------------------------------------------------------------------------


def test_srgan_runs_from_its_saved_options(sr_run, test_main, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    images = run_test(test_main, sr_run.checkpoints, sr_run.name, tmp_path / "saved", "--dataroot", sr_run.lr)
    with Image.open(images / "lr_SR.png") as sr:
        assert sr.size == (50, 40), "the generator was not built at the run's --scale 2"
    [line] = saved_run_lines(caplog)
    for flag in ("--model srgan", "--netG srresnet", "--ngf 8", "--n_blocks 1", "--scale 2", "train_opt.json"):
        assert flag in line, line
    # The same output as today's command, with every flag typed, on the reference's layout (no saved file).
    reference = reference_style_copy(sr_run, tmp_path)
    typed = run_test(test_main, reference, sr_run.name, tmp_path / "typed", "--dataroot", sr_run.lr, *SR_FLAGS)
    assert np.array_equal(pixels(images / "lr_SR.png"), pixels(typed / "lr_SR.png"))


def test_reference_style_folder_behaves_as_before(sr_run, test_main, tmp_path, caplog):
    """Without train_opt.json nothing is taken: test.py's defaults do not fit, and the error names the options."""
    caplog.set_level(logging.INFO)
    reference = reference_style_copy(sr_run, tmp_path)
    with pytest.raises(CheckpointError, match=r"does not fit.*check --netG, --ngf, --norm, --scale, --n_blocks"):
        run_test(test_main, reference, sr_run.name, tmp_path / "r", "--dataroot", sr_run.lr, "--model", "srgan")
    assert saved_run_lines(caplog) == []


def test_a_zoo_style_saved_file_with_few_options_is_enough(sr_run, test_main, tmp_path):
    """A saved file need not hold every option (scripts/download.py writes the network's and a checksum)."""
    saved = {"model": "srgan", "netG": "srresnet", "ngf": 8, "n_blocks": 1, "scale": 2, "sha256": "0" * 64}
    checkpoints = reference_style_copy(sr_run, tmp_path, saved)
    images = run_test(test_main, checkpoints, sr_run.name, tmp_path / "r", "--dataroot", sr_run.lr)
    with Image.open(images / "lr_SR.png") as sr:
        assert sr.size == (50, 40)


def test_pix2pix_runs_from_its_saved_options(p2p_run, test_main, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    images = run_test(test_main, p2p_run.checkpoints, p2p_run.name, tmp_path / "saved", "--dataroot", FACADES,
                      "--seed", "0")
    [line] = saved_run_lines(caplog)
    for flag in ("--model pix2pix", "--netG unet_128", "--ngf 8", "--direction BtoA", "--crop_size 128",
                 "--load_size 128"):
        assert flag in line, line
    # BtoA: the input is the right half of the side-by-side image, resized to the run's 128-pixel crop.
    with Image.open(FACADES / "test" / "3.jpg") as ab:
        w, h = ab.size
        right = np.asarray(ab.convert("RGB").crop((w // 2, 0, w, h)).resize((128, 128), Image.BICUBIC), np.int16)
    assert np.abs(pixels(images / "3_real_A.png") - right).max() <= 1
    typed = run_test(test_main, p2p_run.checkpoints, p2p_run.name, tmp_path / "typed", "--dataroot", FACADES,
                     "--seed", "0", *P2P_FLAGS)
    for label in ("real_A", "fake_B", "real_B"):
        assert np.array_equal(pixels(images / f"3_{label}.png"), pixels(typed / f"3_{label}.png")), label


def test_flags_given_win_over_the_saved_ones(p2p_run, test_main, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    images = run_test(test_main, p2p_run.checkpoints, p2p_run.name, tmp_path / "r", "--dataroot", FACADES,
                      "--direction", "AtoB", "--load_size", "256", "--crop_size", "256")
    with Image.open(FACADES / "test" / "3.jpg") as ab:
        w, h = ab.size
        left = np.asarray(ab.convert("RGB").crop((0, 0, w // 2, h)).resize((256, 256), Image.BICUBIC), np.int16)
    assert np.abs(pixels(images / "3_real_A.png") - left).max() <= 1
    [line] = saved_run_lines(caplog)
    assert "--netG unet_128" in line and "--direction" not in line and "_size" not in line, line


def test_cycle_gan_runs_from_its_saved_options(cg_run):
    labels = ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
    assert sorted(p.name for p in cg_run.images.iterdir()) == sorted(f"5_{label}.png" for label in labels)
    for label in labels:  # the run's 64-pixel crop
        with Image.open(cg_run.images / f"5_{label}.png") as img:
            assert img.size == (64, 64)
    real_a = pixels(cg_run.images / "5_real_A.png")
    assert (real_a == real_a[..., :1]).all(), "the run's --input_nc 1: A images are read as greyscale"


@pytest.mark.parametrize("suffix, folder, same_as", [("_A", "testA", "fake_B"), ("_B", "testB", "fake_A")])
def test_test_model_applies_one_generator_of_the_run(cg_run, test_main, tmp_path, caplog, suffix, folder, same_as):
    """--model test --model_suffix: the run's G_A (1 -> 3 channels) or G_B (3 -> 1: channels swapped), built from
    the saved options alone, gives what the CycleGAN gave for the same image."""
    caplog.set_level(logging.INFO)
    images = run_test(test_main, cg_run.checkpoints, cg_run.name, tmp_path / "r", "--dataroot", HORSE2ZEBRA / folder,
                      "--model", "test", "--model_suffix", suffix)
    [fake] = [p for p in images.iterdir() if p.name.endswith("_fake.png")]
    assert np.array_equal(pixels(fake), pixels(cg_run.images / f"5_{same_as}.png"))
    [line] = saved_run_lines(caplog)
    assert "--no_dropout" in line and "--netG resnet_6blocks" in line and "--direction" not in line, line
    channels = ("--input_nc 1", "--output_nc 3") if suffix == "_A" else ("--input_nc 3", "--output_nc 1")
    assert all(c in line for c in channels), line


# ---- errors -------------------------------------------------------------------------------------------------


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-2000:]}"


def test_a_flag_that_contradicts_the_checkpoint_is_one_line_with_exit_code_2(sr_run, tmp_path):
    """A real process: exit code and stderr as the user sees them (run_cli turns the CheckpointError into one
    line naming the options to check)."""
    proc = subprocess.run([sys.executable, "test.py", "--dataroot", str(sr_run.lr), "--name", sr_run.name,
                           "--checkpoints_dir", str(sr_run.checkpoints), "--results_dir", str(tmp_path), *CPU,
                           "--ngf", "16"], cwd=ROOT, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), describe(proc)
    for needle in ("latest_net_G.pth does not fit", "--ngf", "--n_blocks", "--scale"):
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("run_name, change, needles", [
    ("sr_run", {"ngf": "wide"}, ("argument --ngf", "invalid int value: 'wide'")),
    ("sr_run", {"netG": "resnet_99blocks"}, ("argument --netG", "invalid choice: 'resnet_99blocks'")),
    ("sr_run", {"scale": 5}, ("argument --scale", "invalid choice: 5")),
    ("sr_run", {"ngf": 0}, ("--ngf must be >= 1, got 0", "(--ngf 0 from")),
    ("sr_run", {"model": "pix2pix"}, ("--netG srresnet upscales, but --model pix2pix", "--netG srresnet from")),
    ("cg_run", {"no_dropout": "yes"}, ("no_dropout must be true or false, got 'yes'",)),
    # Issue 22, item 11: a null is the file's fault, not the weights file's (it used to build the default's network).
    ("sr_run", {"ngf": None}, ('"ngf" is null', "give --ngf on the command line")),
    ("sr_run", {"n_blocks": None}, ('"n_blocks" is null', "give --n_blocks on the command line")),
    ("sr_run", [1, 2], ("not the run's options",)),
    ("sr_run", '{"model": "srgan", "ngf": 8,', ("not valid JSON",)),
])
def test_a_bad_saved_value_is_refused_like_a_bad_flag_naming_the_file(request, tmp_path, capsys, run_name, change,
                                                                       needles):
    run = request.getfixturevalue(run_name)
    saved = json.loads((run.exp / "train_opt.json").read_text(encoding="utf-8"))
    saved = {**saved, **change} if isinstance(change, dict) else change  # a str: the file's text
    checkpoints = reference_style_copy(run, tmp_path, saved)
    with pytest.raises(SystemExit) as exc:
        TestOptions().parse(["--dataroot", str(tmp_path), "--name", run.name, "--checkpoints_dir", str(checkpoints),
                             *CPU])
    assert exc.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "error: " in lines[0], lines
    for needle in (str(checkpoints / run.name / "train_opt.json"), *needles):
        assert needle in lines[0], lines[0]


def test_given_options_sees_every_spelling_of_a_flag():
    """What the user gave is what argparse parsed, not a string search: `--ngf=8` and abbreviations count."""
    parser = TestOptions().build_parser(["--model", "srgan"])
    given = given_options(parser, ["--ngf=8", "--n_bl", "2", "--no_dropout", "--name", "x", "--unknown", "1"])
    assert given == {"ngf", "n_blocks", "no_dropout", "name"}


def test_training_does_not_read_the_saved_options(sr_run, tmp_path):
    """Only test-time parses fill options from the file: a new training run with the same --name starts from its
    own flags (a resumed one is checked against its training state, models/training/train_state.py)."""
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--name", sr_run.name, "--checkpoints_dir",
                                str(sr_run.checkpoints), "--display_id", "0", *CPU])
    assert (opt.model, opt.ngf) == ("cycle_gan", 64)


# ---- scripts: options.run_options ---------------------------------------------------------------------------


def test_run_options_builds_the_runs_generator_without_a_dataset(sr_run):
    opt = run_options(sr_run.name, str(sr_run.checkpoints), ["--gpu_ids", "-1"], default_model="srgan")
    assert (opt.model, opt.netG, opt.ngf, opt.n_blocks, opt.scale, opt.dataroot) == ("srgan", "srresnet", 8, 1, 2, None)
    model = models.create_model(opt)
    model.setup(opt)  # loads latest_net_G.pth strictly
    assert sum(p.numel() for p in model.netG.parameters()) > 0
    assert run_options(sr_run.name, str(sr_run.checkpoints), ["--gpu_ids", "-1", "--ngf", "4"]).ngf == 4


def test_run_options_without_a_saved_file_uses_the_default_model_and_raises_option_errors(tmp_path):
    opt = run_options("absent", str(tmp_path), ["--gpu_ids", "-1"], default_model="srgan")
    assert (opt.model, opt.ngf, opt.scale) == ("srgan", 64, 4)
    with pytest.raises(OptionError, match="--ngf"):
        run_options("absent", str(tmp_path), ["--gpu_ids", "-1", "--ngf", "x"], default_model="srgan")
