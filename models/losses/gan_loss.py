"""Adversarial objectives (`--gan_mode`) and the WGAN-GP gradient penalty.

`GANLoss` hides the target tensors: call it with the discriminator's raw output and whether that output
should be judged real. Discriminators end without a sigmoid, so `vanilla` uses BCE-with-logits. A mode whose
generator term is not "judge the fake as real" (hinge) registers that term as its `generator` metadata; the
generator's call passes `for_discriminator=False` to get it.

A *relativistic* mode (registered with `relativistic=True`; `ragan`) judges each prediction against the mean of
the other kind's, so its loss needs D's outputs on the real and on the fake batch together: models get D's two
terms from `GANLoss.pair` and G's adversarial term from `GANLoss.generator_loss`, which every mode answers, so a
model's code is one path whatever the mode (and the other modes' values are what they were).
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


# Relativistic average GAN (Jolicoeur-Martineau 2018; ESRGAN, Wang et al. 2018): D_ra(x_r, x_f) =
# sigmoid(C(x_r) - mean C(x_f)). Its criterion is vanilla's cross-entropy applied to such relativistic logits, which
# `GANLoss.pair` forms; the constant is the same function so that the two cannot drift apart.
GAN_MODES.add("ragan", _vanilla, relativistic=True)


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
        # Whether the loss compares D's real and fake outputs with each other (`pair`), not each with a label.
        self.relativistic: bool = bool(GAN_MODES.meta(gan_mode).get("relativistic", False))
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
        formula for both players. In a relativistic mode `prediction` must already be relativistic logits;
        models call `pair` and `generator_loss`, which form them.
        """
        if not for_discriminator:
            if not target_is_real:
                raise ValueError("the generator's adversarial loss judges its outputs real: pass target_is_real=True")
            if self._generator_criterion is not None:
                return self._generator_criterion(prediction)
        return self._criterion(prediction, target_is_real, self.real_value, self.fake_value)

    def pair(self, pred_real: torch.Tensor, pred_fake: torch.Tensor,
             for_discriminator: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
        """(real term, fake term) of a loss over D's outputs on a real and a fake batch (same shapes).

        Discriminator, every mode: (loss of `pred_real` judged real, loss of `pred_fake` judged fake); D's loss is
        their mean. A relativistic mode judges the logits `pred_real - mean(pred_fake)` and `pred_fake -
        mean(pred_real)` instead, and for the generator (`for_discriminator=False`) swaps the targets: real judged
        fake, fake judged real (ESRGAN eq. 2); G's loss is again their mean (`generator_loss`). Gradients flow
        through both predictions and both means (the paper's formula); detach an input to stop them.
        The non-relativistic modes have no generator term over real predictions: use `generator_loss`.
        """
        if not self.relativistic:
            if not for_discriminator:
                raise ValueError(f"--gan_mode {self.gan_mode}: the generator's term judges only the fakes; "
                                 f"call generator_loss")
            return self(pred_real, True), self(pred_fake, False)
        real_logits = pred_real - pred_fake.mean()  # (N, ...) how much more real than the average fake
        fake_logits = pred_fake - pred_real.mean()
        real_is_real = for_discriminator
        return self(real_logits, real_is_real), self(fake_logits, not real_is_real)

    def generator_loss(self, netD: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """G's adversarial term for `fake` (D's input, with G's graph), `real` the matching real input.

        Non-relativistic modes: `self(netD(fake), True, for_discriminator=False)`, and `real` is not used (D does
        not see it). Relativistic modes: the mean of `pair(D(real), D(fake), for_discriminator=False)`, with D(real)
        recomputed by the current D without a graph (G cannot change it; as BasicSR's ESRGAN), after D(fake). D
        must be in the state the caller wants for both calls (a BatchNorm D in training mode updates its running
        statistics with each).
        """
        pred_fake = netD(fake)
        if not self.relativistic:
            return self(pred_fake, True, for_discriminator=False)
        with torch.no_grad():
            pred_real = netD(real)
        real_term, fake_term = self.pair(pred_real, pred_fake, for_discriminator=False)
        return (real_term + fake_term) * 0.5


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

