"""Tests of the published super-resolution generators: rrdbnet (ESRGAN / Real-ESRGAN), srvgg
(SRVGGNetCompact) and msrresnet (BasicSR), their [0, 1] <-> [-1, 1] adaptation, --scale and training.

For every published layout in tests/fixtures/reference/sr_published_weights.json the network built from that
layout's options must have exactly the published state_dict keys and shapes, and, loaded with random weights of
those shapes, must compute what an independent forward written here with torch.nn.functional from the documented
structure computes (fp32, within 1e-5, on an input in [0, 1] passed through the unit-range adaptation).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from helpers import REFERENCE, ROOT
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import create_model, networks
from models.archs import registration
from models.networks import GENERATORS
from models.archs.value_range import adapt_unit_range, is_unit_range_adapted
from options import TrainOptions

PUBLISHED = REFERENCE / "sr_published_weights.json"
NEW_GENERATORS = ("rrdbnet", "srvgg", "msrresnet")
TOLERANCE = 1e-5
StateDict = Dict[str, torch.Tensor]

# Published layout (the JSON's entry) -> our --netG and the options that reproduce it (--ngf is num_feat).
LAYOUTS: Dict[str, Dict[str, Any]] = {
    "realesrgan_x4plus": dict(netG="rrdbnet", ngf=64, n_blocks=23, growth_channels=32, scale=4),
    "realesrnet_x4plus": dict(netG="rrdbnet", ngf=64, n_blocks=23, growth_channels=32, scale=4),
    "realesrgan_x4plus_anime_6b": dict(netG="rrdbnet", ngf=64, n_blocks=6, growth_channels=32, scale=4),
    "realesrgan_x2plus": dict(netG="rrdbnet", ngf=64, n_blocks=23, growth_channels=32, scale=2),
    "realesr_general_x4v3": dict(netG="srvgg", ngf=64, n_conv=32, scale=4),
    "realesr_animevideov3": dict(netG="srvgg", ngf=64, n_conv=16, scale=4),
    "basicsr_msrresnet_x4": dict(netG="msrresnet", ngf=64, n_blocks=16, scale=4),
}
# Entries that are not a layout of ours: the original ESRGAN release's keys, converted on load (tests/models/inference/test_zoo.py).
OTHER_KEY_LAYOUTS = {"esrgan_old_format_x4"}


def _published() -> Dict[str, Any]:
    if not PUBLISHED.is_file():
        pytest.skip(f"{PUBLISHED} is absent: no published layouts to compare with")
    return json.loads(PUBLISHED.read_text())


def _build(layout: Dict[str, Any]) -> nn.Module:
    """define_G as the models call it, with the layout's options (the builder keywords of its from_options)."""
    options = {k: v for k, v in layout.items() if k not in ("netG", "ngf")}
    return networks.define_G(3, 3, layout["ngf"], layout["netG"], "batch", **options)


# Std of the random conv weights times sqrt(fan_in): outputs of order 1, which a 1e-5 tolerance in fp32 needs
# (23 RRDBs without normalisation grow an order of magnitude at 1).
WEIGHT_GAIN = {"rrdbnet": 0.6, "srvgg": 1.0, "msrresnet": 1.0}


def _random_weights(shapes: Dict[str, List[int]], seed: int, gain: float) -> StateDict:
    """Random tensors of the published shapes, scaled so that activations stay of order 1 through the net."""
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for key, shape in shapes.items():
        if len(shape) == 4:  # conv weight (out, in, k, k): std gain / sqrt(fan_in)
            weights[key] = torch.randn(shape, generator=g) * gain / math.sqrt(shape[1] * shape[2] * shape[3])
        elif key.endswith(".bias"):
            weights[key] = torch.randn(shape, generator=g) * 0.05
        else:  # PReLU slopes
            weights[key] = torch.rand(shape, generator=g) * 0.5
    return weights


# ---------------------------------------------------------------------------------------------- independent forwards
# Written from the structures the JSON and the publishers document, with functional ops only.


def _conv(w: StateDict, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w[f"{name}.weight"], w[f"{name}.bias"], padding=1)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def reference_rrdbnet(w: StateDict, x: torch.Tensor, scale: int) -> torch.Tensor:
    """BasicSR's RRDBNet; x2 / x1 pixel-unshuffle the input, padded by reflection to a multiple first and the
    output cropped back, as Real-ESRGAN's inference does for sizes the unshuffle cannot take."""
    h, w_ = x.shape[-2:]
    u = 4 // scale
    if u > 1:
        x = F.pixel_unshuffle(F.pad(x, (0, -w_ % u, 0, -h % u), mode="reflect"), u)
    n_blocks = len({k.split(".")[1] for k in w if re.match(r"body\.\d+\.rdb1\.conv1\.weight$", k)})
    feat = _conv(w, "conv_first", x)
    trunk = feat
    for b in range(n_blocks):
        rrdb_in = trunk
        for r in (1, 2, 3):
            dense = [trunk]
            for j in (1, 2, 3, 4):
                dense.append(_lrelu(_conv(w, f"body.{b}.rdb{r}.conv{j}", torch.cat(dense, 1))))
            trunk = _conv(w, f"body.{b}.rdb{r}.conv5", torch.cat(dense, 1)) * 0.2 + trunk
        trunk = trunk * 0.2 + rrdb_in
    feat = feat + _conv(w, "conv_body", trunk)
    feat = _lrelu(_conv(w, "conv_up1", F.interpolate(feat, scale_factor=2, mode="nearest")))
    feat = _lrelu(_conv(w, "conv_up2", F.interpolate(feat, scale_factor=2, mode="nearest")))
    out = _conv(w, "conv_last", _lrelu(_conv(w, "conv_hr", feat)))
    return out[..., : h * scale, : w_ * scale]


def reference_srvgg(w: StateDict, x: torch.Tensor, scale: int) -> torch.Tensor:
    """SRVGGNetCompact: body.{even} convs, body.{odd} PReLUs except after the last conv, PixelShuffle, plus the
    nearest-upsampled input."""
    last = max(int(k.split(".")[1]) for k in w)
    out = x
    for i in range(0, last + 1, 2):
        out = F.conv2d(out, w[f"body.{i}.weight"], w[f"body.{i}.bias"], padding=1)
        if i < last:
            out = F.prelu(out, w[f"body.{i + 1}.weight"])
    return F.pixel_shuffle(out, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


def reference_msrresnet(w: StateDict, x: torch.Tensor, scale: int) -> torch.Tensor:
    """MSRResNet x4: conv_first + LeakyReLU(0.1), residual blocks x + conv2(ReLU(conv1(x))), two (conv,
    PixelShuffle(2), LeakyReLU(0.1)) stages, conv_hr + LeakyReLU(0.1), conv_last, plus the bilinear input."""
    assert scale == 4
    lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    out = lrelu(_conv(w, "conv_first", x))
    n_blocks = len({k.split(".")[1] for k in w if k.startswith("body.")})
    for b in range(n_blocks):
        out = out + _conv(w, f"body.{b}.conv2", F.relu(_conv(w, f"body.{b}.conv1", out)))
    out = lrelu(F.pixel_shuffle(_conv(w, "upconv1", out), 2))
    out = lrelu(F.pixel_shuffle(_conv(w, "upconv2", out), 2))
    out = _conv(w, "conv_last", lrelu(_conv(w, "conv_hr", out)))
    return out + F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


REFERENCE: Dict[str, Callable[[StateDict, torch.Tensor, int], torch.Tensor]] = {
    "rrdbnet": reference_rrdbnet, "srvgg": reference_srvgg, "msrresnet": reference_msrresnet}


def _in_unit_range(net: nn.Module, unit: torch.Tensor) -> torch.Tensor:
    """`net`'s output for an image in [0, 1], mapped back to [0, 1]: the toolkit feeds it [-1, 1]."""
    with torch.no_grad():
        return (net(unit * 2 - 1) + 1) / 2


# ---------------------------------------------------------------------------------------------- published layouts


def test_every_published_layout_is_tested() -> None:
    published = set(_published()) - {"_about"}
    assert published - OTHER_KEY_LAYOUTS == set(LAYOUTS), "a published layout without options here: add it"


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_published_layout_keys_shapes_and_forward(name: str, tmp_path: Path) -> None:
    entry = _published()[name]
    layout = LAYOUTS[name]
    torch.manual_seed(0)
    net = _build(layout).eval()
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert sorted(set(entry["state_dict"]) - set(got)) == [], "published keys we lack"
    assert sorted(set(got) - set(entry["state_dict"])) == [], "keys we have and the published file lacks"
    assert got == entry["state_dict"]
    assert list(got) == list(entry["state_dict"]), "same keys in another order: the modules are declared differently"

    # A file as published: the state_dict under its wrapper key, read back with weights_only.
    weights = _random_weights(entry["state_dict"], seed=1, gain=WEIGHT_GAIN[layout["netG"]])
    path = tmp_path / entry["file"].split(" ")[0]
    torch.save({entry["wrapper_key"]: weights}, path)
    net.load_state_dict(torch.load(path, weights_only=True)[entry["wrapper_key"]], strict=True)

    torch.manual_seed(2)
    scale = layout["scale"]
    unit = torch.rand(1, 3, 6, 10)  # even sides: the published networks take them as they are
    expected = REFERENCE[layout["netG"]](weights, unit, scale)
    got_out = _in_unit_range(net, unit)
    assert got_out.shape == (1, 3, 6 * scale, 10 * scale)
    # The network's own contribution is compared, not just an interpolation of the input that it adds.
    assert (expected - F.interpolate(unit, scale_factor=scale, mode="nearest")).abs().max() > 0.1
    assert expected.abs().max() < 10, "outputs of order 1: the tolerance is absolute"
    torch.testing.assert_close(got_out, expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("size", [(7, 9), (5, 6), (3, 2), (1, 1)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_rrdbnet_any_size_at_every_scale(scale: int, size: tuple) -> None:
    """Scale 2 and 1 pixel-unshuffle the input: odd sizes are padded by reflection and the output cropped back;
    inputs smaller than the unshuffle factor, which reflection cannot pad, repeat their edge."""
    torch.manual_seed(0)
    net = networks.define_G(3, 3, 8, "rrdbnet", "batch", n_blocks=2, growth_channels=4, scale=scale).eval()
    h, w = size
    unit = torch.rand(1, 3, h, w)
    out = _in_unit_range(net, unit)
    assert out.shape == (1, 3, h * scale, w * scale)
    weights = {k: v.detach() for k, v in net.state_dict().items()}
    if min(h, w) >= 4 // scale:
        torch.testing.assert_close(out, reference_rrdbnet(weights, unit, scale), atol=TOLERANCE, rtol=0)
    else:  # the edge repeated instead
        u = 4 // scale
        padded = F.pad(unit, (0, -w % u, 0, -h % u), mode="replicate")
        expected = reference_rrdbnet(weights, padded, scale)[..., : h * scale, : w * scale]
        torch.testing.assert_close(out, expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("netG", NEW_GENERATORS)
def test_declared_scales_are_made_and_others_refused(netG: str) -> None:
    scales = networks.generator_scales(netG)
    assert scales
    for scale in scales:
        net = networks.define_G(3, 3, 4, netG, "batch", **{**registration.tiny_kwargs(GENERATORS, netG),
                                                           "scale": scale})
        with torch.no_grad():
            assert net(torch.zeros(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)
    for scale in set(range(1, 9)) - set(scales):
        with pytest.raises(ValueError, match="scale"):
            networks.define_G(3, 3, 4, netG, "batch", **{**registration.tiny_kwargs(GENERATORS, netG),
                                                         "scale": scale})


@pytest.mark.parametrize("nc", [(1, 3), (3, 1)], ids=["grey-to-rgb", "rgb-to-grey"])
@pytest.mark.parametrize("netG", ["srvgg", "msrresnet"])
def test_input_skip_with_other_channel_counts(netG: str, nc: tuple) -> None:
    """With zero weights the output is the interpolated input: one channel broadcasts, several are averaged."""
    net = networks.define_G(*nc, 4, netG, "batch", **registration.tiny_kwargs(GENERATORS, netG))
    for p in net.parameters():
        nn.init.zeros_(p)
    x = torch.rand(1, nc[0], 4, 4) * 2 - 1
    with torch.no_grad():
        y = net(x)
    scale = registration.tiny_kwargs(GENERATORS, netG)["scale"]
    mode = {"srvgg": dict(mode="nearest"), "msrresnet": dict(mode="bilinear", align_corners=False)}[netG]
    base = F.interpolate((x + 1) / 2, scale_factor=scale, **mode).mean(1, keepdim=True) * 2 - 1
    torch.testing.assert_close(y, base.expand(1, nc[1], 4 * scale, 4 * scale), atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------- value range


class _Probe(nn.Module):
    """Records the range of what it is given; returns `out` (or its input when None)."""

    def __init__(self, out: float | None = None) -> None:
        super().__init__()
        self.out = out
        self.seen: List[torch.Tensor] = []
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x)
        return x if self.out is None else torch.full_like(x, self.out)


def test_unit_range_hooks_are_inverse_maps() -> None:
    x = torch.linspace(-1, 1, 21).view(1, 1, 3, 7)
    identity = adapt_unit_range(_Probe())
    torch.testing.assert_close(identity(x), x, atol=1e-7, rtol=0)  # identity inside -> identity outside
    assert identity.seen[0].min() == 0 and identity.seen[0].max() == 1  # [-1, 1] arrives as [0, 1]
    torch.testing.assert_close(identity.seen[0], (x + 1) / 2)
    assert torch.equal(adapt_unit_range(_Probe(0.5))(x), torch.zeros_like(x))  # mid-grey stays mid-grey
    assert torch.equal(adapt_unit_range(_Probe(1.0))(x), torch.ones_like(x))  # white stays white
    assert list(identity.state_dict()) == ["conv.weight", "conv.bias"]  # no wrapper: the keys are unchanged


def test_unit_range_adaptation_is_applied_once_by_define_G() -> None:
    with pytest.raises(ValueError, match="already adapted"):
        adapt_unit_range(adapt_unit_range(_Probe()))
    for name in GENERATORS.names():
        net = networks.define_G(3, 3, 4, name, "batch", **registration.tiny_kwargs(GENERATORS, name))
        assert is_unit_range_adapted(net) == (GENERATORS.meta(name).get("value_range") == "unit"), name
    assert {n for n in GENERATORS.names() if GENERATORS.meta(n).get("value_range") == "unit"} >= set(NEW_GENERATORS)


# ---------------------------------------------------------------------------------------------- options


def _train_args(tmp_path: Path, netG: str, *extra: str) -> List[str]:
    tiny = registration.tiny(GENERATORS, netG)
    assert tiny is not None
    return ["--model", "srgan", "--netG", netG, "--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir",
            str(tmp_path / "ck"), "--name", "t", "--ngf", "8", "--ndf", "8", "--crop_size", "32", "--display_id",
            "0", "--netD_head", "conv", "--lambda_perceptual", "0", "--amp", "none", *tiny.flags(), *extra]


def test_srgan_scale_choices_are_the_union_of_the_generators() -> None:
    parser, _ = TrainOptions().gather_options(["--model", "srgan"])
    choices = next(a.choices for a in parser._actions if a.dest == "scale")
    union = {s for n in GENERATORS.names() if networks.upscales(n) for s in networks.generator_scales(n)}
    assert sorted(choices) == sorted(union)
    assert {1, 2, 3, 4, 8} <= union


@pytest.mark.parametrize("netG,scale", [("rrdbnet", "3"), ("msrresnet", "8"), ("msrresnet", "1"),
                                        ("srresnet", "1")])
def test_a_scale_the_generator_cannot_make_is_refused(tmp_path: Path, capsys, netG: str, scale: str) -> None:
    with pytest.raises(SystemExit) as info:
        TrainOptions().parse(_train_args(tmp_path, netG, "--scale", scale, "--crop_size", "48"))
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    can_make = ", ".join(str(s) for s in networks.generator_scales(netG))
    assert f"--netG {netG}" in last and f"--scale {scale}" in last and can_make in last, last


@pytest.mark.parametrize("netG", NEW_GENERATORS)
def test_initialisation_default_and_explicit_flag(tmp_path: Path, netG: str) -> None:
    """The publishers' initialisation is the default for training from scratch; an explicit flag wins."""
    opt = TrainOptions().parse(_train_args(tmp_path, netG))
    expected = GENERATORS.meta(netG).get("option_defaults", {}).get("init_type", "normal")
    assert opt.init_type == expected
    assert TrainOptions().parse(_train_args(tmp_path, netG, "--init_type", "xavier")).init_type == "xavier"
    assert TrainOptions().parse(_train_args(tmp_path, "srresnet")).init_type == "normal"  # unchanged


def _scaled_kaiming(conv: nn.Conv2d) -> bool:
    """Whether `conv` looks initialised as BasicSR's default_init_weights(scale 0.1): kaiming-normal (fan_in,
    gain sqrt(2)) times 0.1 (std within 10%), zero biases."""
    expected = 0.1 * math.sqrt(2.0 / (conv.weight.shape[1] * 9))
    return abs(conv.weight.std().item() - expected) < 0.1 * expected and torch.count_nonzero(conv.bias) == 0


def test_architecture_init_is_the_publishers() -> None:
    """`--init_type architecture` keeps what the constructor did, which is BasicSR's: scaled kaiming on RRDBNet's
    dense blocks (PyTorch's defaults elsewhere) and on every MSRResNet convolution."""
    torch.manual_seed(0)
    rrdb = networks.define_G(3, 3, 64, "rrdbnet", "batch", init_type="architecture", n_blocks=1)
    for name, conv in rrdb.named_modules():
        if isinstance(conv, nn.Conv2d):
            assert _scaled_kaiming(conv) == (".rdb" in name), name
    msr = networks.define_G(3, 3, 64, "msrresnet", "batch", init_type="architecture", n_blocks=2)
    assert all(_scaled_kaiming(m) for m in msr.modules() if isinstance(m, nn.Conv2d))
    # That the constructor's weights are kept, for every generator: tests/models/archs/test_networks.py.


# ---------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("scale", [4, 2])
@pytest.mark.parametrize("netG", NEW_GENERATORS)
def test_trains_under_srgan_in_both_stages(tmp_path: Path, netG: str, scale: int) -> None:
    if scale not in networks.generator_scales(netG):
        pytest.skip(f"{netG} cannot make x{scale}")
    torch.manual_seed(0)
    opt = TrainOptions().parse(_train_args(tmp_path, netG, "--pretrain_epochs", "1", "--lambda_pixel", "1",
                                           "--scale", str(scale)))
    model = create_model(opt)
    model.setup(opt)
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    batch = {"A": F.avg_pool2d(hr, scale), "B": hr, "A_paths": ["a.png"] * 2, "B_paths": ["a.png"] * 2}
    for epoch in (1, 2):  # the pixel stage, then the adversarial one
        model.set_epoch(epoch)
        before = {k: p.detach().clone() for k, p in model.netG.named_parameters()}
        model.set_input(batch)
        model.optimize_parameters()
        assert model.fake_B.shape == hr.shape
        unchanged = [k for k, p in model.netG.named_parameters() if torch.equal(before[k], p)]
        assert unchanged == [], f"epoch {epoch}: generator parameters not updated: {unchanged}"
        losses = model.get_current_losses()
        assert all(math.isfinite(v) for v in losses.values()), losses
    assert losses["G_GAN"] > 0 and losses["D_real"] > 0
    assert is_unit_range_adapted(networks.unwrap(model.netG))
