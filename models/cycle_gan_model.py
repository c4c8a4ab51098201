"""CycleGAN (Zhu et al. 2017): unpaired translation with two generators and cycle consistency.

G_A: A -> B, G_B: B -> A; D_A judges B-domain images, D_B judges A-domain images.
G's loss: GAN terms + lambda_A |G_B(G_A(A)) - A| + lambda_B |G_A(G_B(B)) - B|
          + lambda_identity * (lambda_B |G_A(B) - B| + lambda_A |G_B(A) - A|).
"""
from __future__ import annotations

import itertools
from typing import Any, Dict

import torch

from util.errors import OptionError

from . import networks
from .base_model import MODELS, BaseModel
from .training.image_pool import ImagePool


@MODELS.register("cycle_gan", tiny=("--netG", "resnet_6blocks"))
class CycleGANModel(BaseModel):
    # Reflection padding is slow on NHWC tensors: channels_last made the CPU step 12% slower.
    prefers_channels_last = False
    reversed_generators = ("G_B",)  # B -> A: define_G(output_nc, input_nc, ...)

    @staticmethod
    def modify_commandline_options(parser: Any, is_train: bool = True) -> Any:
        parser.set_defaults(no_dropout=True)  # the paper's ResNet generators use no dropout
        if is_train:
            parser.add_argument("--lambda_A", type=float, default=10.0, help="weight for cycle loss (A -> B -> A)")
            parser.add_argument("--lambda_B", type=float, default=10.0, help="weight for cycle loss (B -> A -> B)")
            parser.add_argument("--lambda_identity", type=float, default=0.5,
                                help="use identity mapping. Setting lambda_identity other than 0 has an effect of "
                                     "scaling the weight of the identity mapping loss")
        return parser

    @classmethod
    def validate_options(cls, opt: Any) -> None:
        if opt.isTrain and opt.lambda_identity > 0 and opt.input_nc != opt.output_nc:
            raise OptionError(f"--lambda_identity {opt.lambda_identity} needs --input_nc == --output_nc (got "
                              f"{opt.input_nc} and {opt.output_nc}): set --lambda_identity 0")

    def __init__(self, opt: Any):
        super().__init__(opt)
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
        visual_names_A = ["real_A", "fake_B", "rec_A"]
        visual_names_B = ["real_B", "fake_A", "rec_B"]
        if self.isTrain and opt.lambda_identity > 0.0:
            visual_names_A.append("idt_B")
            visual_names_B.append("idt_A")
        self.visual_names = visual_names_A + visual_names_B
        self.model_names = ["G_A", "G_B", "D_A", "D_B"] if self.isTrain else ["G_A", "G_B"]
        g_args = (opt.ngf, opt.netG, opt.norm, not opt.no_dropout, opt.init_type, opt.init_gain, self.gpu_ids)
        g_extra = networks.generator_kwargs(opt)
        self.netG_A = networks.define_G(opt.input_nc, opt.output_nc, *g_args, **g_extra)
        self.netG_B = networks.define_G(opt.output_nc, opt.input_nc, *g_args, **g_extra)
        if self.isTrain:
            d_args = (opt.ndf, opt.netD, opt.n_layers_D, opt.norm, opt.init_type, opt.init_gain, self.gpu_ids)
            d_extra = networks.discriminator_kwargs(opt)
            self.netD_A = networks.define_D(opt.output_nc, *d_args, **d_extra)
            self.netD_B = networks.define_D(opt.input_nc, *d_args, **d_extra)
            self.fake_A_pool = ImagePool(opt.pool_size)
            self.fake_B_pool = ImagePool(opt.pool_size)
            self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
            self.criterionCycle = torch.nn.L1Loss()
            self.criterionIdt = torch.nn.L1Loss()
            self.optimizer_G = self.make_adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()))
            self.optimizer_D = self.make_adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()))
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def extra_state(self) -> Dict[str, Any]:
        return {"fake_A_pool": self.fake_A_pool.state_dict(), "fake_B_pool": self.fake_B_pool.state_dict()}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        self.fake_A_pool.load_state_dict(state["fake_A_pool"], self.device)
        self.fake_B_pool.load_state_dict(state["fake_B_pool"], self.device)

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def backward_D(self) -> None:
        with self.autocast():
            fake_B = self.fake_B_pool.query(self.fake_B)
            self.loss_D_A, _, _ = self.discriminator_loss(self.netD_A, self.real_B, fake_B)
            fake_A = self.fake_A_pool.query(self.fake_A)
            self.loss_D_B, _, _ = self.discriminator_loss(self.netD_B, self.real_A, fake_A)
        self.backward(self.loss_D_A + self.loss_D_B, self.optimizer_D)

    def backward_G(self) -> None:
        opt = self.opt
        lambda_idt, lambda_A, lambda_B = opt.lambda_identity, opt.lambda_A, opt.lambda_B
        with self.autocast():
            if lambda_idt > 0:
                # G_A should leave B-domain images alone, and G_B A-domain ones (keeps colours in photo<->painting).
                self.idt_A = self.netG_A(self.real_B)
                self.loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * lambda_B * lambda_idt
                self.idt_B = self.netG_B(self.real_A)
                self.loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * lambda_A * lambda_idt
            else:
                self.loss_idt_A = self.loss_idt_B = torch.zeros((), device=self.device)
            self.loss_G_A = self.criterionGAN.generator_loss(self.netD_A, self.fake_B, self.real_B)
            self.loss_G_B = self.criterionGAN.generator_loss(self.netD_B, self.fake_A, self.real_A)
            self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * lambda_A
            self.loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * lambda_B
            self.loss_G = (self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B
                           + self.loss_idt_A + self.loss_idt_B)
        self.backward(self.loss_G, self.optimizer_G)

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.set_requires_grad([self.netD_A, self.netD_B], False)  # G's step needs no gradients for D
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.step(self.optimizer_G)
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.backward_D()
        self.step(self.optimizer_D)
