"""Speed settings: --amp (bf16 autocast, fp16 with loss scaling), --channels_last, --compile, fused Adam.

Each is checked for what it must not change: the step still trains every network, the losses agree with
fp32 within the documented tolerance, checkpoints stay in the standard layout, resume keeps the loss scale.
"""
from __future__ import annotations

import copy
import logging
import math
from typing import Dict

import pytest
import torch

from models import MODELS, create_model
from models.training import acceleration
from models.networks import DISCRIMINATORS, GENERATORS, NORM_LAYERS, define_D, define_G, size_divisor
from options import TrainOptions
from util.errors import OptionError

from test_models import TINY_ARGS, TRAINABLE_MODELS, _batch, _common

# bf16 keeps 8 significant bits: one step's losses agree with fp32 to about 1%; 5% leaves room for the
# tiny random networks used here, whose outputs sit near zero where relative errors are largest.
BF16_LOSS_RTOL = 0.05


def _opt(tmp_path, model: str, *extra: str):
    return TrainOptions().parse([*_common(tmp_path), "--model", model, "--display_id", "0", *TINY_ARGS[model],
                                 "--norm", "batch", *extra])


def _model(tmp_path, model: str, *extra: str, seed: int = 0):
    torch.manual_seed(seed)
    opt = _opt(tmp_path, model, *extra)
    m = create_model(opt)
    m.setup(opt)
    return m


def _params(model) -> Dict[str, torch.Tensor]:
    return {f"{name}.{k}": p.detach().clone() for name, net in model.named_networks()
            for k, p in net.named_parameters()}


# ---------------------------------------------------------------------------------------------- option resolution
def test_auto_amp_follows_the_hardware(monkeypatch) -> None:
    monkeypatch.setattr(acceleration, "cpu_has_native_bf16", lambda: True)
    assert acceleration.resolve_amp("auto", ()) == "bf16"
    monkeypatch.setattr(acceleration, "cpu_has_native_bf16", lambda: False)
    assert acceleration.resolve_amp("auto", ()) == "none"
    for explicit in ("none", "bf16", "fp16"):
        assert acceleration.resolve_amp(explicit, ()) == explicit
    monkeypatch.setattr(acceleration, "cuda_has_native_bf16", lambda index: False)
    assert acceleration.resolve_amp("auto", (0,)) == "none"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "Old GPU")
    with pytest.raises(OptionError, match="has no bf16 support"):
        acceleration.resolve_amp("bf16", (0,))


@pytest.mark.parametrize("cap, native", [(None, True), ("AVX2", False), ("avx512_core", False),
                                         ("AVX512_CORE_BF16", True), ("AVX512_CORE_AMX", True), ("ALL", True),
                                         ("not-an-isa", True)])
def test_an_isa_cap_below_avx512_bf16_means_emulated_bf16(monkeypatch, cap, native) -> None:
    """ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) below AVX512_CORE_BF16 keeps oneDNN off the bf16 instructions,
    so `--amp auto` must not pick bf16 even on a CPU that has them."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        if cap is not None:
            monkeypatch.setenv(name, cap)
        assert acceleration.cpu_has_native_bf16() is native
        assert acceleration.resolve_amp("auto", ()) == ("bf16" if native else "none")
        monkeypatch.delenv(name, raising=False)


def test_explicit_bf16_on_a_cpu_without_it_warns_that_it_is_emulated(monkeypatch, caplog) -> None:
    for native, warned in ((False, True), (True, False)):
        monkeypatch.setattr(acceleration, "cpu_has_native_bf16", lambda: native)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=acceleration.logger.name):
            assert acceleration.resolve_amp("bf16", ()) == "bf16"
            assert acceleration.resolve_amp("auto", ()) == ("bf16" if native else "none")
        assert any("bf16 is emulated" in r.getMessage() for r in caplog.records) is warned


def test_without_the_instructions_bf16_is_not_native_whatever_the_cap(monkeypatch) -> None:
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    assert not acceleration.cpu_has_native_bf16()


def test_inference_is_fp32_unless_the_model_measured_bf16(monkeypatch) -> None:
    monkeypatch.setattr(acceleration, "cpu_has_native_bf16", lambda: True)
    assert acceleration.resolve_amp("auto", (), training=False) == "none"  # the reference's exact images
    assert acceleration.resolve_amp("auto", (), training=False, bf16_inference=True) == "bf16"
    assert [n for n in MODELS.names() if MODELS.get(n).bf16_inference] == ["srgan"]
    assert acceleration.resolve_channels_last("auto", True, training=False) == "off"


# Training's `--channels_last auto` per (device, precision, model), from scripts/benchmark_layouts.sh's figures:
# CUDA and bf16 on a CPU follow `prefers_channels_last` (pix2pix, srgan; not cycle_gan's reflection padding);
# fp32 on a CPU follows `prefers_channels_last_cpu_fp32` (srgan only: pix2pix's NHWC step was slower on AVX2
# and AVX-512 alike); fp16 on a CPU, unmeasured, is contiguous. The ISA does not enter.
LAYOUT_CASES = [  # (device, amp, {model: resolved})
    ("cpu", "none", {"pix2pix": "off", "srgan": "on", "cycle_gan": "off"}),
    ("cpu", "bf16", {"pix2pix": "on", "srgan": "on", "cycle_gan": "off"}),
    ("cpu", "fp16", {"pix2pix": "off", "srgan": "off", "cycle_gan": "off"}),
    ("cuda", "none", {"pix2pix": "on", "srgan": "on", "cycle_gan": "off"}),
    ("cuda", "bf16", {"pix2pix": "on", "srgan": "on", "cycle_gan": "off"}),
    ("cuda", "fp16", {"pix2pix": "on", "srgan": "on", "cycle_gan": "off"}),
]


@pytest.mark.parametrize("device, amp, expected", LAYOUT_CASES)
def test_auto_layout_follows_device_precision_and_model(device, amp, expected) -> None:
    gpu_ids = (0,) if device == "cuda" else ()
    for model, layout in expected.items():
        cls = MODELS.get(model)
        preferred = acceleration.nhwc_preferred(cls.prefers_channels_last, cls.prefers_channels_last_cpu_fp32,
                                                amp, gpu_ids)
        assert acceleration.resolve_channels_last("auto", preferred) == layout, model
        assert acceleration.resolve_channels_last("auto", preferred, norm="instance") == "off"
        for explicit in ("on", "off"):  # asked for: kept
            assert acceleration.resolve_channels_last(explicit, preferred) == explicit
        # inference: the model's measured flag only (srgan's, measured at fp32 on an AVX2 CPU)
        assert acceleration.resolve_channels_last("auto", preferred, training=False,
                                                  inference=cls.channels_last_inference) == \
            ("on" if model == "srgan" else "off")


def test_options_resolve_the_layout_after_the_precision(tmp_path) -> None:
    """TrainOptions hands the resolved --amp and device to the layout rule: pix2pix in fp32 on a CPU is
    contiguous, in bf16 NHWC; srgan NHWC in both."""
    assert _opt(tmp_path, "pix2pix", "--amp", "none").channels_last == "off"
    assert _opt(tmp_path, "pix2pix", "--amp", "bf16").channels_last == "on"
    assert _opt(tmp_path, "srgan", "--amp", "none").channels_last == "on"


def test_options_save_the_resolved_settings(tmp_path) -> None:
    opt = _opt(tmp_path, "cycle_gan", "--amp", "auto")
    assert opt.amp in ("bf16", "none") and opt.amp == acceleration.resolve_amp("auto", ())
    assert opt.channels_last == "off"  # cycle_gan's measured preference
    assert _opt(tmp_path, "cycle_gan", "--norm", "batch", "--channels_last").channels_last == "on"  # bare flag: on
    assert _opt(tmp_path, "pix2pix", "--channels_last", "off").channels_last == "off"
    assert _opt(tmp_path, "pix2pix", "--norm", "batch", "--amp", "bf16").channels_last == "on"
    assert _opt(tmp_path, "pix2pix", "--norm", "instance").channels_last == "off"  # see the gradient test below
    assert not _opt(tmp_path, "pix2pix").compile


def test_channels_last_with_instance_norm_is_refused(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        _opt(tmp_path, "cycle_gan", "--norm", "instance", "--channels_last", "on")
    assert exc.value.code == 2
    assert "--channels_last on with --norm instance" in capsys.readouterr().err


def _weight_grads(net: torch.nn.Module, x: torch.Tensor) -> Dict[str, torch.Tensor]:
    net.zero_grad()
    net(x).square().mean().backward()
    return {k: p.grad.detach().double() for k, p in net.named_parameters() if p.dim() == 4}


@pytest.mark.parametrize("norm", [n for n in NORM_LAYERS.names() if n not in acceleration.CHANNELS_LAST_UNSAFE_NORMS])
@pytest.mark.parametrize("kind,name", [("G", n) for n in GENERATORS.names()] + [("D", n) for n in DISCRIMINATORS.names()])
def test_channels_last_gradients_match_float64(kind: str, name: str, norm: str) -> None:
    """Where --channels_last may be on, NHWC weight gradients equal a float64 contiguous computation to fp32
    rounding, for a batch of one image (the layout-ambiguous case) and of two."""
    torch.manual_seed(0)
    if kind == "G":
        extra = {"scale": 4, "n_blocks": 2} if GENERATORS.meta(name).get("upscale") else {}
        net = define_G(3, 3, 8, name, norm, False, **extra)
        side = 16 if extra else max(32, size_divisor(name))
    else:
        net = define_D(3, 8, name, 3, norm, **({"head": "conv"} if name == "srgan" else {}))
        side = 64
    for batch in (1, 2):
        x = torch.rand(batch, 3, side, side) * 2 - 1
        exact = _weight_grads(copy.deepcopy(net).double(), x.double())
        nhwc = _weight_grads(copy.deepcopy(net).to(memory_format=torch.channels_last),
                             x.contiguous(memory_format=torch.channels_last))
        for key, value in exact.items():
            error = (nhwc[key] - value).abs().max().item() / (value.abs().max().item() + 1e-12)
            assert error < 1e-3, f"{kind} {name} --norm {norm}, batch {batch}: {key} relative error {error:.1e}"


def test_bad_amp_is_exit_2(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        _opt(tmp_path, "pix2pix", "--amp", "fp8")
    assert exc.value.code == 2
    assert "--amp" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- mixed precision
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("model_name", TRAINABLE_MODELS)
def test_mixed_precision_step_trains_every_network(tmp_path, model_name: str, amp: str) -> None:
    model = _model(tmp_path, model_name, "--amp", amp)
    before = _params(model)
    model.set_input(_batch(model=model_name))
    # fp16 skips steps whose scaled gradients overflow while the scaler halves its initial 2**16: a few steps.
    for _ in range(1 if amp == "bf16" else 12):
        model.optimize_parameters()
    after = _params(model)
    for name, _ in model.named_networks():
        changed = [k for k in before if k.startswith(name + ".") and not torch.equal(before[k], after[k])]
        assert changed, f"network {name} did not change under --amp {amp}"
    assert all(math.isfinite(v) for v in model.get_current_losses().values())
    # Network outputs come back as float32 whatever the compute dtype: visuals, pools and images see one dtype.
    for name, value in model.get_current_visuals().items():
        assert value.dtype == torch.float32, name
    assert [s is not None for s in model.scalers] == [amp == "fp16"] * len(model.optimizers)


@pytest.mark.parametrize("model_name", TRAINABLE_MODELS)
def test_bf16_losses_agree_with_fp32(tmp_path, model_name: str) -> None:
    batch = _batch(model=model_name)
    losses = {}
    for amp in ("none", "bf16"):  # one layout for both: `auto` differs by precision, and dropout masks by layout
        model = _model(tmp_path, model_name, "--amp", amp, "--gan_mode", "lsgan", "--channels_last", "off")
        model.set_input(batch)
        model.optimize_parameters()
        losses[amp] = model.get_current_losses()
    for name, fp32 in losses["none"].items():
        assert losses["bf16"][name] == pytest.approx(fp32, rel=BF16_LOSS_RTOL, abs=1e-3), name


def test_bf16_training_lowers_the_loss_like_fp32(tmp_path) -> None:
    """Twenty pix2pix steps on one batch: the L1 loss falls by the same amount in bf16 as in fp32."""
    batch = _batch(model="pix2pix")
    curves = {}
    for amp in ("none", "bf16"):
        model = _model(tmp_path, "pix2pix", "--amp", amp, "--lr", "0.003")
        curve = []
        for _ in range(20):
            model.set_input(batch)
            model.optimize_parameters()
            curve.append(model.get_current_losses()["G_L1"])
        curves[amp] = curve
    for amp, curve in curves.items():
        assert curve[-1] < 0.8 * curve[0], (amp, curve)  # seen: 53.5 -> 39.9 (fp32), 41.2 (bf16)
    assert curves["bf16"][-1] == pytest.approx(curves["none"][-1], rel=0.1)


def test_fp16_scaler_skips_overflowing_steps_and_is_saved(tmp_path) -> None:
    model = _model(tmp_path, "pix2pix", "--amp", "fp16")
    model.set_input(_batch())
    model.optimize_parameters()
    scaler = model.scalers[0]
    scale = scaler.get_scale()
    weights = _params(model)
    # An overflowing gradient: the step must leave the weights alone and halve the scale.
    model.optimizer_G.zero_grad()
    loss = sum(p.sum() for p in model.netG.parameters()) * float("inf")
    model.backward(loss, model.optimizer_G)
    model.step(model.optimizer_G)
    after = _params(model)
    assert all(torch.equal(weights[k], after[k]) for k in weights if k.startswith("G."))
    assert scaler.get_scale() == scale * 0.5

    state = model.training_state()
    fresh = _model(tmp_path, "pix2pix", "--amp", "fp16", seed=1)
    fresh.load_training_state(state)
    assert fresh.scalers[0].get_scale() == scale * 0.5


def test_wgangp_penalty_under_fp16_is_finite(tmp_path) -> None:
    model = _model(tmp_path, "pix2pix", "--amp", "fp16", "--gan_mode", "wgangp")
    model.set_input(_batch())
    model.optimize_parameters()
    assert all(math.isfinite(v) for v in model.get_current_losses().values())


# ---------------------------------------------------------------------------------------------- layout, optimiser
def test_resuming_under_the_other_layout_lays_adam_state_out_like_the_parameters(tmp_path) -> None:
    """Fused Adam reads moments as laid out like their parameter; a state saved with --channels_last off and
    resumed with on must be re-laid out (same values), or the update is scrambled."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _model(tmp_path / "a", "pix2pix", "--channels_last", "off")
    first.set_input(_batch())
    first.optimize_parameters()
    state = first.training_state()
    resumed = _model(tmp_path / "b", "pix2pix", "--channels_last", "on", seed=5)
    resumed.load_training_state(state)
    checked = 0
    for saved_opt, optimizer in zip(first.optimizers, resumed.optimizers):
        for saved_param, param in zip(saved_opt.param_groups[0]["params"], optimizer.param_groups[0]["params"]):
            for key in ("exp_avg", "exp_avg_sq"):
                moment = optimizer.state[param][key]
                assert moment.stride() == param.stride(), key
                assert torch.equal(moment, saved_opt.state[saved_param][key])
                checked += param.dim() == 4 and param.stride() != saved_param.stride()
    assert checked > 10  # conv weights whose layout really changed


def test_channels_last_changes_layout_not_results(tmp_path) -> None:
    batch = _batch()
    results = {}
    for layout in ("off", "on"):
        (tmp_path / layout).mkdir()
        model = _model(tmp_path / layout, "pix2pix", "--amp", "none", "--channels_last", layout, "--no_dropout")
        conv = next(p for p in model.netG.parameters() if p.dim() == 4)
        assert conv.is_contiguous(memory_format=torch.channels_last) == (layout == "on")
        model.set_input(batch)
        assert model.real_A.is_contiguous(memory_format=torch.channels_last) == (layout == "on")
        model.optimize_parameters()
        model.save_networks("latest")
        saved = torch.load(tmp_path / layout / "ck" / "t" / "latest_net_G.pth", weights_only=True)
        assert all(value.is_contiguous() for value in saved.values()), "checkpoint saved in channels_last layout"
        results[layout] = model.get_current_losses(), model.fake_B.detach()
    # One step's losses and outputs agree to rounding. (Parameters after the step may not: Adam's first update
    # is lr * sign(gradient), which rounding flips where a gradient is near zero; gradients themselves are
    # checked against float64 in test_channels_last_gradients_match_float64.)
    torch.testing.assert_close(results["on"][1], results["off"][1], rtol=1e-4, atol=1e-5)
    for name, value in results["off"][0].items():
        assert results["on"][0][name] == pytest.approx(value, rel=1e-4), name


def test_fused_adam_matches_the_reference_update(tmp_path) -> None:
    """make_adam's fused kernel against torch's single-tensor Adam (an independent implementation), with a
    --beta2 other than the default so the option is seen to reach the update."""
    model = _model(tmp_path, "pix2pix", "--amp", "none", "--beta2", "0.99")
    assert model.optimizer_G.defaults["betas"] == (0.5, 0.99)
    assert model.optimizer_G.defaults["fused"]
    params = [p for p in model.netG.parameters()]
    copies = [p.detach().clone().requires_grad_(True) for p in params]
    reference = torch.optim.Adam(copies, lr=model.opt.lr, betas=(model.opt.beta1, model.opt.beta2), foreach=False)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        for p, c in zip(params, copies):
            g = torch.randn(p.shape, generator=generator)
            p.grad, c.grad = torch.empty_like(p).copy_(g), g.clone()  # laid out like p, as autograd does
        model.optimizer_G.step()
        reference.step()
    for p, c in zip(params, copies):
        torch.testing.assert_close(p.detach(), c.detach(), rtol=1e-5, atol=1e-7)


def test_models_declare_a_channels_last_preference() -> None:
    for name in MODELS.names():
        assert isinstance(MODELS.get(name).prefers_channels_last, bool), name


def test_compile_trains_like_eager_and_keeps_checkpoint_keys(tmp_path) -> None:
    """--compile (inductor; about a minute of compiling here): same losses as eager mode, same file keys."""
    batch = _batch()
    losses = {}
    for mode in ("eager", "compiled"):
        (tmp_path / mode).mkdir()
        flags = ["--compile"] if mode == "compiled" else []
        model = _model(tmp_path / mode, "pix2pix", "--amp", "none", "--no_dropout", *flags)
        for _ in range(2):
            model.set_input(batch)
            model.optimize_parameters()
        losses[mode] = model.get_current_losses()
        model.save_networks("latest")
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-3)
    eager = torch.load(tmp_path / "eager" / "ck" / "t" / "latest_net_G.pth", weights_only=True)
    compiled = torch.load(tmp_path / "compiled" / "ck" / "t" / "latest_net_G.pth", weights_only=True)
    assert list(compiled) == list(eager)  # no '_orig_mod.' prefix: the files load anywhere


@pytest.mark.parametrize("netG, layout", [("srresnet", "on"), ("msrresnet", "on"), ("rrdbnet", "off")])
def test_test_time_layout_honours_the_generator_s_opt_out(tmp_path, netG, layout) -> None:
    """test.py's `--channels_last auto` for srgan is NHWC, except for a generator whose registration opts out
    (`nhwc_inference` False: rrdbnet, whose NHWC bf16 convolutions took 3.5 times the memory)."""
    from options import TestOptions

    assert GENERATORS.meta(netG).get("nhwc_inference", True) == (layout == "on")
    opt = TestOptions().parse([*_common(tmp_path), "--model", "srgan", "--netG", netG, "--amp", "bf16"])
    assert opt.channels_last == layout
    assert TestOptions().parse([*_common(tmp_path), "--model", "srgan", "--netG", netG,
                                "--channels_last", "on"]).channels_last == "on"  # asked for: kept
