"""Adversarial objectives (`--gan_mode`) and the WGAN-GP gradient penalty.

`GANLoss` hides the target tensors: call it with the discriminator's raw output and whether that output
should be judged real. Discriminators end without a sigmoid, so `vanilla` uses BCE-with-logits. A mode whose
generator term is not "judge the fake as real" (hinge) registers that term as its `generator` metadata; the
generator's call passes `for_discriminator=False` to get it.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn

from util.registry import Registry

# Each GAN mode maps (prediction, target_is_real, real_label, fake_label) -> scalar loss.
GanCriterion = Callable[[torch.Tensor, bool, float, float], torch.Tensor]
GAN_MODES: Registry[GanCriterion] = Registry("GAN mode (--gan_mode)")


def _target(prediction: torch.Tensor, target_is_real: bool, real_label: float, fake_label: float) -> torch.Tensor:
    value = real_label if target_is_real else fake_label
    return torch.full_like(prediction, value)


@GAN_MODES.register("vanilla")
def _vanilla(prediction: torch.Tensor, target_is_real: bool, real_label: float, fake_label: float) -> torch.Tensor:
    """The original GAN's cross-entropy (Goodfellow et al. 2014), on logits."""
    target = _target(prediction, target_is_real, real_label, fake_label)
    return nn.functional.binary_cross_entropy_with_logits(prediction, target)


@GAN_MODES.register("lsgan")
def _lsgan(prediction: torch.Tensor, target_is_real: bool, real_label: float, fake_label: float) -> torch.Tensor:
    """Least-squares GAN (Mao et al. 2017): mean squared distance to the target label."""
    target = _target(prediction, target_is_real, real_label, fake_label)
    return nn.functional.mse_loss(prediction, target)


@GAN_MODES.register("wgangp")
def _wgangp(prediction: torch.Tensor, target_is_real: bool, real_label: float, fake_label: float) -> torch.Tensor:
    """Wasserstein critic loss (Gulrajani et al. 2017): labels are ignored; pair with `gradient_penalty`."""
    return -prediction.mean() if target_is_real else prediction.mean()


def _hinge_generator(prediction: torch.Tensor) -> torch.Tensor:
    """G's hinge term: raise D's score of the fakes without a margin, -mean(D(G(x)))."""
    return -prediction.mean()


@GAN_MODES.register("hinge", generator=_hinge_generator)
def _hinge(prediction: torch.Tensor, target_is_real: bool, real_label: float, fake_label: float) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN, SPADE) for D: mean(relu(1 - D(real))) and mean(relu(1 + D(fake))).

    Scores already beyond the margin (real above 1, fake below -1) give no gradient. Labels are ignored.
    """
    margin = 1.0 - prediction if target_is_real else 1.0 + prediction
    return nn.functional.relu(margin).mean()


class GANLoss(nn.Module):
    """`loss = GANLoss('lsgan')(netD(fake), target_is_real=True)`.

    `target_real_label` below 1 gives one-sided label smoothing (Salimans et al. 2016).
    """

    def __init__(self, gan_mode: str, target_real_label: float = 1.0, target_fake_label: float = 0.0):
        super().__init__()
        self.gan_mode = gan_mode
        self._criterion = GAN_MODES.get(gan_mode)
        # G's own term where the mode has one (hinge); None: G's term is D's term for "real".
        self._generator_criterion: Optional[Callable[[torch.Tensor], torch.Tensor]] = GAN_MODES.meta(gan_mode).get(
            "generator")
        # The labels the criteria use are Python numbers: reading a GPU buffer back with float() on every call
        # made the host wait for the device several times per step. The buffers stay, as in the reference, so
        # the labels show in the module's repr and a state_dict keeps its keys; nothing reads them.
        self.real_value, self.fake_value = float(target_real_label), float(target_fake_label)
        self.register_buffer("real_label", torch.tensor(self.real_value))
        self.register_buffer("fake_label", torch.tensor(self.fake_value))

    def forward(self, prediction: torch.Tensor, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        """The loss of `prediction` (D's raw output) judged real or fake.

        `for_discriminator=False` marks the generator's adversarial term, where D's output on fakes should be
        judged real (`target_is_real` True): hinge then gives -mean(prediction); the other modes have one
        formula for both players.
        """
        if not for_discriminator:
            if not target_is_real:
                raise ValueError("the generator's adversarial loss judges its outputs real: pass target_is_real=True")
            if self._generator_criterion is not None:
                return self._generator_criterion(prediction)
        return self._criterion(prediction, target_is_real, self.real_value, self.fake_value)


def _mix(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)  # (N, 1, 1, 1)
    return alpha * real + (1 - alpha) * fake


_GP_SAMPLERS: dict = {"real": lambda real, fake: real, "fake": lambda real, fake: fake, "mixed": _mix}


def gradient_penalty(
    netD: nn.Module,
    real_data: torch.Tensor,
    fake_data: torch.Tensor,
    type: str = "mixed",
    constant: float = 1.0,
    lambda_gp: float = 10.0,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """WGAN-GP penalty `lambda_gp * E[(||grad D(x)||_2 - constant)^2]`.

    `type` picks where x is sampled: `real`, `fake`, or `mixed` (a random point on the line between a
    real and a fake sample, per sample). Returns (penalty, gradients); (0, None) when lambda_gp is 0.
    """
    if lambda_gp <= 0.0:
        return torch.zeros((), device=real_data.device), None
    sampler = _GP_SAMPLERS.get(type)
    if sampler is None:
        raise KeyError(f"unknown gradient-penalty type {type!r}; valid: {', '.join(_GP_SAMPLERS)}")
    interpolates = sampler(real_data, fake_data)
    interpolates = interpolates.detach().requires_grad_(True)
    disc_out = netD(interpolates)
    gradients = torch.autograd.grad(
        outputs=disc_out,
        inputs=interpolates,
        grad_outputs=torch.ones_like(disc_out),
        create_graph=True,
        retain_graph=True,
        only_inputs=True,
    )[0]
    gradients = gradients.reshape(real_data.shape[0], -1)  # (N, C*H*W)
    # The 1e-16 keeps the norm differentiable at an exactly-zero gradient.
    penalty = (((gradients + 1e-16).norm(2, dim=1) - constant) ** 2).mean() * lambda_gp
    return penalty, gradients

