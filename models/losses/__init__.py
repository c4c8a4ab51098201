"""Losses: the adversarial objectives (`gan_loss.py`: GANLoss for every --gan_mode, the WGAN-GP penalty) and the
super-resolution content losses (`content_loss.py`: pixel, VGG19 perceptual from `perceptual_loss.py`, and
unsharp-masked targets from `usm.py`). Losses never import architectures, training machinery or model classes
(.importlinter); `from models.losses import GANLoss` is the reference's import path.
"""
from .content_loss import ContentLoss, add_content_loss_options, validate_content_loss_options
from .gan_loss import GAN_MODES, GANLoss, gradient_penalty
from .perceptual_loss import PerceptualLoss

__all__ = ["ContentLoss", "GAN_MODES", "GANLoss", "PerceptualLoss", "add_content_loss_options", "gradient_penalty",
           "validate_content_loss_options"]
