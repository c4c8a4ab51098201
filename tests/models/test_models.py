"""Tests of the models (`--model`): one training step, learning, checkpoints, the `test` model, option checks.

Models are built through the real option parsers with tiny widths (ngf = ndf = 8) and 32x32 images, on CPU.
"""
from __future__ import annotations

import math
import os
import shlex
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

import pytest
import torch
import torch.nn as nn

from models import MODELS, create_model, data_options
from models.archs import registration
from models.networks import DISCRIMINATORS, GAN_MODES, GENERATORS, gradient_penalty
from options import TestOptions, TrainOptions
from util.errors import CheckpointError

SIDE = 32


def _tiny_args(model: str) -> List[str]:
    """Flags that make `model` tiny and fast: its registration's `tiny`, then those of the generator and the
    discriminator it then uses (their `Tiny.options`, models/archs/registration.py)."""
    args = list(MODELS.meta(model)["tiny"])
    _, chosen = TrainOptions().gather_options(["--model", model, *args])
    for registry, name in ((GENERATORS, chosen.netG), (DISCRIMINATORS, chosen.netD)):
        tiny = registration.tiny(registry, name)
        args += tiny.flags() if tiny is not None else ()
    return args


# Extra flags that make a model tiny and fast. A model without them is skipped with a reason.
TINY_ARGS: Dict[str, List[str]] = {name: _tiny_args(name) for name in MODELS.names() if "tiny" in MODELS.meta(name)}


def _sr_scale(model: str) -> int:
    """How many times larger the model's output is than its input, as it tells the data pipeline."""
    _, opt = TrainOptions().gather_options(["--model", model, *TINY_ARGS[model]])
    opt.isTrain = True
    return data_options(opt)["sr_scale"]


# Models whose input is smaller than their output (super-resolution): the factor (a wrong one makes the batches
# below mismatch the model's output).
INPUT_DIVISOR = {name: _sr_scale(name) for name in TINY_ARGS if MODELS.get(name).upscales}


def _channels(model: str) -> Tuple[int, int]:
    """The model's default (--input_nc, --output_nc): (3, 3) but for colorization's L -> ab (1, 2)."""
    _, opt = TrainOptions().gather_options(["--model", model])
    return opt.input_nc, opt.output_nc


CHANNELS = {name: _channels(name) for name in TINY_ARGS}
TRAINABLE_MODELS = [name for name in MODELS.names() if name != "test"]


def _common(tmp_path: Path) -> List[str]:
    # fp32: these tests check exact properties (every parameter moves, bit-exact round trips); mixed precision
    # has its own tests in test_acceleration.py.
    return ["--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ck"), "--name", "t",
            "--ngf", "8", "--ndf", "8", "--crop_size", str(SIDE), "--load_size", str(SIDE), "--amp", "none"]


def train_opt(tmp_path: Path, model: str, *extra: str):
    if model not in TINY_ARGS:
        pytest.skip(f"model {model!r} is registered but its tiny construction is not known: add it to TINY_ARGS in "
                    f"tests/models/test_models.py")
    return TrainOptions().parse([*_common(tmp_path), "--model", model, "--display_id", "0", *TINY_ARGS[model],
                                 *extra])


def make_test_opt(tmp_path: Path, *extra: str):
    return TestOptions().parse([*_common(tmp_path), *extra])


def _batch(seed: int = 0, input_nc: int = 0, output_nc: int = 0, side: int = SIDE, model: str = "") -> dict:
    """A random batch for `model`; channels left 0 are the model's default ones."""
    g = torch.Generator().manual_seed(seed)
    default_in, default_out = CHANNELS.get(model, (3, 3))
    input_nc, output_nc = input_nc or default_in, output_nc or default_out
    a_side = side // INPUT_DIVISOR.get(model, 1)
    return {"A": torch.rand(1, input_nc, a_side, a_side, generator=g) * 2 - 1,
            "B": torch.rand(1, output_nc, side, side, generator=g) * 2 - 1,
            "A_paths": ["a.png"], "B_paths": ["b.png"]}


def _params(model) -> Dict[str, torch.Tensor]:
    return {f"net{name}.{k}": p.detach().clone() for name, net in model.named_networks()
            for k, p in net.named_parameters()}


def _state(net: nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _biases_feeding_instance_norm(prefix: str, net: nn.Module) -> Set[str]:
    """Biases of convolutions whose output goes straight into an affine-free InstanceNorm.

    The norm subtracts the per-channel mean, so such a bias cannot influence anything: its gradient is zero up
    to float rounding (which Adam's normalised step may still turn into a tiny, meaningless change). The
    reference has the same parameters, so checkpoints keep them.
    """
    out = set()
    for seq_name, seq in net.named_modules():
        if isinstance(seq, nn.Sequential):
            children = list(seq.named_children())
            for (name_a, a), (_, b) in zip(children, children[1:]):
                if (isinstance(a, (nn.Conv2d, nn.ConvTranspose2d)) and a.bias is not None
                        and isinstance(b, nn.InstanceNorm2d) and not b.affine):
                    out.add(f"{prefix}.{seq_name + '.' if seq_name else ''}{name_a}.bias")
    return out


def _last_conv_bias(prefix: str, net: nn.Module) -> Set[str]:
    name = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)][-1]
    return {f"{prefix}.{name}.bias"}


def _first_conv_in_channels(net: nn.Module) -> int:
    return next(m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))).in_channels


# ---------------------------------------------------------------------------------------------- one training step


# GAN modes whose first discriminator step ignores a constant added to D's output (see below); a relativistic mode
# (ragan) only ever compares D's outputs with each other, so a constant cancels at every step.
SHIFT_BLIND_GAN_MODES = ("wgangp", "hinge", *(m for m in GAN_MODES.names() if GAN_MODES.meta(m).get("relativistic")))


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("gan_mode", GAN_MODES.names())
@pytest.mark.parametrize("model_name", TRAINABLE_MODELS)
def test_one_step_updates_every_parameter(tmp_path, model_name: str, gan_mode: str, norm: str) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, model_name, "--gan_mode", gan_mode, "--norm", norm)
    model = create_model(opt)
    model.setup(opt)
    assert model.isTrain and model.model_names  # the template model trains a generator alone
    before = _params(model)
    model.set_input(_batch(model=model_name))
    model.optimize_parameters()
    after = _params(model)

    exempt: Set[str] = set()
    for name, net in model.named_networks():
        exempt |= _biases_feeding_instance_norm(f"net{name}", net)
        if gan_mode in SHIFT_BLIND_GAN_MODES and name.startswith("D"):
            # The critic's loss -mean(D(real)) + mean(D(fake)) (+ a penalty on input gradients), and the hinge
            # loss while every output of a fresh D is within the margin (|D| < 1), do not change when a constant
            # is added to D's output (nor does ragan's): the last conv's bias gets an exactly-zero gradient.
            exempt |= _last_conv_bias(f"net{name}", net)
    assert exempt <= set(before)
    if norm == "batch":  # no InstanceNorm: only the critics' last biases (wgangp, hinge) may be exempt
        n_critics = sum(name.startswith("D") for name in model.model_names)
        assert len(exempt) == (n_critics if gan_mode in SHIFT_BLIND_GAN_MODES else 0)
    unchanged = [k for k in before if k not in exempt and torch.equal(before[k], after[k])]
    assert unchanged == [], f"parameters not updated by one step: {unchanged}"
    assert len(before) - len(exempt & set(before)) > 20

    losses = model.get_current_losses()
    assert list(losses) == model.loss_names and len(losses) > 0
    assert all(math.isfinite(v) for v in losses.values()), losses


@pytest.mark.parametrize("model_name", TRAINABLE_MODELS)
def test_visuals_follow_visual_names(tmp_path, model_name: str) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, model_name)
    model = create_model(opt)
    model.set_input(_batch(model=model_name))
    model.optimize_parameters()
    model.compute_visuals()  # as train.py does before it shows them
    visuals = model.get_current_visuals()
    assert list(visuals) == model.visual_names and len(visuals) >= 3
    for name, img in visuals.items():
        assert img.shape in ((1, 3, SIDE, SIDE), (1, 1, SIDE, SIDE)), name  # RGB, or grey (saved as RGB)
        assert float(img.detach().min()) >= -1 and float(img.detach().max()) <= 1, name
    assert model.get_image_paths() == ["a.png"]


def test_cycle_gan_visual_names(tmp_path) -> None:
    """With identity loss the identity images are shown too (reference layout)."""
    opt = train_opt(tmp_path, "cycle_gan")
    assert opt.lambda_identity == 0.5
    model = create_model(opt)
    assert model.visual_names == ["real_A", "fake_B", "rec_A", "idt_B", "real_B", "fake_A", "rec_B", "idt_A"]
    opt0 = train_opt(tmp_path, "cycle_gan", "--lambda_identity", "0")
    assert create_model(opt0).visual_names == ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]


def test_pix2pix_l1_falls(tmp_path) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "pix2pix", "--no_dropout")
    model = create_model(opt)
    model.setup(opt)
    model.set_input(_batch(seed=3))
    l1 = []
    for _ in range(30):
        model.optimize_parameters()
        l1.append(model.get_current_losses()["G_L1"])
    assert all(math.isfinite(v) for v in l1)
    assert sum(l1[-5:]) / 5 < 0.8 * l1[0], l1


def test_pix2pix_l1_loss_is_weighted_mean_abs_error(tmp_path) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "pix2pix", "--lambda_L1", "7")
    model = create_model(opt)
    model.set_input(_batch())
    model.optimize_parameters()
    expected = 7 * (model.fake_B.detach() - model.real_B).abs().mean().item()
    assert model.get_current_losses()["G_L1"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("gan_mode", GAN_MODES.names())
def test_discriminator_loss_is_mean_of_real_and_fake_terms(tmp_path, gan_mode: str) -> None:
    """loss_D = (GAN(D(real), real) + GAN(D(fake), fake)) / 2, plus the gradient penalty for wgangp."""
    if gan_mode not in ("vanilla", "lsgan", "wgangp", "hinge"):
        pytest.skip(f"no hand-computed discriminator loss for GAN mode {gan_mode!r}")
    torch.manual_seed(0)
    model = create_model(train_opt(tmp_path, "pix2pix", "--gan_mode", gan_mode, "--norm", "instance"))
    real, fake = torch.rand(1, 6, SIDE, SIDE) * 2 - 1, torch.rand(1, 6, SIDE, SIDE) * 2 - 1
    torch.manual_seed(7)
    loss_D, loss_real, loss_fake = model.discriminator_loss(model.netD, real, fake)
    with torch.no_grad():
        d_real, d_fake = model.netD(real), model.netD(fake)
    if gan_mode == "vanilla":  # -log(sigmoid(x)) = softplus(-x); -log(1 - sigmoid(x)) = softplus(x)
        exp_real, exp_fake = nn.functional.softplus(-d_real).mean(), nn.functional.softplus(d_fake).mean()
    elif gan_mode == "lsgan":
        exp_real, exp_fake = (d_real - 1).square().mean(), d_fake.square().mean()
    elif gan_mode == "hinge":
        exp_real, exp_fake = (1 - d_real).clamp_min(0).mean(), (1 + d_fake).clamp_min(0).mean()
    else:
        exp_real, exp_fake = -d_real.mean(), d_fake.mean()
    assert loss_real.item() == pytest.approx(exp_real.item(), rel=1e-5)
    assert loss_fake.item() == pytest.approx(exp_fake.item(), rel=1e-5)
    expected = 0.5 * (exp_real + exp_fake)
    if gan_mode == "wgangp":
        torch.manual_seed(7)  # the same interpolation point
        penalty, _ = gradient_penalty(model.netD, real, fake, type="mixed", constant=1.0, lambda_gp=10.0)
        assert penalty.item() > 0
        expected = expected + penalty.detach()
    assert loss_D.item() == pytest.approx(expected.item(), rel=1e-5)


def test_cycle_gan_generator_loss_terms(tmp_path) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "cycle_gan", "--lambda_A", "3", "--lambda_B", "5", "--lambda_identity", "0.4")
    model = create_model(opt)
    model.set_input(_batch())
    model.optimize_parameters()
    losses = model.get_current_losses()
    l1 = lambda a, b: (a.detach() - b.detach()).abs().mean().item()  # noqa: E731
    assert losses["cycle_A"] == pytest.approx(3 * l1(model.rec_A, model.real_A), rel=1e-5)
    assert losses["cycle_B"] == pytest.approx(5 * l1(model.rec_B, model.real_B), rel=1e-5)
    assert losses["idt_A"] == pytest.approx(5 * 0.4 * l1(model.idt_A, model.real_B), rel=1e-5)
    assert losses["idt_B"] == pytest.approx(3 * 0.4 * l1(model.idt_B, model.real_A), rel=1e-5)


# ---------------------------------------------------------------------------------------------- learning rate


def test_update_learning_rate_linear(tmp_path) -> None:
    opt = train_opt(tmp_path, "pix2pix", "--n_epochs", "2", "--n_epochs_decay", "3", "--lr", "0.0002")
    model = create_model(opt)
    model.setup(opt)
    assert len(model.schedulers) == len(model.optimizers) == 2
    model.set_input(_batch())
    model.optimize_parameters()  # an epoch of training before its end-of-epoch update
    lrs = [model.update_learning_rate() for _ in range(5)]
    # epoch e uses lr * (1 - max(0, e - n_epochs) / (n_epochs_decay + 1)); lrs[k] is the lr of epoch k + 2
    assert lrs == pytest.approx([0.0002, 0.00015, 0.0001, 0.00005, 0.0], abs=1e-12)
    for optimizer in model.optimizers:
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_update_learning_rate_plateau_reads_metric(tmp_path) -> None:
    opt = train_opt(tmp_path, "cycle_gan", "--lr_policy", "plateau", "--lr", "0.001")
    model = create_model(opt)
    model.setup(opt)
    model.set_input(_batch())
    model.optimize_parameters()
    model.metric = 1.0
    lrs = [model.update_learning_rate() for _ in range(7)]
    assert lrs == pytest.approx([0.001] * 6 + [0.0002])


# ---------------------------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("model_name", TRAINABLE_MODELS)
def test_checkpoint_round_trip_is_bit_exact(tmp_path, model_name: str) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, model_name, "--norm", "batch")
    model = create_model(opt)
    model.setup(opt)
    model.set_input(_batch(model=model_name))
    model.optimize_parameters()  # BN running statistics and weights move away from their initial values
    paths = model.save_networks("latest")
    assert paths == [os.path.join(str(tmp_path / "ck"), "t", f"latest_net_{n}.pth") for n in model.model_names]

    for (name, net), path in zip(model.named_networks(), paths):
        saved = torch.load(path, map_location="cpu", weights_only=True)
        assert isinstance(saved, dict)
        assert list(saved) == list(net.state_dict()), name
        assert not any(k.startswith("module.") for k in saved)
        assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in saved.values())
        assert any(k.endswith("running_mean") for k in saved)  # buffers are saved too

    torch.manual_seed(123)
    fresh = create_model(opt)
    fresh.setup(opt)  # the same --channels_last layout: outputs then compare bit for bit
    differs = [name for (name, a), (_, b) in zip(model.named_networks(), fresh.named_networks())
               if any(not torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())]
    assert differs == model.model_names, "the fresh model should start from other weights"
    fresh.load_networks("latest")
    for (name, a), (_, b) in zip(model.named_networks(), fresh.named_networks()):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        for k in sa:
            assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), f"{name}.{k}"
        a.eval()
        b.eval()
        x = torch.rand(1, _first_conv_in_channels(a), SIDE, SIDE) * 2 - 1
        with torch.no_grad():
            assert torch.equal(a(x), b(x)), name


def test_epoch_labels_name_the_files(tmp_path) -> None:
    opt = train_opt(tmp_path, "pix2pix")
    model = create_model(opt)
    paths = model.save_networks(7)
    assert sorted(os.path.basename(p) for p in paths) == ["7_net_D.pth", "7_net_G.pth"]
    model.load_networks(7)
    with pytest.raises(CheckpointError, match="8_net_G.pth"):
        model.load_networks(8)


def _add_legacy_instance_norm_stats(net: nn.Module, state: dict) -> int:
    """What PyTorch < 0.4 saved for InstanceNorm2d (the reference's published models carry these keys)."""
    added = 0
    for name, m in net.named_modules():
        if isinstance(m, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.zeros(m.num_features)
            state[f"{name}.running_var"] = torch.ones(m.num_features)
            added += 2
    return added


def test_legacy_instance_norm_checkpoint_loads(tmp_path) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "cycle_gan", "--norm", "instance")
    source = create_model(opt)
    os.makedirs(source.save_dir)
    for name, net in source.named_networks():
        state = dict(net.state_dict())
        assert _add_legacy_instance_norm_stats(net, state) > 0
        torch.save(state, source.network_path("latest", name))
    torch.manual_seed(1)
    target = create_model(opt)
    target.load_networks("latest")
    for (name, a), (_, b) in zip(source.named_networks(), target.named_networks()):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name


def test_unexpected_keys_are_still_refused(tmp_path) -> None:
    opt = train_opt(tmp_path, "cycle_gan", "--norm", "instance")
    model = create_model(opt)
    model.save_networks("latest")
    path = model.network_path("latest", "G_A")
    state = torch.load(path, weights_only=True)
    state["model.1.running_mean"] = torch.zeros(8)  # model.1 is a conv, not an InstanceNorm
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="latest_net_G_A.pth"):
        model.load_networks("latest")


def test_checkpoint_error_names_the_mismatch(tmp_path) -> None:
    torch.manual_seed(0)
    cyc = create_model(train_opt(tmp_path, "cycle_gan", "--norm", "instance"))
    cyc.save_networks("latest")
    opt = make_test_opt(tmp_path, "--model", "test", "--model_suffix", "_A", "--netG", "resnet_6blocks",
                        "--ngf", "16", "--norm", "instance", "--no_dropout")
    model = create_model(opt)
    with pytest.raises(CheckpointError) as info:
        model.setup(opt)
    message = str(info.value)
    assert "--ngf" in message
    # which tensor does not fit, and how: what the user needs to pick the right flag
    assert "model.1.weight" in message and "size mismatch" in message, message


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_malicious_pickle_is_refused(tmp_path) -> None:
    marker = tmp_path / "pwned"
    opt = make_test_opt(tmp_path, "--model", "test", "--netG", "resnet_6blocks", "--no_dropout")
    model = create_model(opt)
    assert model.model_names == ["G"]
    ckpt = Path(model.network_path("latest", "G"))
    ckpt.parent.mkdir(parents=True)
    torch.save({"model.1.weight": _Evil(marker)}, ckpt)
    assert ckpt.name == "latest_net_G.pth"

    with pytest.raises(CheckpointError, match="latest_net_G.pth"):
        model.setup(opt)
    assert not marker.exists()

    # Control: the payload is live, so the refusal above is what kept it from running.
    torch.load(ckpt, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("wrong", [["--ngf", "16"], ["--norm", "batch"], ["--netG", "resnet_9blocks"],
                                   ["--no_dropout_omitted"]], ids=lambda w: w[0].lstrip("-"))
def test_wrong_architecture_is_a_checkpoint_error(tmp_path, wrong: Sequence[str]) -> None:
    torch.manual_seed(0)
    cyc = create_model(train_opt(tmp_path, "cycle_gan", "--norm", "instance"))
    cyc.save_networks("latest")
    flags = {"--netG": "resnet_6blocks", "--ngf": "8", "--norm": "instance"}
    dropout = ["--no_dropout"]
    if wrong[0] == "--no_dropout_omitted":  # dropout layers shift the ResNet block's module indices
        dropout = []
    else:
        flags[wrong[0]] = wrong[1]
    args = [a for kv in flags.items() for a in kv]
    opt = make_test_opt(tmp_path, "--model", "test", "--model_suffix", "_A", *args, *dropout)
    model = create_model(opt)
    with pytest.raises(CheckpointError) as info:
        model.setup(opt)
    message = str(info.value)
    assert "latest_net_G_A.pth" in message
    for flag in ("--netG", "--norm", "--ngf", "--no_dropout"):
        assert flag in message, message


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path) -> None:
    opt = make_test_opt(tmp_path, "--model", "test", "--model_suffix", "_A", "--netG", "resnet_6blocks")
    with pytest.raises(CheckpointError, match="latest_net_G_A.pth"):
        create_model(opt).setup(opt)


# ---------------------------------------------------------------------------------------------- the test model


def test_test_model_reproduces_cycle_gan_generator(tmp_path) -> None:
    torch.manual_seed(0)
    cyc = create_model(train_opt(tmp_path, "cycle_gan", "--norm", "instance"))
    cyc.set_input(_batch())
    cyc.optimize_parameters()
    cyc.save_networks("latest")

    torch.manual_seed(99)
    opt = make_test_opt(tmp_path, "--model", "test", "--model_suffix", "_A", "--netG", "resnet_6blocks",
                   "--norm", "instance", "--no_dropout", "--eval")
    model = create_model(opt)
    assert model.model_names == ["G_A"] and model.netG_A is model.netG
    model.setup(opt)
    model.eval()
    x = _batch(seed=5)["A"]
    model.set_input({"A": x, "A_paths": ["x.png"]})
    model.test()
    cyc.netG_A.eval()
    with torch.no_grad():
        expected = cyc.netG_A(x)
        other = cyc.netG_B(x)
    assert torch.equal(model.fake, expected)
    assert not torch.equal(model.fake, other)
    visuals = model.get_current_visuals()
    assert list(visuals) == model.visual_names == ["real", "fake"]
    assert torch.equal(visuals["real"], x)
    assert model.get_image_paths() == ["x.png"]
    assert model.get_current_losses() == {}


def test_pix2pix_test_phase_loads_only_the_generator(tmp_path) -> None:
    torch.manual_seed(0)
    trained = create_model(train_opt(tmp_path, "pix2pix"))
    trained.save_networks("latest")
    opt = make_test_opt(tmp_path, "--model", "pix2pix", "--netG", "resnet_6blocks")
    model = create_model(opt)
    assert not model.isTrain and model.model_names == ["G"] and not hasattr(model, "netD")
    model.setup(opt)
    sa, sb = trained.netG.state_dict(), model.netG.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------------------------- option checks


def test_cycle_gan_identity_needs_equal_channels(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        train_opt(tmp_path, "cycle_gan", "--input_nc", "1", "--output_nc", "3")
    assert info.value.code == 2
    assert "lambda_identity" in capsys.readouterr().err


def test_cycle_gan_gray_to_rgb_without_identity(tmp_path) -> None:
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "cycle_gan", "--input_nc", "1", "--output_nc", "3", "--lambda_identity", "0")
    model = create_model(opt)
    model.set_input(_batch(input_nc=1, output_nc=3))
    model.optimize_parameters()
    assert model.fake_B.shape == (1, 3, SIDE, SIDE) and model.fake_A.shape == (1, 1, SIDE, SIDE)
    assert model.rec_A.shape == (1, 1, SIDE, SIDE) and model.rec_B.shape == (1, 3, SIDE, SIDE)
    losses = model.get_current_losses()
    assert losses["idt_A"] == 0.0 and losses["idt_B"] == 0.0
    assert all(math.isfinite(v) for v in losses.values())


def test_test_model_is_refused_for_training(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        TrainOptions().parse([*_common(tmp_path), "--model", "test", "--display_id", "0"])
    assert info.value.code == 2
    assert "test" in capsys.readouterr().err


def test_model_registry_lists_models() -> None:
    assert {"pix2pix", "cycle_gan", "test"} <= set(MODELS.names())
    with pytest.raises(KeyError) as info:
        MODELS.get("no_such_model")
    assert all(name in str(info.value) for name in MODELS.names())
