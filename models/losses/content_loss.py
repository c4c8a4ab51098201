"""The content losses of `--model srgan`: the pixel loss, the VGG19 perceptual loss, and their targets.

Their options live here so that the model keeps to training logic; `add_content_loss_options`,
`validate_content_loss_options` and `ContentLoss.from_options` are all `models/srgan_model.py` calls.

How the perceptual options combine:
  - `--vgg_layer 54|22` (SRGAN's one layer, weight 1) is the default; `--perceptual_layers` replaces it with a
    {layer: weight} table of VGG19 convolutions (Real-ESRGAN: conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1).
    Both at once is refused: --vgg_layer other than its default beside --perceptual_layers is a contradiction.
  - `--vgg_before_activation` applies to every layer; `--perceptual_criterion l1|mse` to every layer.
  - `--usm_targets` sharpens the target of the pixel and/or the perceptual loss (models/losses/usm.py); the GAN keeps
    the plain HR image.
  - with `--lambda_perceptual 0` there is no perceptual loss: its settings are warned of (a two-stage command often
    shares them), not refused.
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.errors import OptionError

from .perceptual_loss import (DEFAULT_VGG_LAYER, PERCEPTUAL_CRITERIA, VGG_LAYER_NAMES, PerceptualLoss,
                         parse_perceptual_layers)
from .usm import UnsharpMask

logger = logging.getLogger(__name__)

PIXEL_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}
# What the perceptual loss is made of (not --vgg_weights, where its weights are: recipes give it to every stage).
PERCEPTUAL_SETTINGS = ("vgg_layer", "perceptual_layers", "perceptual_criterion", "vgg_before_activation")
USM_TARGETS = ("none", "pixel", "perceptual", "both")


def add_content_loss_options(g: Any) -> None:
    """The training flags of the pixel and perceptual losses, on argparse group `g`."""
    g.add_argument("--pixel_loss", choices=tuple(PIXEL_LOSSES), default="mse",
                   help="the pixel loss of both stages: mse (the paper's) or l1 (BasicSR's, EDSR's and Real-ESRGAN's)")
    g.add_argument("--lambda_pixel", type=float, default=0.0,
                   help="weight of the pixel loss (--pixel_loss) in the adversarial stage; the pixel-only stage "
                        "(--pretrain_epochs) weighs it 1 (Real-ESRGAN: l1, 1; ESRGAN: l1, 1e-2)")
    g.add_argument("--lambda_perceptual", type=float, default=0.006,
                   help="weight of the VGG19 perceptual loss (the paper's 1/12.75^2 on the phi_5,4 MSE); 0 needs no "
                        "VGG weights")
    g.add_argument("--vgg_layer", type=str, default=DEFAULT_VGG_LAYER, choices=VGG_LAYER_NAMES,
                   help="VGG19 feature map of the perceptual loss: 54 = phi_5,4, 22 = phi_2,2 (see "
                        "--perceptual_layers for several)")
    g.add_argument("--perceptual_layers", type=str, default=None,
                   help="several VGG19 layers with weights, NAME:WEIGHT,... (Real-ESRGAN: conv1_2:0.1,conv2_2:0.1,"
                        "conv3_4:1,conv4_4:1,conv5_4:1); replaces --vgg_layer; names conv1_1 .. conv5_4")
    g.add_argument("--perceptual_criterion", choices=tuple(PERCEPTUAL_CRITERIA), default="mse",
                   help="distance between feature maps: mse (SRGAN's) or l1 (Real-ESRGAN's)")
    g.add_argument("--vgg_before_activation", action="store_true",
                   help="take the VGG features before their ReLU instead of after it (ESRGAN, Real-ESRGAN)")
    g.add_argument("--vgg_weights", type=str, default=None,
                   help="torchvision vgg19 ImageNet state_dict file (default: torchvision's download, kept in the "
                        "torch hub cache)")
    g.add_argument("--usm_targets", choices=USM_TARGETS, default="none",
                   help="unsharp-mask the HR target of the pixel loss, the perceptual loss or both (Real-ESRGAN: "
                        "both); the GAN sees the plain HR")


def validate_content_loss_options(opt: Any) -> None:
    """Raise OptionError (exit code 2) for a bad --perceptual_layers or a contradictory combination; warn of
    perceptual settings without a perceptual loss (--lambda_perceptual 0)."""
    if opt.lambda_perceptual == 0:
        parser = argparse.ArgumentParser()
        add_content_loss_options(parser)
        defaults = vars(parser.parse_args([]))
        unused = [f"--{name}" for name in PERCEPTUAL_SETTINGS if getattr(opt, name) != defaults[name]]
        unused += ["--usm_targets perceptual"] if opt.usm_targets == "perceptual" else []
        if unused:
            logger.warning("%s: the perceptual loss's settings have no effect with --lambda_perceptual 0",
                           ", ".join(unused))
    if opt.perceptual_layers is None:
        return
    try:
        parse_perceptual_layers(opt.perceptual_layers)
    except ValueError as e:
        raise OptionError(f"--perceptual_layers {opt.perceptual_layers}: {e}") from None
    if opt.vgg_layer != DEFAULT_VGG_LAYER:
        conv = {"22": "conv2_2", "54": "conv5_4"}.get(opt.vgg_layer, opt.vgg_layer)
        raise OptionError(f"--vgg_layer {opt.vgg_layer} and --perceptual_layers both choose the perceptual loss's "
                          f"layers: drop --vgg_layer (it is {conv} in --perceptual_layers)")


class ContentLoss(nn.Module):
    """(pixel, perceptual) losses of `sr` against `hr`, each against a USM-sharpened `hr` where asked.

    The perceptual term is zero without a perceptual loss (`--lambda_perceptual 0`); weights are the caller's.
    """

    def __init__(self, pixel_loss: str = "mse", perceptual: Optional[PerceptualLoss] = None,
                 usm_targets: str = "none") -> None:
        super().__init__()
        if usm_targets not in USM_TARGETS:
            raise KeyError(f"unknown USM target {usm_targets!r}; valid: {', '.join(USM_TARGETS)}")
        self.pixel = PIXEL_LOSSES[pixel_loss]
        self.perceptual = perceptual
        self.usm = UnsharpMask() if usm_targets != "none" else None
        self.usm_pixel = usm_targets in ("pixel", "both")
        self.usm_perceptual = usm_targets in ("perceptual", "both")

    @classmethod
    def from_options(cls, opt: Any) -> "ContentLoss":
        """The content losses --pixel_loss, --lambda_perceptual, --perceptual_layers / --vgg_layer, ... ask for."""
        perceptual = None
        if opt.lambda_perceptual > 0:
            layers = opt.vgg_layer if opt.perceptual_layers is None else parse_perceptual_layers(opt.perceptual_layers)
            perceptual = PerceptualLoss(layers, opt.vgg_before_activation, opt.vgg_weights, opt.perceptual_criterion)
        return cls(opt.pixel_loss, perceptual, opt.usm_targets)

    def targets(self, hr: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(pixel target, perceptual target) for `hr` (N, C, H, W): the USM of `hr` (one, shared) where asked."""
        if self.usm is None:
            return hr, hr
        # In float32 whatever --amp: autocast would run the blur's convolutions in 16 bits.
        with torch.no_grad(), torch.autocast(hr.device.type, enabled=False):
            sharp = self.usm(hr).to(hr.dtype)
        return (sharp if self.usm_pixel else hr), (sharp if self.usm_perceptual else hr)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor,
                with_perceptual: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
        """sr, hr: (N, C, H, W) -> (pixel loss, perceptual loss or a zero), unweighted."""
        pixel_target, perceptual_target = self.targets(hr)
        pixel = self.pixel(sr, pixel_target)
        if not with_perceptual or self.perceptual is None:
            return pixel, torch.zeros((), device=sr.device)
        return pixel, self.perceptual(sr, perceptual_target)

