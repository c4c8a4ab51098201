"""Tests of the architectures behind `models.networks`: generators, discriminators, norms, initialisation.

Every test parametrizes over the registries and builds each entry's tiny construction (the `tiny=Tiny(...)` of
its registration, models/archs/registration.py), so a newly registered architecture is picked up; one that declares
no tiny construction is skipped with a reason saying what to add. Expected sizes are measured or derived from
the layers, never read back from the metadata under test.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import pytest
from helpers import REFERENCE, ROOT
import torch
import torch.nn as nn

from models import networks
from models.archs import registration
from models.networks import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORM_LAYERS

STATE_DICT_KEYS = REFERENCE / "state_dict_keys.json"

# Generators with a tiny construction: name -> (input side, batch size), and the builder arguments it takes.
TINY_GENERATORS: Dict[str, Tuple[int, int]] = {
    name: (tiny.side, tiny.batch) for name in GENERATORS.names()
    if (tiny := registration.tiny(GENERATORS, name)) is not None}
TINY_D: Dict[str, Dict[str, Any]] = {
    name: registration.tiny_kwargs(DISCRIMINATORS, name) for name in DISCRIMINATORS.names()
    if registration.tiny(DISCRIMINATORS, name) is not None}


def _tiny_G(netG: str, input_nc: int = 3, output_nc: int = 3, norm: str = "batch", **kwargs: Any) -> nn.Module:
    return networks.define_G(input_nc, output_nc, 4, netG, norm, **kwargs,
                             **registration.tiny_kwargs(GENERATORS, netG))


# Super-resolution generators: output side = input side * the scale of their tiny construction; linear output.
UPSCALE = {name: registration.tiny_kwargs(GENERATORS, name).get("scale") for name in TINY_GENERATORS
           if networks.upscales(name)}


def _takes_side(net: nn.Module, side: int, factor: int) -> bool:
    """Whether `net` maps a side x side input to a (side * factor)-sided output (an error means it does not)."""
    try:
        with torch.no_grad():
            y = net(torch.zeros(1, 3, side, side))
    except (RuntimeError, ValueError):
        return False
    return tuple(y.shape[-2:]) == (side * factor, side * factor)


class _Measured(dict):
    """name -> value, measured by `measure(name)` on first use (building networks at import would be slow)."""

    def __init__(self, measure: Callable[[str], Any]) -> None:
        super().__init__()
        self.measure = measure

    def __missing__(self, name: str) -> Any:
        self[name] = value = self.measure(name)
        return value


def _divisor_of_sides_taken(netG: str) -> int:
    """The size divisor by behaviour: the greatest common divisor of the input sides in [s, 2s] that the tiny
    generator maps to the expected size, s its tiny side (the smallest sides may be refused for other
    reasons: a ResNet's reflection padding needs more than one pixel in its 1/4-size blocks)."""
    net = _tiny_G(netG).eval()
    factor = UPSCALE.get(netG) or 1
    side = TINY_GENERATORS[netG][0]
    return math.gcd(*(s for s in range(side, 2 * side + 1) if _takes_side(net, s, factor)))


EXPECTED_SIZE_DIVISOR = _Measured(_divisor_of_sides_taken)


def _layer_arithmetic_shape(net: nn.Module, side: int) -> Tuple[int, ...]:
    """Output shape (without the batch) of a feed-forward network on a side x side input, from its layers'
    hyper-parameters alone: convolutions (k, s, p, d), upsampling, adaptive pooling, flattening and linear layers."""
    channels, flat = 0, None
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            (k, _), (s, _), (p, _), (d, _) = m.kernel_size, m.stride, m.padding, m.dilation
            side, channels = (side + 2 * p - d * (k - 1) - 1) // s + 1, m.out_channels
        elif isinstance(m, nn.Upsample):  # a U-Net decoder's (unet_sn), registered in the order it runs
            side = int(side * m.scale_factor)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            side = m.output_size if isinstance(m.output_size, int) else m.output_size[0]
        elif isinstance(m, nn.Flatten):
            flat = channels * side * side
        elif isinstance(m, nn.Linear):
            flat = m.out_features
    return (channels, side, side) if flat is None else (flat,)


def _d_side(netD: str) -> Optional[Callable[[int, int], int]]:
    """(input side h, n_layers_D n) -> output side by layer arithmetic; None for one logit per image, (N, 1)."""
    def side(h: int, n: int) -> int:
        return _layer_arithmetic_shape(networks.define_D(6, 8, netD, n, "none", **TINY_D[netD]), h)[-1]

    whole_image = _layer_arithmetic_shape(networks.define_D(6, 8, netD, 3, "none", **TINY_D[netD]), 64) == (1,)
    return None if whole_image else side


# Discriminators: name -> expected output side for an input side `h` and n_layers_D `n`.
EXPECTED_D_SIDE = _Measured(_d_side)


def _skip_unknown(name: str, known: dict, what: str) -> None:
    if name not in known:
        pytest.skip(f"{what} {name!r} is registered without a tiny construction: add tiny=Tiny(...) to its "
                    f"registration (models/archs/registration.py)")


# ---------------------------------------------------------------------------------------------- generators


@pytest.mark.parametrize("nc", [(3, 3), (1, 3), (3, 1)], ids=lambda nc: f"in{nc[0]}out{nc[1]}")
@pytest.mark.parametrize("norm", NORM_LAYERS.names())
@pytest.mark.parametrize("netG", GENERATORS.names())
def test_generator_shape_and_range(netG: str, norm: str, nc: Tuple[int, int]) -> None:
    _skip_unknown(netG, TINY_GENERATORS, "generator")
    side, batch = TINY_GENERATORS[netG]
    input_nc, output_nc = nc
    torch.manual_seed(0)
    net = _tiny_G(netG, input_nc, output_nc, norm, use_dropout=False, init_type="normal", init_gain=0.02)
    x = torch.rand(batch, input_nc, side, side) * 2 - 1
    with torch.no_grad():
        y = net(x)
        y2 = net(-x)
    out_side = side * UPSCALE.get(netG, 1)
    assert y.shape == (batch, output_nc, out_side, out_side)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()
    if netG not in UPSCALE:
        assert y.min() >= -1.0 and y.max() <= 1.0  # tanh output
    assert not torch.equal(y, y2), "the output does not depend on the input"


@pytest.mark.parametrize("netG", GENERATORS.names())
def test_generator_backward_reaches_first_layer(netG: str) -> None:
    _skip_unknown(netG, TINY_GENERATORS, "generator")
    side, batch = TINY_GENERATORS[netG]
    torch.manual_seed(0)
    net = _tiny_G(netG, use_dropout=False)
    first_conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 3
    net(torch.rand(batch, 3, side, side) * 2 - 1).square().mean().backward()
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("netG", GENERATORS.names())
def test_size_divisor(netG: str) -> None:
    _skip_unknown(netG, TINY_GENERATORS, "generator")
    assert networks.size_divisor(netG) == EXPECTED_SIZE_DIVISOR[netG]


def test_size_divisor_unknown_name() -> None:
    with pytest.raises(KeyError, match="resnet_9blocks"):
        networks.size_divisor("no_such_net")


@pytest.mark.parametrize("netG", ["resnet_9blocks", "resnet_6blocks"])
def test_resnet_accepts_non_square_multiple_of_4(netG: str) -> None:
    net = networks.define_G(3, 3, 4, netG, "instance")
    with torch.no_grad():
        y = net(torch.rand(1, 3, 36, 52) * 2 - 1)
    assert y.shape == (1, 3, 36, 52)


@pytest.mark.parametrize("netG,dropout_modules", [("resnet_6blocks", 6), ("resnet_9blocks", 9), ("unet_128", 2),
                                                  ("unet_256", 3)])
def test_use_dropout_adds_dropout_layers(netG: str, dropout_modules: int) -> None:
    """ResNet: one dropout per residual block; U-Net: one per extra 8*ngf level (num_downs - 5)."""
    with_dropout = networks.define_G(3, 3, 4, netG, "batch", use_dropout=True)
    without = networks.define_G(3, 3, 4, netG, "batch", use_dropout=False)
    assert sum(isinstance(m, nn.Dropout) for m in with_dropout.modules()) == dropout_modules
    assert not any(isinstance(m, nn.Dropout) for m in without.modules())


# ---------------------------------------------------------------------------------------------- discriminators


@pytest.mark.parametrize("norm", NORM_LAYERS.names())
@pytest.mark.parametrize("netD", DISCRIMINATORS.names())
def test_discriminator_shape(netD: str, norm: str) -> None:
    _skip_unknown(netD, TINY_D, "discriminator")
    torch.manual_seed(0)
    net = networks.define_D(6, 8, netD, 3, norm, **TINY_D[netD])
    x = torch.rand(2, 6, 64, 64) * 2 - 1
    y = net(x)
    expected = EXPECTED_D_SIDE[netD]
    assert y.shape == ((2, 1) if expected is None else (2, 1, expected(64, 3), expected(64, 3)))
    assert torch.isfinite(y).all()
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_basic_patchgan_default_width_on_256() -> None:
    net = networks.define_D(3, 64, "basic", 3, "batch")
    with torch.no_grad():
        y = net(torch.rand(1, 3, 256, 256) * 2 - 1)
    assert y.shape == (1, 1, 30, 30)


def test_basic_ignores_n_layers_D() -> None:
    a = networks.define_D(3, 4, "basic", 5, "batch")
    b = networks.define_D(3, 4, "n_layers", 3, "batch")
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    with torch.no_grad():
        assert a(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("n_layers,side", [(1, 126), (2, 62), (3, 30), (4, 14)])
def test_n_layers_shapes(n_layers: int, side: int) -> None:
    assert side == 256 // 2**n_layers - 2  # the documented formula
    net = networks.define_D(3, 4, "n_layers", n_layers, "instance")
    with torch.no_grad():
        y = net(torch.rand(1, 3, 256, 256))
    assert y.shape == (1, 1, side, side)
    n_strided = sum(1 for m in net.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2))
    assert n_strided == n_layers


def test_pixel_discriminator_keeps_size_and_is_per_pixel() -> None:
    net = networks.define_D(3, 8, "pixel", 3, "none").double().eval()
    x = torch.rand(1, 3, 20, 24, dtype=torch.float64)
    y = net(x)
    assert y.shape == (1, 1, 20, 24)
    x2 = x.clone()
    x2[0, :, 7, 11] += 1.0
    changed = (net(x2) - y).abs() > 1e-12
    assert changed.nonzero().tolist() == [[0, 0, 7, 11]]


# The 70x70 PatchGAN. Layers from the input: 5 convs, kernel 4, padding 1, strides 2,2,2,1,1.
#   receptive field = 1 + sum_l (k-1) * prod(strides before l) = 1 + 3 * (1 + 2 + 4 + 8 + 8) = 70
#   jump (output stride) = 2 * 2 * 2 = 8
#   offset = sum_l p * prod(strides before l) = 1 + 2 + 4 + 8 + 8 = 23
# so output cell i sees input rows [8i - 23, 8i + 46] (70 rows, those below 0 or above H-1 being padding).
RF, JUMP, OFFSET = 70, 8, 23


def _window(i: int) -> Tuple[int, int]:
    return JUMP * i - OFFSET, JUMP * i - OFFSET + RF - 1


def _expected_cells(pixel: int, n_out: int) -> List[int]:
    return [i for i in range(n_out) if _window(i)[0] <= pixel <= _window(i)[1]]


@pytest.fixture(scope="module")
def basic_d_double() -> nn.Module:
    torch.manual_seed(0)
    # norm 'none' and eval mode: no statistic couples distant pixels, so a change stays local.
    return networks.define_D(3, 8, "basic", 3, "none").double().eval()


def test_basic_receptive_field_is_70(basic_d_double: nn.Module) -> None:
    """The gradient of one interior output cell is non-zero exactly on its 70x70 input window."""
    x = torch.rand(1, 3, 256, 256, dtype=torch.float64, requires_grad=True)
    out = basic_d_double(x)
    assert out.shape == (1, 1, 30, 30)
    i, j = 15, 12
    (grad,) = torch.autograd.grad(out[0, 0, i, j], x)
    support = grad.abs().sum(dim=(0, 1)) > 0  # (256, 256)
    rows = support.any(dim=1).nonzero().flatten()
    cols = support.any(dim=0).nonzero().flatten()
    assert (rows.min().item(), rows.max().item()) == _window(i) == (97, 166)
    assert (cols.min().item(), cols.max().item()) == _window(j) == (73, 142)
    assert int(support.sum()) == RF * RF  # the whole window, nothing outside it


@pytest.mark.parametrize("pixel", [(128, 128), (0, 0), (255, 3), (69, 70)])
def test_basic_perturbation_changes_exactly_the_covering_cells(basic_d_double: nn.Module,
                                                                 pixel: Tuple[int, int]) -> None:
    torch.manual_seed(1)
    x = torch.rand(1, 3, 256, 256, dtype=torch.float64)
    with torch.no_grad():
        base = basic_d_double(x)
        x2 = x.clone()
        x2[0, :, pixel[0], pixel[1]] += 1.0
        changed = (basic_d_double(x2) - base).abs()[0, 0] > 1e-12  # (30, 30)
    got: Set[Tuple[int, int]] = {tuple(ij) for ij in changed.nonzero().tolist()}  # type: ignore[misc]
    expected = {(a, b) for a in _expected_cells(pixel[0], 30) for b in _expected_cells(pixel[1], 30)}
    assert got == expected
    if pixel == (128, 128):
        assert expected == {(a, b) for a in range(11, 19) for b in range(11, 19)}  # hand-checked: 8x8 cells


# ---------------------------------------------------------------------------------------------- reference keys


def _reference_entries() -> list:
    if not STATE_DICT_KEYS.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{STATE_DICT_KEYS} is absent: no reference "
                                                                  f"state_dict keys to compare with"))]
    return sorted(json.loads(STATE_DICT_KEYS.read_text()))


@pytest.mark.parametrize("entry", _reference_entries())
def test_state_dict_matches_reference(entry: str) -> None:
    """Keys and shapes equal the reference's, so its published checkpoints load (and ours load there)."""
    expected = json.loads(STATE_DICT_KEYS.read_text())[entry]
    parts = entry.split(":")
    if parts[0] == "G":
        _, netG, norm = parts
        net = networks.define_G(3, 3, 64, netG, norm, use_dropout=False)
    elif parts[0] == "D":
        _, netD, norm, nc = parts
        assert nc.startswith("in")
        net = networks.define_D(int(nc[2:]), 64, netD, 3, norm)
    else:
        pytest.fail(f"unknown entry kind {entry!r}")
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert sorted(set(expected) - set(got)) == [], "keys the reference has and we lack"
    assert sorted(set(got) - set(expected)) == [], "keys we have and the reference lacks"
    assert got == expected


# ---------------------------------------------------------------------------------------------- registries


@pytest.mark.parametrize("call", [
    lambda: networks.define_G(3, 3, 4, "no_such_net"),
    lambda: networks.define_D(3, 4, "no_such_net"),
    lambda: networks.define_G(3, 3, 4, "resnet_6blocks", norm="no_such_net"),
    lambda: networks.define_D(3, 4, "basic", init_type="no_such_net"),
    lambda: networks.get_norm_layer("no_such_net"),
], ids=["netG", "netD", "norm", "init_type", "get_norm_layer"])
def test_unknown_names_raise_keyerror_listing_valid(call) -> None:
    with pytest.raises(KeyError) as info:
        call()
    message = str(info.value)
    assert "no_such_net" in message
    registries = [GENERATORS, DISCRIMINATORS, NORM_LAYERS, INIT_TYPES]
    assert any(all(name in message for name in reg.names()) for reg in registries), message


@pytest.mark.parametrize("norm", NORM_LAYERS.names())
def test_norm_layers(norm: str) -> None:
    layer = networks.get_norm_layer(norm)(5)
    x = torch.randn(2, 5, 6, 7) * 3 + 2
    y = layer.train()(x)
    assert y.shape == x.shape
    if norm == "batch":
        assert isinstance(layer, nn.BatchNorm2d) and layer.affine and layer.track_running_stats
        torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(5), atol=1e-5, rtol=0)
    elif norm == "instance":
        assert isinstance(layer, nn.InstanceNorm2d) and not layer.affine and not layer.track_running_stats
        torch.testing.assert_close(y.mean(dim=(2, 3)), torch.zeros(2, 5), atol=1e-5, rtol=0)
        assert list(layer.state_dict()) == []  # nothing to save: reference checkpoints hold no IN keys
    elif norm == "none":
        assert torch.equal(y, x)
    elif norm == "syncbatch":
        # One process: plain BatchNorm, with BatchNorm's state_dict keys (checkpoints move between the two).
        assert isinstance(layer, nn.SyncBatchNorm) and layer.affine and layer.track_running_stats
        torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(5), atol=1e-5, rtol=0)
        assert list(layer.state_dict()) == list(networks.get_norm_layer("batch")(5).state_dict())
    else:
        pytest.fail(f"norm {norm!r} has no expectation here: add one")


# ---------------------------------------------------------------------------------------------- initialisation


def _convs(net: nn.Module) -> List[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def _fans(w: torch.Tensor) -> Tuple[int, int]:
    receptive = w[0][0].numel()
    return w.shape[1] * receptive, w.shape[0] * receptive  # (fan_in, fan_out) as torch.nn.init counts them


def _expected_std(init_type: str, w: torch.Tensor, gain: float) -> float:
    fan_in, fan_out = _fans(w)
    if init_type == "normal":
        return gain
    if init_type == "xavier":
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    if init_type == "kaiming":  # a=0, mode fan_in, leaky_relu nonlinearity: gain sqrt(2), init_gain unused
        return math.sqrt(2.0 / fan_in)
    if init_type == "orthogonal":  # a (semi-)orthogonal matrix of scale gain
        rows, cols = w.shape[0], w[0].numel()
        return gain * math.sqrt(min(rows, cols) / (rows * cols))
    raise KeyError(init_type)


@pytest.mark.parametrize("gain", [0.02, 0.5])
@pytest.mark.parametrize("init_type", INIT_TYPES.names())
def test_init_weight_statistics(init_type: str, gain: float) -> None:
    if init_type == "architecture":
        pytest.skip("'architecture' keeps the constructor's weights: test_architecture_init_keeps_the_constructors")
    if init_type not in ("normal", "xavier", "kaiming", "orthogonal"):
        pytest.skip(f"init type {init_type!r} has no statistical expectation here")
    torch.manual_seed(0)
    net = networks.define_D(3, 64, "basic", 3, "batch", init_type=init_type, init_gain=gain)
    checked = 0
    for conv in _convs(net):
        w = conv.weight.detach()
        if w.numel() >= 3000:  # enough samples for a 10% bound on the std
            expected = _expected_std(init_type, w, gain)
            assert abs(w.std().item() - expected) < 0.1 * expected, (conv, w.std().item(), expected)
            assert abs(w.mean().item()) < 0.1 * expected
            if init_type in ("normal", "xavier", "kaiming") and w.numel() >= 100_000:
                # Gaussian, not uniform with the same std: kurtosis 3 (a uniform law has 1.8)
                z = (w.double() - w.double().mean()) / w.double().std()
                assert abs(z.pow(4).mean().item() - 3.0) < 0.2, (conv, z.pow(4).mean().item())
            checked += 1
        if conv.bias is not None:
            assert torch.count_nonzero(conv.bias) == 0
    assert checked >= 4
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_weights = torch.cat([m.weight.detach() for m in bns])
    assert bn_weights.numel() == 128 + 256 + 512
    assert abs(bn_weights.mean().item() - 1.0) < gain * 0.2  # N(1, gain): std of the mean is gain/30
    assert 0.8 * gain < bn_weights.std().item() < 1.2 * gain
    assert all(torch.count_nonzero(m.bias) == 0 for m in bns)


@pytest.mark.parametrize("netG", GENERATORS.names())
def test_architecture_init_keeps_the_constructors(netG: str) -> None:
    """`--init_type architecture`: the weights the builder made (PyTorch's defaults, or the publishers' scheme)."""
    _skip_unknown(netG, TINY_GENERATORS, "generator")
    kwargs = registration.tiny_kwargs(GENERATORS, netG)
    torch.manual_seed(5)
    built = networks.define_G(3, 3, 4, netG, "batch", init_type="architecture", **kwargs).state_dict()
    torch.manual_seed(5)
    bare = GENERATORS.get(netG)(3, 3, 4, networks.get_norm_layer("batch"), False, **kwargs).state_dict()
    assert list(built) == list(bare)
    assert all(torch.equal(built[k], bare[k]) for k in bare)
    torch.manual_seed(5)
    normal = networks.define_G(3, 3, 4, netG, "batch", init_type="normal", **kwargs).state_dict()
    assert any(not torch.equal(normal[k], bare[k]) for k in bare if k.endswith("weight"))


@pytest.mark.parametrize("gain", [1.0, 0.02])
def test_orthogonal_init_gives_scaled_orthonormal_rows_or_columns(gain: float) -> None:
    torch.manual_seed(0)
    nets = [networks.define_D(3, 16, "basic", 3, "instance", init_type="orthogonal", init_gain=gain),
            networks.define_G(3, 3, 8, "resnet_6blocks", "instance", init_type="orthogonal", init_gain=gain)]
    n_checked = 0
    for net in nets:
        for conv in _convs(net):
            w = conv.weight.detach().reshape(conv.weight.shape[0], -1).double()  # (rows, cols)
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            torch.testing.assert_close(gram, torch.eye(gram.shape[0], dtype=torch.float64) * gain**2,
                                       atol=1e-5 * gain**2, rtol=0)
            n_checked += 1
    assert n_checked > 10


def test_init_is_applied_to_transposed_convs() -> None:
    torch.manual_seed(0)
    net = networks.define_G(3, 3, 16, "resnet_6blocks", "batch", init_type="normal", init_gain=0.02)
    ups = [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 2
    for up in ups:
        assert abs(up.weight.std().item() - 0.02) < 0.002


def test_init_is_seeded_by_torch_rng() -> None:
    torch.manual_seed(3)
    a = networks.define_G(3, 3, 4, "unet_128", "batch").state_dict()
    torch.manual_seed(3)
    b = networks.define_G(3, 3, 4, "unet_128", "batch").state_dict()
    torch.manual_seed(4)
    c = networks.define_G(3, 3, 4, "unet_128", "batch").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_define_on_cpu_has_no_dataparallel_wrapper() -> None:
    net = networks.define_G(3, 3, 4, "resnet_6blocks", "batch", gpu_ids=())
    assert networks.unwrap(net) is net
    assert not any(k.startswith("module.") for k in net.state_dict())
    assert all(p.device.type == "cpu" for p in net.parameters())
    wrapped = nn.DataParallel(net)
    assert networks.unwrap(wrapped) is net
