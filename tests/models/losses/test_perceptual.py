"""The VGG19 perceptual (content) loss of SRGAN: the layer cut, the loss value, weight loading and freezing.

Every test runs offline: weights are random VGG19 tensors written to temporary files (the real ImageNet
file is 548 MB), and the hub tests point TORCH_HOME at a temporary folder with the network forbidden.
"""
from __future__ import annotations

import os
import urllib.error
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch
import torch.nn as nn
import torchvision

from models.losses.perceptual_loss import (
    VGG_LAYER_NAMES,
    VGG_LAYERS,
    PerceptualLoss,
    VGGFeatureExtractor,
    load_vgg19_weights,
)
from util.errors import CheckpointError, ToolkitError

# Written out here rather than imported, so a wrong constant in the module fails the tests.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
WEIGHTS_URL = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url
WEIGHTS_FILE = os.path.basename(WEIGHTS_URL)  # vgg19-dcbb9e9d.pth

# (layer, before_activation) -> (cut k into vgg19().features, (block i, conv j) of phi_i,j)
CUTS: Dict[Tuple[str, bool], Tuple[int, Tuple[int, int]]] = {
    ("54", False): (36, (5, 4)),
    ("54", True): (35, (5, 4)),
    ("22", False): (9, (2, 2)),
    ("22", True): (8, (2, 2)),
}


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] -> ImageNet statistics, as torchvision's pretrained VGG expects."""
    return ((x + 1) / 2 - MEAN) / STD


@pytest.fixture(scope="module")
def reference_vgg() -> nn.Module:
    """torchvision's vgg19 with random weights (and non-zero biases, so a bias mix-up shows)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vgg = torchvision.models.vgg19(weights=None)
        with torch.no_grad():
            for module in vgg.features:
                if isinstance(module, nn.Conv2d):
                    module.bias.normal_(0.0, 0.05)
    return vgg.eval()


@pytest.fixture(scope="module")
def features_file(reference_vgg, tmp_path_factory) -> Path:
    """A state_dict with all of vgg19's `features.*` tensors and nothing else."""
    path = tmp_path_factory.mktemp("vgg") / "vgg19_features.pth"
    torch.save({f"features.{k}": v for k, v in reference_vgg.features.state_dict().items()}, path)
    return path


@pytest.fixture(scope="module")
def vgg22_file(reference_vgg, tmp_path_factory) -> Path:
    """Only the tensors phi_2,2 needs: the convolutions at features 0, 2, 5 and 7."""
    path = tmp_path_factory.mktemp("vgg22") / "vgg19_phi22.pth"
    state = {f"features.{k}": v for k, v in reference_vgg.features[:9].state_dict().items()}
    assert sorted(state) == sorted(f"features.{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias"))
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def images() -> Tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    sr = torch.rand(1, 3, 32, 32, generator=generator) * 2 - 1  # (N, 3, H, W) in [-1, 1]
    hr = torch.rand(1, 3, 32, 32, generator=generator) * 2 - 1
    return sr, hr


def test_layer_table_names():
    assert VGG_LAYER_NAMES == ("54", "22")
    assert set(VGG_LAYERS) == {layer for layer, _ in CUTS}


@pytest.mark.parametrize("layer, before_activation", list(CUTS))
def test_cut_is_phi_ij_of_torchvision_vgg19(reference_vgg, features_file, images, layer, before_activation):
    k, (block, conv) = CUTS[(layer, before_activation)]
    features = reference_vgg.features
    # What torchvision's module list looks like around the cut, so that a wrong table (or a changed
    # torchvision) fails here rather than silently measuring another layer.
    conv_index = k - 1 if before_activation else k - 2
    assert isinstance(features[conv_index], nn.Conv2d)
    assert isinstance(features[conv_index + 1], nn.ReLU)
    assert isinstance(features[conv_index + 2], nn.MaxPool2d)  # phi_i,j with j the last conv of block i
    assert isinstance(features[k - 1], nn.Conv2d if before_activation else nn.ReLU)
    before = list(features[:conv_index + 1])
    assert sum(isinstance(m, nn.MaxPool2d) for m in before) + 1 == block
    last_pool = max((i for i, m in enumerate(before) if isinstance(m, nn.MaxPool2d)), default=-1)
    assert sum(isinstance(m, nn.Conv2d) for m in before[last_pool + 1:]) == conv

    extractor = VGGFeatureExtractor(layer, before_activation, weights_path=str(features_file))
    assert len(extractor.features) == k
    assert [type(m) for m in extractor.features] == [type(m) for m in features[:k]]

    x = images[0]
    with torch.no_grad():
        expected = features[:k](imagenet_normalise(x))
        got = extractor(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer, weights", [("22", "vgg22_file"), ("54", "features_file")])
def test_loss_matches_hand_computation(reference_vgg, images, request, layer, weights):
    path = request.getfixturevalue(weights)
    sr, hr = images
    k = CUTS[(layer, False)][0]
    with torch.no_grad():
        f_sr = reference_vgg.features[:k](imagenet_normalise(sr))
        f_hr = reference_vgg.features[:k](imagenet_normalise(hr))
    expected = ((f_sr - f_hr) ** 2).sum() / f_sr.numel()
    criterion = PerceptualLoss(layer, weights_path=str(path))
    loss = criterion(sr, hr)
    assert loss.dim() == 0
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-7)
    assert criterion(hr, hr).item() == 0.0


def test_grey_input_is_repeated_to_rgb(vgg22_file, images):
    extractor = VGGFeatureExtractor("22", weights_path=str(vgg22_file))
    grey = images[0][:, :1]  # (N, 1, H, W)
    with torch.no_grad():
        torch.testing.assert_close(extractor(grey), extractor(grey.repeat(1, 3, 1, 1)))


def test_normalisation_buffers_stay_out_of_state_dict(vgg22_file):
    extractor = VGGFeatureExtractor("22", weights_path=str(vgg22_file))
    assert {name for name, _ in extractor.named_buffers()} == {"mean", "std"}
    assert all(key.startswith("features.") for key in extractor.state_dict())
    torch.testing.assert_close(extractor.mean, MEAN)
    torch.testing.assert_close(extractor.std, STD)


def test_unknown_layer_lists_valid_names():
    with pytest.raises(KeyError) as err:
        PerceptualLoss("33", weights_path="/does/not/exist.pth")  # the name is checked before any loading
    assert "'33'" in str(err.value) and "54" in str(err.value) and "22" in str(err.value)


def test_phi22_only_file_loads_for_22_and_is_refused_for_54(vgg22_file):
    for before_activation in (False, True):
        VGGFeatureExtractor("22", before_activation, weights_path=str(vgg22_file))
    weights = load_vgg19_weights(str(vgg22_file), 9)
    assert sorted(weights) == sorted(f"features.{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias"))

    with pytest.raises(CheckpointError) as err:
        VGGFeatureExtractor("54", weights_path=str(vgg22_file))
    message = str(err.value)
    assert str(vgg22_file) in message
    assert "features.10.weight" in message  # the first missing tensor
    assert WEIGHTS_FILE in message and "vgg19" in message
    assert err.value.exit_code == 2


def test_full_torchvision_state_dict_loads(reference_vgg, tmp_path, images):
    path = tmp_path / "vgg19_full.pth"
    full = reference_vgg.state_dict()
    assert any(key.startswith("classifier.") for key in full)
    torch.save(full, path)
    extractor = VGGFeatureExtractor("54", weights_path=str(path))
    with torch.no_grad():
        expected = reference_vgg.features[:36](imagenet_normalise(images[0]))
        torch.testing.assert_close(extractor(images[0]), expected, rtol=1e-4, atol=1e-5)


def test_wrong_shapes_and_non_state_dicts_are_refused(reference_vgg, tmp_path):
    state = {f"features.{k}": v for k, v in reference_vgg.features[:9].state_dict().items()}
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)  # a grey-input VGG
    bad_shape = tmp_path / "bad_shape.pth"
    torch.save(state, bad_shape)
    with pytest.raises(CheckpointError) as err:
        load_vgg19_weights(str(bad_shape), 9)
    assert str(bad_shape) in str(err.value)
    assert "(64, 1, 3, 3)" in str(err.value) and "(64, 3, 3, 3)" in str(err.value)

    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(CheckpointError, match="does not hold a state_dict"):
        load_vgg19_weights(str(not_a_dict), 9)

    with pytest.raises(CheckpointError, match="missing.pth"):
        load_vgg19_weights(str(tmp_path / "missing.pth"), 9)


def _empty_torch_home(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert Path(torch.hub.get_dir()) / "checkpoints" == cache  # nothing has overridden the hub folder
    return cache


def _assert_download_advice(message: str, cache: Path) -> None:
    assert "could not be downloaded" in message and WEIGHTS_URL in message
    assert str(cache) in message and WEIGHTS_FILE in message
    assert "--vgg_weights" in message
    assert "--lambda_perceptual 0" in message
    assert "\n" not in message  # the CLI prints it as one line


def test_failed_download_says_how_to_fix(monkeypatch, tmp_path):
    cache = _empty_torch_home(monkeypatch, tmp_path)
    calls = []

    def offline(url, **kwargs):
        calls.append((url, kwargs))
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(CheckpointError) as err:
        PerceptualLoss()
    assert isinstance(err.value, ToolkitError) and err.value.exit_code == 2
    _assert_download_advice(str(err.value), cache)
    assert "name resolution" in str(err.value)
    assert calls == [(WEIGHTS_URL, calls[0][1])] and calls[0][1]["weights_only"] is True


def test_offline_without_cache_fails_through_torch_hub(monkeypatch, tmp_path, forbid_network):
    cache = _empty_torch_home(monkeypatch, tmp_path)
    with pytest.raises(CheckpointError) as err:
        PerceptualLoss("22")
    _assert_download_advice(str(err.value), cache)
    assert forbid_network, "torch hub should have tried (and been refused) a connection"
    assert not (cache / WEIGHTS_FILE).exists()  # no half-downloaded file left to be mistaken for weights


def test_cached_weights_are_used_without_network(monkeypatch, tmp_path, forbid_network, features_file,
                                                 reference_vgg, images):
    cache = _empty_torch_home(monkeypatch, tmp_path)
    cache.mkdir(parents=True)
    (cache / WEIGHTS_FILE).symlink_to(features_file)
    from_cache = VGGFeatureExtractor("54")
    assert forbid_network == []
    with torch.no_grad():
        expected = reference_vgg.features[:36](imagenet_normalise(images[0]))
        torch.testing.assert_close(from_cache(images[0]), expected, rtol=1e-4, atol=1e-5)


def test_damaged_cache_file_is_named(monkeypatch, tmp_path, forbid_network):
    cache = _empty_torch_home(monkeypatch, tmp_path)
    cache.mkdir(parents=True)
    (cache / WEIGHTS_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as err:
        PerceptualLoss("22")
    assert str(cache / WEIGHTS_FILE) in str(err.value) and "delete" in str(err.value)
    assert forbid_network == []


def test_vgg_is_frozen_in_eval_and_passes_gradients_to_sr(vgg22_file, images):
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
            self.criterion = PerceptualLoss("22", weights_path=str(vgg22_file))

    model = Model().train()
    vgg = model.criterion.vgg
    assert model.training and model.net.training
    assert not vgg.training and not any(m.training for m in vgg.modules())
    assert not any(p.requires_grad for p in vgg.parameters())

    vgg_before = {k: v.clone() for k, v in vgg.state_dict().items()}
    net_before = {k: v.clone() for k, v in model.net.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)  # the careless case: VGG's parameters included
    lr_input, hr = images
    hr = hr.clone().requires_grad_(True)
    sr = model.net(lr_input)  # (N, 3, H, W)
    sr.retain_grad()
    loss = model.criterion(sr, hr)
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert hr.grad is None  # the target's features are computed without a graph
    assert all(p.grad is None for p in vgg.parameters())
    optimizer.step()

    for key, value in vgg.state_dict().items():
        assert torch.equal(value, vgg_before[key]), key
    assert any(not torch.equal(v, net_before[k]) for k, v in model.net.state_dict().items())
    model.train()
    assert not vgg.training
