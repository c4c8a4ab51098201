"""`test`: apply one trained generator in one direction (e.g. a CycleGAN's G_A) to single images.

Loads `<epoch>_net_G<model_suffix>.pth`, so `--model_suffix _A` uses a CycleGAN's G_A.
"""
from __future__ import annotations

from typing import Any, Dict

from util.errors import OptionError

from . import networks
from .base_model import MODELS, BaseModel


@MODELS.register("test")
class TestModel(BaseModel):
    discriminator_options = ()  # it builds none
    @staticmethod
    def modify_commandline_options(parser: Any, is_train: bool = True) -> Any:
        parser.set_defaults(dataset_mode="single")
        parser.add_argument("--model_suffix", type=str, default="",
                            help="In checkpoints_dir, [epoch]_net_G[model_suffix].pth will be loaded as the generator.")
        return parser

    @classmethod
    def validate_options(cls, opt: Any) -> None:
        if opt.isTrain:
            raise OptionError("--model test only applies a trained generator: use it with test.py, and train with "
                              f"--model {'/'.join(n for n in MODELS.names() if n != 'test')}")
        if opt.dataset_mode != "single":
            raise OptionError(f"--model test reads one image at a time: it needs --dataset_mode single, "
                              f"not {opt.dataset_mode}")
        if any(sep in opt.model_suffix for sep in ("/", "\\")) or ".." in opt.model_suffix:
            raise OptionError(f"--model_suffix {opt.model_suffix!r} must not contain '/', '\\' or '..'")

    def __init__(self, opt: Any):
        super().__init__(opt)
        self.loss_names = []
        self.visual_names = ["real", "fake"]
        self.model_names = ["G" + opt.model_suffix]  # e.g. G_A: loads <epoch>_net_G_A.pth
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout,
                                      opt.init_type, opt.init_gain, self.gpu_ids, **networks.generator_kwargs(opt))
        setattr(self, "netG" + opt.model_suffix, self.netG)

    def set_input(self, input: Dict[str, Any]) -> None:
        self.real = self.accel.input(input["A"])  # (N, input_nc, H, W)
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.fake = self.netG(self.real)

    def optimize_parameters(self) -> None:
        """Nothing to optimise: this model only runs inference."""
