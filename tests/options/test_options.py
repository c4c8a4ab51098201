"""Tests of the command-line options: reference names/defaults/types, registries as choices, the frozen
namespace, gpu ids, one-line errors for bad option sets, --suffix, saving, and --help."""
from __future__ import annotations

import argparse
import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from helpers import REFERENCE, ROOT
import torch

import data
import models
from models import networks
from options.base_options import Options
from options.test_options import TestOptions
from options.train_options import TrainOptions

REFERENCE_OPTIONS = REFERENCE / "reference_options.md"

CPU = ["--gpu_ids", "-1"]


# ---- helpers ------------------------------------------------------------------------------------------------


def parse_reference_tables(path: Path) -> Dict[str, List[Tuple[str, str, str]]]:
    """`## <Section>` -> [(flag, type, default)] for every markdown table row of the reference's flags."""
    tables: Dict[str, List[Tuple[str, str, str]]] = {}
    section = None
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^##\s+(\w+)", line)
        if heading:
            section = heading.group(1)
            continue
        row = re.match(r"^\|\s*(--\w+)\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$", line)
        if row and section is not None:
            tables.setdefault(section, []).append((row.group(1), row.group(2), row.group(3)))
    return tables


@pytest.fixture(scope="module")
def reference_tables() -> Dict[str, List[Tuple[str, str, str]]]:
    if not REFERENCE_OPTIONS.is_file():
        pytest.skip(f"reference options table {REFERENCE_OPTIONS} is absent (shared folder not mounted)")
    tables = parse_reference_tables(REFERENCE_OPTIONS)
    # Sanity: the parser must actually have found the tables, or the comparisons below would be vacuous.
    assert len(tables.get("BaseOptions", [])) >= 30, tables.keys()
    assert len(tables.get("TrainOptions", [])) >= 20
    assert len(tables.get("TestOptions", [])) >= 5
    return tables


def expected_value(type_name: str, default: str) -> Any:
    """The value argparse gives for the reference's (type, default): string defaults go through `type`."""
    if default == "None":
        return None
    if default in ("False", "True"):
        return default == "True"
    if default == "inf":
        return math.inf
    text = default[1:-1] if default[:1] in ("'", '"') and default[-1:] == default[:1] else default
    return {"int": int, "float": float, "str": str}[type_name](text)


def action_of(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    for action in parser._actions:
        if flag in action.option_strings:
            return action
    raise AssertionError(f"{flag} is not a flag of the parser")


def assert_type(action: argparse.Action, type_name: str, flag: str) -> None:
    if type_name == "flag":
        assert action.nargs == 0 and action.const is True, f"{flag} is not a store_true flag"
    elif type_name == "int":
        converted = (action.type or str)("3")
        assert converted == 3 and isinstance(converted, int), f"{flag}: type {action.type} does not give int"
    elif type_name == "float":
        converted = (action.type or str)("0.25")
        assert converted == 0.25 and isinstance(converted, float), f"{flag}: type {action.type} does not give float"
    elif type_name == "str":
        assert action.type in (None, str), f"{flag}: type {action.type} is not str"
    else:  # pragma: no cover - a new type in the table needs a new rule here
        raise AssertionError(f"unknown type {type_name!r} in the reference table for {flag}")


def parse_train(tmp_path: Path, *args: str) -> Tuple[TrainOptions, Options]:
    options = TrainOptions()
    opt = options.parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "checkpoints"), *args])
    return options, opt


def parse_test(tmp_path: Path, *args: str) -> Tuple[TestOptions, Options]:
    options = TestOptions()
    opt = options.parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "checkpoints"), *args])
    return options, opt


# ---- reference names, defaults and types --------------------------------------------------------------------


def test_train_options_have_every_reference_flag_with_its_default_and_type(tmp_path, reference_tables):
    options = TrainOptions()
    opt = options.parse(["--dataroot", str(tmp_path), "--model", "cycle_gan"])  # nothing else: all defaults
    # cycle_gan (the reference's default model) changes these defaults itself; checked in the per-model tests.
    changed_by_model = {"no_dropout": True}
    rows = reference_tables["BaseOptions"] + reference_tables["TrainOptions"]
    for flag, type_name, default in rows:
        dest = flag[2:]
        action = action_of(options.parser, flag)
        assert action.dest == dest
        assert_type(action, type_name, flag)
        expected = expected_value(type_name, default)
        if dest == "dataroot":
            assert options.parser.get_default(dest) is None
            continue
        if dest == "gpu_ids":  # resolved to a tuple of usable ids; the flag's default is the reference's '0'
            assert options.parser.get_default(dest) == expected == "0"
            continue
        if dest in changed_by_model:
            expected = changed_by_model[dest]
        assert getattr(opt, dest) == expected, f"{flag}: got {getattr(opt, dest)!r}, reference default {expected!r}"
    assert isinstance(opt.max_dataset_size, float) and math.isinf(opt.max_dataset_size)


def test_test_options_have_every_reference_flag_with_its_default_and_type(tmp_path, reference_tables):
    options = TestOptions()
    opt = options.parse(["--dataroot", str(tmp_path)])  # nothing else: all defaults
    test_defaults = {"model": "test", "load_size": opt.crop_size, "dataset_mode": "single"}
    # The reference's test.py forces these after parsing; here the parse resolves them (flag defaults unchanged).
    forced_by_test = {"serial_batches": True, "no_flip": True}
    rows = reference_tables["BaseOptions"] + reference_tables["TestOptions"]
    for flag, type_name, default in rows:
        dest = flag[2:]
        action = action_of(options.parser, flag)
        assert_type(action, type_name, flag)
        expected = expected_value(type_name, default)
        if dest == "dataroot":
            continue
        if dest == "gpu_ids":
            assert options.parser.get_default(dest) == "0"
            continue
        if dest in forced_by_test:
            assert options.parser.get_default(dest) == expected
            expected = forced_by_test[dest]
        expected = test_defaults.get(dest, expected)
        assert getattr(opt, dest) == expected, f"{flag}: got {getattr(opt, dest)!r}, expected {expected!r}"
    assert opt.model == "test" and opt.dataset_mode == "single"
    assert opt.load_size == opt.crop_size == 256
    assert opt.isTrain is False
    # Test images are read in order and unflipped, as the reference's test.py forces.
    assert opt.serial_batches is True and opt.no_flip is True


def test_train_options_lack_test_flags_and_vice_versa(tmp_path):
    _, train_opt = parse_train(tmp_path, *CPU)
    _, test_opt = parse_test(tmp_path, *CPU)
    for key in ("results_dir", "aspect_ratio", "eval", "num_test"):
        assert not hasattr(train_opt, key)
        assert hasattr(test_opt, key)
    for key in ("lr", "n_epochs", "display_id", "gan_mode", "pool_size"):
        assert hasattr(train_opt, key)
        assert not hasattr(test_opt, key)
    assert train_opt.phase == "train" and test_opt.phase == "test"


def test_pix2pix_defaults(tmp_path):
    _, opt = parse_train(tmp_path, "--model", "pix2pix", *CPU)
    assert (opt.norm, opt.netG, opt.dataset_mode) == ("batch", "unet_256", "aligned")
    assert (opt.pool_size, opt.gan_mode, opt.lambda_L1) == (0, "vanilla", 100.0)
    assert opt.no_dropout is False
    _, test_opt = parse_test(tmp_path, "--model", "pix2pix", *CPU)
    assert (test_opt.norm, test_opt.netG, test_opt.dataset_mode) == ("batch", "unet_256", "aligned")
    assert not hasattr(test_opt, "lambda_L1")  # a training-only flag


def test_cycle_gan_defaults(tmp_path):
    _, opt = parse_train(tmp_path, "--model", "cycle_gan", *CPU)
    assert (opt.lambda_A, opt.lambda_B, opt.lambda_identity) == (10.0, 10.0, 0.5)
    assert opt.no_dropout is True
    assert (opt.netG, opt.norm, opt.dataset_mode, opt.gan_mode, opt.pool_size) == (
        "resnet_9blocks", "instance", "unaligned", "lsgan", 50)
    _, test_opt = parse_test(tmp_path, "--model", "cycle_gan", *CPU)
    assert test_opt.no_dropout is True and test_opt.dataset_mode == "unaligned"
    assert not hasattr(test_opt, "lambda_A")


def test_test_model_defaults(tmp_path):
    _, opt = parse_test(tmp_path, "--model", "test", *CPU)
    assert opt.model_suffix == ""
    assert opt.dataset_mode == "single"
    assert opt.no_dropout is False  # the reference's test model keeps the base default: pass --no_dropout


def test_explicit_values_override_model_defaults(tmp_path):
    _, opt = parse_train(tmp_path, "--model", "pix2pix", "--norm", "instance", "--netG", "resnet_6blocks",
                         "--pool_size", "7", "--lambda_L1", "3", *CPU)
    assert (opt.norm, opt.netG, opt.pool_size, opt.lambda_L1) == ("instance", "resnet_6blocks", 7, 3.0)


# ---- choices come from the registries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, registry",
    [
        ("--model", models.MODELS),
        ("--netG", networks.GENERATORS),
        ("--netD", networks.DISCRIMINATORS),
        ("--norm", networks.NORM_LAYERS),
        ("--init_type", networks.INIT_TYPES),
        ("--gan_mode", networks.GAN_MODES),
        ("--lr_policy", networks.LR_POLICIES),
        ("--dataset_mode", data.DATASETS),
    ],
)
def test_choices_are_the_registry_names(tmp_path, flag, registry):
    options, _ = parse_train(tmp_path, *CPU)
    names = registry.names()
    assert names, f"registry for {flag} is empty"
    assert list(action_of(options.parser, flag).choices) == names


def test_registries_hold_the_reference_names():
    assert {"cycle_gan", "pix2pix", "test"} <= set(models.MODELS.names())
    assert {"resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128"} <= set(networks.GENERATORS.names())
    assert {"basic", "n_layers", "pixel"} <= set(networks.DISCRIMINATORS.names())
    assert {"batch", "instance", "none"} <= set(networks.NORM_LAYERS.names())
    assert {"normal", "xavier", "kaiming", "orthogonal"} <= set(networks.INIT_TYPES.names())
    assert {"vanilla", "lsgan", "wgangp"} <= set(networks.GAN_MODES.names())
    assert {"linear", "step", "plateau", "cosine"} <= set(networks.LR_POLICIES.names())
    assert {"aligned", "unaligned", "single"} <= set(data.DATASETS.names())


# ---- the frozen namespace ---------------------------------------------------------------------------------


def test_options_are_frozen(tmp_path):
    _, opt = parse_train(tmp_path, *CPU)
    with pytest.raises(AttributeError):
        opt.name = "other"
    with pytest.raises(AttributeError):
        opt.brand_new = 1
    with pytest.raises(AttributeError):
        del opt.lr
    assert opt.name == "experiment_name"
    assert not hasattr(opt, "brand_new")


def test_replace_returns_a_changed_frozen_copy(tmp_path):
    _, opt = parse_train(tmp_path, *CPU)
    changed = opt.replace(name="other", lr=0.5)
    assert changed is not opt
    assert (changed.name, changed.lr) == ("other", 0.5)
    assert (opt.name, opt.lr) == ("experiment_name", 0.0002)  # the original is untouched
    assert {k: v for k, v in changed.to_dict().items() if k not in ("name", "lr")} == {
        k: v for k, v in opt.to_dict().items() if k not in ("name", "lr")}
    with pytest.raises(AttributeError):
        changed.name = "again"


def test_replace_rejects_unknown_keys(tmp_path):
    _, opt = parse_train(tmp_path, *CPU)
    with pytest.raises((AttributeError, KeyError, TypeError, ValueError)):
        opt.replace(lambda_l1=5)  # typo of a pix2pix flag on a cycle_gan namespace
    assert not hasattr(opt, "lambda_l1")


# ---- gpu ids ------------------------------------------------------------------------------------------------


def test_gpu_ids_minus_one_is_cpu_without_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        _, opt = parse_train(tmp_path, "--gpu_ids", "-1")
    assert opt.gpu_ids == ()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback; this machine has CUDA")
def test_gpu_ids_zero_without_cuda_falls_back_to_cpu_with_one_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        _, opt = parse_train(tmp_path, "--gpu_ids", "0")
    assert opt.gpu_ids == ()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "CUDA is not available" in warnings[0].getMessage()


@pytest.mark.parametrize("gpu_ids", ["a,b", "0,0"])
def test_bad_gpu_ids_exit_2(tmp_path, capsys, gpu_ids):
    with pytest.raises(SystemExit) as exc:
        parse_train(tmp_path, "--gpu_ids", gpu_ids)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gpu_ids" in err[0], err


# ---- bad option sets: exit 2, one line naming the option, nothing created -----------------------------------

# (id, options class, --dataroot ('{root}' is an existing empty folder, None: not given), further arguments,
#  substrings the one stderr line must contain)
BAD_OPTIONS = [
    ("missing-dataroot", TrainOptions, None, [], ["--dataroot"]),
    ("nonexistent-dataroot", TrainOptions, "{root}/missing", [], ["--dataroot", "missing"]),
    ("crop-larger-than-load", TrainOptions, "{root}", ["--crop_size", "300", "--load_size", "286"],
     ["--crop_size", "--load_size"]),
    ("unet256-crop-200", TrainOptions, "{root}", ["--netG", "unet_256", "--crop_size", "200"],
     ["--crop_size", "unet_256"]),
    ("unknown-model", TrainOptions, "{root}", ["--model", "nosuchmodel"], ["--model", "nosuchmodel"]),
    ("unknown-netG", TrainOptions, "{root}", ["--netG", "nosuchnet"],
     ["--netG", "nosuchnet"] + networks.GENERATORS.names()),
    ("batch-size-0", TrainOptions, "{root}", ["--batch_size", "0"], ["--batch_size"]),
    ("negative-lambda-L1", TrainOptions, "{root}", ["--model", "pix2pix", "--lambda_L1", "-1"], ["--lambda_L1"]),
    ("negative-lambda-A", TrainOptions, "{root}", ["--model", "cycle_gan", "--lambda_A", "-1"], ["--lambda_A"]),
    ("name-escapes", TrainOptions, "{root}", ["--name", "../escape"], ["--name"]),
    ("name-with-slash", TrainOptions, "{root}", ["--name", "a/b"], ["--name"]),
    ("epoch-escapes", TestOptions, "{root}", ["--epoch", "../x"], ["--epoch"]),
    ("max-dataset-size-0", TrainOptions, "{root}", ["--max_dataset_size", "0"], ["--max_dataset_size"]),
    ("use-wandb-at-test", TestOptions, "{root}", ["--use_wandb"], ["--use_wandb"]),
    ("ema-decay-1", TrainOptions, "{root}", ["--ema_decay", "1"], ["--ema_decay"]),
    ("identity-needs-equal-channels", TrainOptions, "{root}",
     ["--model", "cycle_gan", "--input_nc", "1", "--output_nc", "3"], ["--lambda_identity", "--input_nc"]),
    ("test-model-in-training", TrainOptions, "{root}", ["--model", "test"], ["--model test"]),
    ("test-model-aligned", TestOptions, "{root}", ["--model", "test", "--dataset_mode", "aligned"],
     ["--dataset_mode"]),
    ("no-epochs", TrainOptions, "{root}", ["--n_epochs", "0", "--n_epochs_decay", "0"], ["--n_epochs"]),
    ("lr-0", TrainOptions, "{root}", ["--lr", "0"], ["--lr"]),
    ("display-port-70000", TrainOptions, "{root}", ["--display_port", "70000"], ["--display_port"]),
    ("beta2-1", TrainOptions, "{root}", ["--beta2", "1"], ["--beta2"]),
    ("milestones-decreasing", TrainOptions, "{root}", ["--lr_milestones", "5,3"], ["--lr_milestones", "5,3"]),
    ("milestones-not-numbers", TrainOptions, "{root}", ["--lr_milestones", "a"], ["--lr_milestones"]),
    ("multistep-without-milestones", TrainOptions, "{root}", ["--lr_policy", "multistep"], ["--lr_milestones"]),
    ("lr-gamma-0", TrainOptions, "{root}", ["--lr_gamma", "0"], ["--lr_gamma"]),
    # Issue 22, item 6: non-finite and absurd floats are option errors, not a run that fails at its first step.
    ("lr-inf", TrainOptions, "{root}", ["--lr", "inf"], ["--lr must be a finite number, got inf"]),
    ("lr-nan", TrainOptions, "{root}", ["--lr", "nan"], ["--lr must be a finite number, got nan"]),
    ("lr-1e308", TrainOptions, "{root}", ["--lr", "1e308"], ["--lr must be in (0, 1]", "got 1e+308"]),
    ("lr-2", TrainOptions, "{root}", ["--lr", "2"], ["--lr must be in (0, 1]"]),
    ("beta1-minus-inf", TrainOptions, "{root}", ["--beta1=-inf"], ["--beta1 must be a finite number"]),
    ("lambda-L1-inf", TrainOptions, "{root}", ["--model", "pix2pix", "--lambda_L1", "inf"],
     ["--lambda_L1 must be a finite number"]),
    ("lambda-identity-1e308", TrainOptions, "{root}", ["--model", "cycle_gan", "--lambda_identity", "1e308"],
     ["--lambda_identity must be a number in [0, 1e+06]"]),
    ("lambda-adv-nan", TrainOptions, "{root}", ["--model", "srgan", "--lambda_adv", "nan"], ["--lambda_adv"]),
    ("init-gain-1e308", TrainOptions, "{root}", ["--init_gain", "1e308"], ["--init_gain must be in (0, 10]"]),
    ("ema-decay-nan", TrainOptions, "{root}", ["--ema_decay", "nan"], ["--ema_decay must be a finite number"]),
    ("d-noise-std-1e308", TrainOptions, "{root}", ["--model", "srgan", "--d_noise_std", "1e308"],
     ["--d_noise_std must be in [0, 10]"]),
    ("aspect-ratio-inf", TestOptions, "{root}", ["--aspect_ratio", "inf"], ["--aspect_ratio must be a finite"]),
    ("aspect-ratio-1e308", TestOptions, "{root}", ["--aspect_ratio", "1e308"], ["--aspect_ratio must be in"]),
    # Item 13: a range that starts with '-' is read as the option's value and checked, not "expected one argument".
    ("deg-noise-range-negative", TrainOptions, "{root}",
     ["--model", "srgan", "--degradation", "realesrgan", "--deg_noise_range", "-5,10"],
     ["argument --deg_noise_range: '-5,10': need 0 <= low <= high <= 255"]),
    ("deg-resize-range-negative", TrainOptions, "{root}",
     ["--model", "srgan", "--degradation", "realesrgan", "--deg2_resize_range", "-.5,2"],
     ["argument --deg2_resize_range: '-.5,2': need 0.001 <= low"]),
    # Item 4: settings the run would ignore, where the user set up something else than what would run.
    ("deg-settings-without-realesrgan", TrainOptions, "{root}",
     ["--model", "srgan", "--deg_noise_range", "1,50", "--deg2_jpeg_range", "60,95"],
     ["--deg_noise_range, --deg2_jpeg_range: settings of --degradation realesrgan, which this run does not use "
      "(--degradation bicubic): add --degradation realesrgan, or leave them out"]),
    ("deg-setting-at-test-without-realesrgan", TestOptions, "{root}", ["--model", "srgan", "--deg_blur_prob", "0.5"],
     ["--deg_blur_prob: a setting of --degradation realesrgan"]),
    ("degradation-at-test-without-eval-metrics", TestOptions, "{root}",
     ["--model", "srgan", "--degradation", "realesrgan"],
     ["--degradation realesrgan makes the LR from HR test images", "add --eval_metrics"]),
    ("milestones-without-multistep", TrainOptions, "{root}", ["--lr_milestones", "50,100"],
     ["--lr_milestones is a setting of --lr_policy multistep, which this run does not use (--lr_policy linear)"]),
    ("lr-gamma-with-linear", TrainOptions, "{root}", ["--lr_gamma", "0.5"],
     ["--lr_gamma is a setting of --lr_policy step or multistep", "(--lr_policy linear)"]),
    ("lr-decay-iters-with-multistep", TrainOptions, "{root}",
     ["--lr_policy", "multistep", "--lr_milestones", "5", "--lr_decay_iters", "10"],
     ["--lr_decay_iters is a setting of --lr_policy step, which this run does not use (--lr_policy multistep)"]),
    ("cosine-with-decay-epochs", TrainOptions, "{root}", ["--lr_policy", "cosine"],
     ["--lr_policy cosine anneals the rate to zero over --n_epochs (100)", "--n_epochs_decay 100"]),
]


@pytest.mark.parametrize("case, options_class, dataroot, args, expected", BAD_OPTIONS,
                         ids=[c[0] for c in BAD_OPTIONS])
def test_bad_options_exit_2_with_one_line_naming_the_option(tmp_path, capsys, case, options_class, dataroot, args,
                                                            expected):
    root = tmp_path / "data"
    root.mkdir()
    checkpoints = tmp_path / "checkpoints"
    argv = [] if dataroot is None else ["--dataroot", dataroot.replace("{root}", str(root))]
    if "--name" not in args:
        argv += ["--name", "bad"]
    argv += args + ["--checkpoints_dir", str(checkpoints)] + CPU
    with pytest.raises(SystemExit) as exc:
        options_class().parse(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {captured.err!r}"
    prog = "train.py" if options_class is TrainOptions else "test.py"
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for needle in expected:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    created = sorted(checkpoints.rglob("*")) if checkpoints.exists() else []
    assert created == [], f"parsing bad options created {created}"


def test_settings_of_the_chosen_schedule_and_degradation_are_accepted(tmp_path):
    """The other side of the refusals above: each setting with the choice that reads it."""
    _, opt = parse_train(tmp_path, "--lr_policy", "step", "--lr_gamma", "0.5", "--lr_decay_iters", "10", *CPU)
    assert (opt.lr_gamma, opt.lr_decay_iters) == (0.5, 10)
    _, opt = parse_train(tmp_path, "--lr_policy", "cosine", "--n_epochs_decay", "0", *CPU)
    _, opt = parse_train(tmp_path, "--model", "srgan", "--degradation", "realesrgan", "--deg_noise_range", "1,50",
                         *CPU)
    assert opt.deg_noise_range == (1.0, 50.0)


@pytest.mark.parametrize("args, expected", [
    (["--pretrain_epochs", "10", "--n_epochs", "1", "--n_epochs_decay", "0"],
     ["warning: --pretrain_epochs 10 is more than the run's 1 epochs (--n_epochs 1 + --n_epochs_decay 0): the "
      "generator trains alone on the pixel loss the whole run, and no adversarial epoch runs (a pixel-only run says "
      "so with --pretrain_epochs 1)"]),
    (["--pretrain_epochs", "3", "--n_epochs", "3", "--n_epochs_decay", "0"], []),  # a pixel-only run, as intended
    (["--d_noise_decay", "0.9"], ["warning: --d_noise_decay 0.9 has no noise to decay: --d_noise_std is 0"]),
    (["--d_noise_decay", "0.9", "--d_noise_std", "0.05"], []),
    (["--lambda_perceptual", "0", "--vgg_layer", "22", "--vgg_before_activation", "--usm_targets", "perceptual",
      "--vgg_weights", __file__],  # a file: only where the weights are, given to every stage by the recipes
     ["warning: --vgg_layer, --vgg_before_activation, --usm_targets perceptual: the perceptual loss's settings have "
      "no effect with --lambda_perceptual 0"]),
])
def test_srgan_settings_its_run_will_not_use_are_warned_of_once(tmp_path, capsys, args, expected):
    """Issue 22, item 4: warnings, not errors, where the run is still what some users mean (a pixel-only run with
    the documented --pretrain_epochs 100000; one command's flags shared by two stages)."""
    from util.cli import setup_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging()
    try:
        parse_train(tmp_path, "--model", "srgan", *args, *CPU)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: ")] == expected


# ---- --suffix ---------------------------------------------------------------------------------------------


def test_suffix_is_formatted_with_the_options(tmp_path):
    _, opt = parse_train(tmp_path, "--model", "pix2pix", "--name", "exp", "--suffix", "{model}_{netG}", *CPU)
    assert opt.name == "exp_pix2pix_unet_256"


def test_empty_suffix_keeps_the_name(tmp_path):
    _, opt = parse_train(tmp_path, "--name", "exp", *CPU)
    assert opt.name == "exp"


# ---- saving -----------------------------------------------------------------------------------------------


def test_save_writes_text_and_json(tmp_path):
    options, opt = parse_train(tmp_path, "--model", "pix2pix", "--name", "saved", "--ngf", "8", *CPU)
    written = options.save(opt)
    folder = tmp_path / "checkpoints" / "saved"
    assert sorted(Path(p).name for p in written) == ["train_opt.json", "train_opt.txt"]
    assert all(Path(p).parent == folder for p in written)

    with open(folder / "train_opt.json", encoding="utf-8") as f:
        saved = json.load(f)
    assert set(saved) == set(opt.to_dict())
    assert saved["max_dataset_size"] == "inf"
    assert saved["gpu_ids"] == [] and isinstance(saved["gpu_ids"], list)
    assert (saved["model"], saved["ngf"], saved["name"], saved["lambda_L1"]) == ("pix2pix", 8, "saved", 100.0)
    assert saved["isTrain"] is True

    text = (folder / "train_opt.txt").read_text(encoding="utf-8")
    lines = {line.split(":", 1)[0].strip(): line for line in text.splitlines() if ":" in line}
    assert re.search(r"\bngf: 8\s+\[default: 64\]", lines["ngf"]), lines["ngf"]
    assert re.search(r"\bmodel: pix2pix\s+\[default: cycle_gan\]", lines["model"]), lines["model"]
    assert "[default:" not in lines["ndf"]  # unchanged values carry no annotation
    assert "[default:" not in lines["lr"]
    assert set(opt.to_dict()) <= set(lines)  # one line per option


def test_save_of_a_test_parse_writes_test_opt(tmp_path):
    options, opt = parse_test(tmp_path, "--name", "t", *CPU)
    options.save(opt)
    folder = tmp_path / "checkpoints" / "t"
    assert (folder / "test_opt.txt").is_file()
    with open(folder / "test_opt.json", encoding="utf-8") as f:
        assert json.load(f)["phase"] == "test"


# ---- --help -----------------------------------------------------------------------------------------------


def test_help_lists_the_model_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        TrainOptions().parse(["--model", "pix2pix", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--lambda_L1" in out and "--n_epochs" in out
    assert "--lambda_A" not in out


@pytest.mark.parametrize("options_cls, present, absent", [
    (TrainOptions, ["--lambda_identity"], ["--lambda_L1"]),  # the default model is cycle_gan
    (TestOptions, ["--model_suffix", "--num_test", "--results_dir"], []),
])
def test_help_lists_the_default_models_flags(capsys, options_cls, present, absent):
    with pytest.raises(SystemExit) as exc:
        options_cls().parse(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in present), present
    assert not any(flag in out for flag in absent), absent


# ---- regressions: saving from a fresh object, bad --suffix, --display_ncols 0, --phase escaping ------------


def test_save_from_a_fresh_options_object(tmp_path):
    _, opt = parse_train(tmp_path, "--name", "fresh", "--ngf", "8", *CPU)
    TrainOptions().save(opt)
    folder = tmp_path / "checkpoints" / "fresh"
    assert (folder / "train_opt.json").is_file()
    assert re.search(r"\bngf: 8\s+\[default: 64\]", (folder / "train_opt.txt").read_text(encoding="utf-8"))


@pytest.mark.parametrize("suffix", ["{no_such_option}", "{"])
def test_bad_suffix_is_a_one_line_error(tmp_path, capsys, suffix):
    with pytest.raises(SystemExit) as exc:
        parse_train(tmp_path, "--name", "exp", "--suffix", suffix, *CPU)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--suffix" in lines[0], lines


def test_display_ncols_0_is_accepted_like_the_reference(tmp_path):
    _, opt = parse_train(tmp_path, "--display_ncols", "0", *CPU)
    assert opt.display_ncols == 0


def test_phase_cannot_escape_the_results_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_test(tmp_path, "--phase", "../../escape", *CPU)
    assert exc.value.code == 2
    assert "--phase" in capsys.readouterr().err
