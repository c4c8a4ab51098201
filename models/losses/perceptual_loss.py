"""The VGG19 content loss of SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution
Using a Generative Adversarial Network", eq. 5).

Pixel-wise MSE drives a super-resolution network towards the blurry average of all plausible outputs.
SRGAN instead compares the generated image and the ground truth in the feature space of an
ImageNet-trained VGG19: `phi_i,j` is the feature map of the j-th convolution (after its ReLU) before the
i-th max-pooling. The paper's default is `phi_5,4` ("VGG54"); `phi_2,2` ("VGG22") keeps more low-level
detail. ESRGAN (Wang et al. 2018) argues for taking the features *before* the activation, where they are
denser; `before_activation=True` gives that variant. Real-ESRGAN (Wang et al. 2021) sums weighted L1 distances
over five layers (conv1_2 0.1, conv2_2 0.1, conv3_4 1, conv4_4 1, conv5_4 1, before activation): `PerceptualLoss`
takes such a {layer: weight} table and an `l1` or `mse` criterion, and runs the VGG once, through the deepest
layer, taking each feature map on the way (`--perceptual_layers`, `parse_perceptual_layers`).

The VGG is a fixed measuring instrument: its weights must be the real ImageNet ones (random VGG features
make a meaningless loss, so a failed load is an error, never a fallback), it is frozen, and it stays in
eval mode whatever the training loop does to the modules around it.
"""
from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlparse

import torch
import torch.nn as nn
import torchvision

from util.errors import CheckpointError
from util.fileio import load_torch_weights_only

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VGGLayer:
    """A feature map `phi_block,conv` and where it sits in torchvision's `vgg19().features`.

    `conv_index` is the index of that convolution in `features`; its ReLU follows at `conv_index + 1`.
    """

    label: str
    conv_index: int

    def cut(self, before_activation: bool) -> int:
        """How many modules of `features` to keep: up to the convolution, or up to its ReLU."""
        return self.conv_index + 1 if before_activation else self.conv_index + 2


def _vgg19_convolutions() -> Dict[str, VGGLayer]:
    """`convB_J` (the J-th convolution of block B, the names Real-ESRGAN and BasicSR use) -> its place in
    torchvision's vgg19().features: blocks of 2, 2, 4, 4, 4 convolutions, each followed by its ReLU, each block
    by a max-pool (so conv1_1 is at 0, conv2_2 at 7, conv5_4 at 34)."""
    table: Dict[str, VGGLayer] = {}
    index = 0
    for block, n_convs in enumerate((2, 2, 4, 4, 4), start=1):
        for conv in range(1, n_convs + 1):
            table[f"conv{block}_{conv}"] = VGGLayer(label=f"conv{block}_{conv}", conv_index=index)
            index += 2  # the convolution and its ReLU
        index += 1  # the block's max-pool
    return table


# The single source of truth for the cuts into torchvision's vgg19().features, e.g.
#   phi_5,4: conv at 34, ReLU at 35 -> features[:35] before / features[:36] after the activation
#   phi_2,2: conv at 7,  ReLU at 8  -> features[:8]  before / features[:9]  after the activation
VGG19_CONVOLUTIONS: Dict[str, VGGLayer] = _vgg19_convolutions()
# --vgg_layer's names (SRGAN's VGG54 and VGG22).
VGG_LAYERS: Dict[str, VGGLayer] = {
    "54": VGGLayer(label="phi_5,4", conv_index=VGG19_CONVOLUTIONS["conv5_4"].conv_index),
    "22": VGGLayer(label="phi_2,2", conv_index=VGG19_CONVOLUTIONS["conv2_2"].conv_index),
}
VGG_LAYER_NAMES: Tuple[str, ...] = tuple(VGG_LAYERS)
DEFAULT_VGG_LAYER = "54"

VGG19_WEIGHTS_URL: str = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url
VGG19_WEIGHTS_FILE: str = os.path.basename(urlparse(VGG19_WEIGHTS_URL).path)  # vgg19-dcbb9e9d.pth

# torchvision's ImageNet normalisation, which the pretrained VGG expects on inputs in [0, 1].
IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)


def vgg_layer(layer: str) -> VGGLayer:
    """Look a layer name up (`54`, `22` or `convB_J`); an unknown one is a KeyError that lists the valid names."""
    spec = VGG_LAYERS.get(layer) or VGG19_CONVOLUTIONS.get(layer)
    if spec is None:
        raise KeyError(f"unknown VGG feature layer {layer!r}; valid: "
                       f"{', '.join((*VGG_LAYER_NAMES, *VGG19_CONVOLUTIONS))}")
    return spec


# --perceptual_criterion: the distance between feature maps, a mean over all their elements.
PERCEPTUAL_CRITERIA: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss}


def parse_perceptual_layers(spec: str) -> Dict[str, float]:
    """`conv1_2:0.1,conv5_4:1` -> {'conv1_2': 0.1, 'conv5_4': 1.0}, in the order given; a layer without `:weight`
    weighs 1. A ValueError names the problem: an unknown layer (listing the valid ones), a weight that is not a
    positive finite number (leave a layer out rather than weigh it 0), a layer given twice, nothing given."""
    weights: Dict[str, float] = {}
    for item in spec.split(","):
        name, _, text = (part.strip() for part in item.partition(":"))
        if name not in VGG19_CONVOLUTIONS:
            raise ValueError(f"unknown VGG19 layer {name!r}; valid: {', '.join(VGG19_CONVOLUTIONS)}")
        if name in weights:
            raise ValueError(f"layer {name} is given twice")
        try:
            weight = float(text) if text else 1.0
        except ValueError:
            raise ValueError(f"the weight of {name} must be a number, got {text!r}") from None
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"the weight of {name} must be a finite number > 0, got {text}")
        weights[name] = weight
    return weights


def vgg_cache_dir() -> str:
    """Where torch hub keeps downloaded weights (`$TORCH_HOME/hub/checkpoints`), read at call time."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def _vgg19_features_skeleton(needed_layers: int) -> nn.Sequential:
    """torchvision's `vgg19(weights=None).features[:needed_layers]` with its tensors on the meta device.

    Building on meta skips the random initialisation of all 143M parameters (1 s and 550 MB for a
    classifier that is thrown away); callers either only read shapes or overwrite every tensor.
    """
    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features
    if not 1 <= needed_layers <= len(features):
        raise ValueError(f"needed_layers must be in 1..{len(features)} (the modules of vgg19().features), "
                         f"got {needed_layers}")
    return features[:needed_layers]


@functools.lru_cache(maxsize=None)
def _expected_shapes(needed_layers: int) -> Dict[str, torch.Size]:
    """`features.N.weight/bias` -> shape, for the modules the cut uses."""
    skeleton = _vgg19_features_skeleton(needed_layers)
    return {f"features.{k}": v.shape for k, v in skeleton.state_dict().items()}


def _feature_index(key: str) -> Tuple[int, str]:
    """Sort key so that `features.10.weight` comes after `features.2.bias`."""
    _, index, rest = key.split(".", 2)
    return int(index), rest


def _describe_keys(keys: list, limit: int = 6) -> str:
    keys = sorted(keys, key=_feature_index)
    shown = ", ".join(keys[:limit])
    return shown if len(keys) <= limit else f"{shown}, ... ({len(keys)} in all)"


def _select_features(state: object, source: str, needed_layers: int) -> Dict[str, torch.Tensor]:
    """The `features.*` tensors the cut needs from a loaded object, or a CheckpointError naming `source`."""
    expected = _expected_shapes(needed_layers)
    what = (f"expected torchvision's vgg19 ImageNet state_dict (e.g. {VGG19_WEIGHTS_FILE} from "
            f"{VGG19_WEIGHTS_URL}) or a state_dict holding at least the {len(expected)} features.* tensors "
            f"of features[:{needed_layers}]")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source} does not hold a state_dict (found {type(state).__name__}); {what}")
    missing = [key for key in expected if not isinstance(state.get(key), torch.Tensor)]
    if missing:
        raise CheckpointError(f"{source} lacks the VGG19 weights features[:{needed_layers}] needs: missing "
                              f"{_describe_keys(missing)}; {what}")
    wrong = [f"{key} has shape {tuple(state[key].shape)}, expected {tuple(shape)}"
             for key, shape in expected.items() if state[key].shape != shape]
    if wrong:
        shown = "; ".join(wrong[:3]) + (f"; ... ({len(wrong)} in all)" if len(wrong) > 3 else "")
        raise CheckpointError(f"{source} does not fit VGG19's features: {shown}; {what}")
    return {key: state[key] for key in expected}


def _download_error_message(reason: str) -> str:
    return (
        f"the VGG19 ImageNet weights could not be downloaded from {VGG19_WEIGHTS_URL} ({reason}); fix by "
        f"(1) running once where there is internet so the file lands in {vgg_cache_dir()}, or copying "
        f"{VGG19_WEIGHTS_FILE} there, or (2) passing --vgg_weights PATH to a torchvision vgg19 state_dict "
        f"file, or (3) training without the perceptual loss with --lambda_perceptual 0"
    )


def _load_from_hub() -> Tuple[object, str]:
    """torchvision's ImageNet VGG19 state_dict through the torch hub cache, downloading it when absent."""
    cached_file = os.path.join(vgg_cache_dir(), VGG19_WEIGHTS_FILE)
    was_cached = os.path.exists(cached_file)
    if not was_cached:
        logger.info("downloading the VGG19 ImageNet weights (548 MB) for the perceptual loss from %s to %s",
                    VGG19_WEIGHTS_URL, cached_file)
    try:
        state = torch.hub.load_state_dict_from_url(
            VGG19_WEIGHTS_URL, map_location="cpu", progress=not was_cached, check_hash=True, weights_only=True
        )
    except Exception as e:  # URLError, timeouts, hash mismatch, full disk, damaged file: all user-fixable
        detail = str(e).strip().splitlines()
        reason = f"{e.__class__.__name__}: {detail[0]}" if detail else e.__class__.__name__
        if was_cached:
            raise CheckpointError(
                f"cannot load the cached VGG19 ImageNet weights {cached_file} ({reason}); delete the file so "
                f"that it is downloaded again, or pass --vgg_weights PATH to a torchvision vgg19 state_dict "
                f"file, or train without the perceptual loss with --lambda_perceptual 0"
            ) from e
        raise CheckpointError(_download_error_message(reason)) from e
    return state, cached_file


def load_vgg19_weights(path: Optional[str], needed_layers: int) -> Dict[str, torch.Tensor]:
    """The `features.*` tensors of a torchvision vgg19 state_dict that `features[:needed_layers]` uses.

    `path` may hold a full torchvision vgg19 state_dict or only the `features.*` keys the cut needs; it is
    read with weights_only, so a crafted file cannot run code. `path=None` takes torchvision's ImageNet
    weights from the torch hub cache, downloading them once. Every failure is a CheckpointError (exit
    code 2) that says what to do; there is no fallback to random weights.
    """
    if path is not None:
        state, source = load_torch_weights_only(path), str(path)
    else:
        state, source = _load_from_hub()
    return _select_features(state, source, needed_layers)


class VGGFeatureExtractor(nn.Module):
    """Frozen ImageNet VGG19 feature maps of images in the toolkit's [-1, 1] range, at one layer or several.

    `layer` names one layer (`forward` gives its features) or a sequence of them (`feature_maps` gives theirs,
    in that order, from one pass through the deepest); names as `vgg_layer` takes them. `before_activation`
    applies to every layer.
    """

    def __init__(self, layer: Union[str, Sequence[str]] = DEFAULT_VGG_LAYER, before_activation: bool = False,
                 weights_path: Optional[str] = None) -> None:
        super().__init__()
        self.layers: Tuple[str, ...] = (layer,) if isinstance(layer, str) else tuple(layer)
        if not self.layers:
            raise ValueError("VGGFeatureExtractor needs at least one layer")
        specs = [vgg_layer(name) for name in self.layers]
        self.layer = self.layers[0] if len(self.layers) == 1 else ",".join(self.layers)
        self.before_activation = before_activation
        # How many modules of `features` each feature map has gone through.
        self._cuts: Tuple[int, ...] = tuple(spec.cut(before_activation) for spec in specs)
        cut = max(self._cuts)
        weights = load_vgg19_weights(weights_path, cut)
        features = _vgg19_features_skeleton(cut).to_empty(device="cpu")
        # strict: every tensor of the cut is overwritten, none keeps to_empty's uninitialised memory.
        features.load_state_dict({key[len("features."):]: value for key, value in weights.items()}, strict=True)
        for taken in self._cuts:
            # torchvision's ReLUs work in place: one right after a map taken before its activation would overwrite it.
            if taken < cut and isinstance(features[taken], nn.ReLU):
                features[taken].inplace = False
        self.features = features
        self.features.requires_grad_(False)
        # (1, 3, 1, 1) each. Not persistent: constants, not state, so they stay out of checkpoints.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        super().train(False)
        logger.info("perceptual loss: VGG19 %s %s activation (features[:%d]), weights from %s",
                    ", ".join(spec.label for spec in specs), "before" if before_activation else "after", cut,
                    weights_path if weights_path is not None else "torchvision's ImageNet VGG19")

    def train(self, mode: bool = True) -> "VGGFeatureExtractor":
        """Always eval: the VGG is a fixed measure, whatever mode the model around it is switched to."""
        return super().train(False)

    def feature_maps(self, x: torch.Tensor) -> List[torch.Tensor]:
        """x: (N, 3, H, W) or (N, 1, H, W) in [-1, 1] -> the feature map (N, C', H', W') of each layer, in order."""
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"VGG features need images of shape (N, 3, H, W) or (N, 1, H, W), "
                             f"got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (N, 3, H, W): grey as RGB
        x = ((x + 1) / 2 - self.mean) / self.std  # (N, 3, H, W), ImageNet-normalised
        maps: Dict[int, torch.Tensor] = {}
        for done, module in enumerate(self.features, start=1):
            x = module(x)
            if done in self._cuts:
                maps[done] = x
        return [maps[taken] for taken in self._cuts]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) or (N, 1, H, W) in [-1, 1] -> features (N, C', H', W') of the extractor's one layer."""
        if len(self.layers) != 1:
            raise ValueError(f"this extractor takes {len(self.layers)} layers: call feature_maps")
        return self.feature_maps(x)[0]


class PerceptualLoss(nn.Module):
    """A content loss in VGG19 feature space: sum over layers of weight * distance(features(sr), features(hr)).

    `layer` is one layer name (weight 1: SRGAN's loss with the default `mse`) or a {layer: weight} table
    (Real-ESRGAN's with `criterion="l1"` and `before_activation=True`); `criterion` is a PERCEPTUAL_CRITERIA name.
    `loss = PerceptualLoss()(sr, hr)`; gradients reach `sr`, the VGG's parameters never change.
    """

    def __init__(self, layer: Union[str, Mapping[str, float]] = DEFAULT_VGG_LAYER, before_activation: bool = False,
                 weights_path: Optional[str] = None, criterion: str = "mse") -> None:
        super().__init__()
        if criterion not in PERCEPTUAL_CRITERIA:
            raise KeyError(f"unknown perceptual criterion {criterion!r}; valid: {', '.join(PERCEPTUAL_CRITERIA)}")
        table = {layer: 1.0} if isinstance(layer, str) else dict(layer)
        self.criterion = criterion
        self.layer_weights: Tuple[float, ...] = tuple(table.values())
        self.vgg = VGGFeatureExtractor(tuple(table), before_activation, weights_path)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """sr, hr: (N, C, H, W) in [-1, 1], C in {1, 3} -> scalar loss."""
        if sr.shape != hr.shape:
            raise ValueError(f"perceptual loss needs images of equal shape, got {tuple(sr.shape)} and "
                             f"{tuple(hr.shape)}")
        with torch.no_grad():  # the target needs no graph
            targets = self.vgg.feature_maps(hr)  # [(N, C', H', W')] per layer
        distance = PERCEPTUAL_CRITERIA[self.criterion]
        terms = [distance(f, t) * w for f, t, w in zip(self.vgg.feature_maps(sr), targets, self.layer_weights)]
        loss = terms[0]
        for term in terms[1:]:
            loss = loss + term
        return loss
