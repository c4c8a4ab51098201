"""`template`: the starting point for a new model. Copy this file, rename it, register it.

What it learns is deliberately plain: a generator G: A -> B trained on paired images with one regression loss,

    loss_G = lambda_regression * mean |G(A) - B|        (L1)

Every part a model of this toolkit has is here, each in its simplest form; the comments say what calls it.
To add a model `mymodel` (README, "Add a model"):
  1. copy this file to models/mymodel_model.py; rename the class and the name in `@MODELS.register`;
  2. import the module in models/__init__.py (importing it registers it: --model mymodel works);
  3. change the networks, the losses and `optimize_parameters`. tests/models/test_models.py then trains and checkpoints
     it together with every registered model.
pix2pix_model.py (a GAN: G and D, two optimisers) and cycle_gan_model.py (four networks) are the next steps up.
"""
from __future__ import annotations

from typing import Any

import torch

from . import networks
from .base_model import MODELS, BaseModel


# `tiny`: flags that make the model small and quick for the tests that train every registered model (with its
# default --netG, resnet_9blocks, none are needed; pix2pix passes a generator that takes 32-pixel images).
@MODELS.register("template", tiny=())
class TemplateModel(BaseModel):
    # The options that shape the discriminators a resumed run must keep: none here, it builds none.
    discriminator_options = ()

    @staticmethod
    def modify_commandline_options(parser: Any, is_train: bool = True) -> Any:
        """Add the model's flags and change defaults (a flag given on the command line still wins).

        `validate_options(cls, opt)` (a classmethod) is where a model refuses combinations it cannot run,
        raising util.errors.OptionError: train.py and test.py then stop with exit code 2 and that one line.
        """
        parser.set_defaults(dataset_mode="aligned")  # paired A|B images, as pix2pix reads them
        if is_train:  # test.py computes no loss: training-only flags stay out of its --help
            parser.add_argument("--lambda_regression", type=float, default=1.0,
                                help="weight for the L1 regression loss")
        return parser

    def __init__(self, opt: Any):
        super().__init__(opt)
        self.loss_names = ["G"]  # printed, logged and plotted: attribute loss_G
        self.visual_names = ["real_A", "fake_B", "real_B"]  # shown in training and on test.py's page
        self.model_names = ["G"]  # saved and loaded as <epoch>_net_G.pth: attribute netG
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout,
                                      opt.init_type, opt.init_gain, self.gpu_ids, **networks.generator_kwargs(opt))
        if self.isTrain:
            self.criterionRegression = torch.nn.L1Loss()
            self.optimizer_G = self.make_adam(self.netG.parameters())  # Adam with --lr and --beta1
            self.optimizers = [self.optimizer_G]  # each gets its --lr_policy scheduler in setup()

    # set_input: BaseModel's puts the batch's 'A' (network input) in real_A and 'B' (target) in real_B (the
    # datasets have applied --direction already). Override it for a dataset whose samples hold other keys.

    def forward(self) -> None:
        """The generator's output; called in training by optimize_parameters, in test.py by test() (no gradients)."""
        self.fake_B = self.netG(self.real_A)  # (N, output_nc, H, W)

    def optimize_parameters(self) -> None:
        """One training step. autocast, backward and step make it honour --amp (mixed precision, loss scaling)."""
        self.optimizer_G.zero_grad(set_to_none=True)
        with self.autocast():
            self.forward()
            self.loss_G = self.criterionRegression(self.fake_B, self.real_B) * self.opt.lambda_regression
        self.backward(self.loss_G, self.optimizer_G)
        self.step(self.optimizer_G)
