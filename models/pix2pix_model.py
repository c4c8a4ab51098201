"""pix2pix (Isola et al. 2017): conditional GAN for paired translation A -> B.

G maps A to B; D judges (A, B) pairs patch by patch; G's loss adds lambda_L1 * |G(A) - B|.
"""
from __future__ import annotations

from typing import Any

import torch

from . import networks
from .base_model import MODELS, BaseModel


@MODELS.register("pix2pix", tiny=("--netG", "resnet_6blocks"))
class Pix2PixModel(BaseModel):
    @staticmethod
    def modify_commandline_options(parser: Any, is_train: bool = True) -> Any:
        # The paper's setup: U-Net, batch norm, paired data; no image pool, the cross-entropy GAN loss.
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla")
            parser.add_argument("--lambda_L1", type=float, default=100.0, help="weight for L1 loss")
        return parser

    def __init__(self, opt: Any):
        super().__init__(opt)
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout,
                                      opt.init_type, opt.init_gain, self.gpu_ids, **networks.generator_kwargs(opt))
        if self.isTrain:
            # D is conditional: it sees the input next to the (real or fake) output.
            self.netD = networks.define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                          opt.init_type, opt.init_gain, self.gpu_ids,
                                          **networks.discriminator_kwargs(opt))
            self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
            self.criterionL1 = torch.nn.L1Loss()
            self.optimizer_G = self.make_adam(self.netG.parameters())
            self.optimizer_D = self.make_adam(self.netD.parameters())
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def backward_D(self) -> None:
        with self.autocast():
            real_AB = torch.cat((self.real_A, self.real_B), 1)  # (N, input_nc + output_nc, H, W)
            fake_AB = torch.cat((self.real_A, self.fake_B), 1)
            self.loss_D, self.loss_D_real, self.loss_D_fake = self.discriminator_loss(self.netD, real_AB, fake_AB)
        self.backward(self.loss_D, self.optimizer_D)

    def backward_G(self) -> None:
        with self.autocast():
            fake_AB = torch.cat((self.real_A, self.fake_B), 1)
            real_AB = torch.cat((self.real_A, self.real_B), 1)  # D sees it only in a relativistic --gan_mode
            self.loss_G_GAN = self.criterionGAN.generator_loss(self.netD, fake_AB, real_AB)
            self.loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.opt.lambda_L1
            self.loss_G = self.loss_G_GAN + self.loss_G_L1
        self.backward(self.loss_G, self.optimizer_G)

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.backward_D()
        self.step(self.optimizer_D)
        self.set_requires_grad(self.netD, False)  # G's step needs no gradients for D's weights
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.step(self.optimizer_G)
