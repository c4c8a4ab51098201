"""Colorization: pix2pix from a photo's lightness to its colour, in CIE Lab (as in the reference).

The input is the L channel (1 channel, L / 50 - 1), the output the a and b channels (2 channels, ab / 110); G and D
and the losses are pix2pix's. The images shown and saved are RGB: the input's L with the real colours
(real_B_rgb) and with the predicted ones (fake_B_rgb), next to real_A, the L channel as a grey image.
Data: colour photos in `<dataroot>/<phase>/` (--dataset_mode colorization makes the L / ab pairs).
"""
from __future__ import annotations

from typing import Any

from util.errors import OptionError
from util.images.lab import network_to_rgb

from .base_model import MODELS
from .pix2pix_model import Pix2PixModel

CHANNELS = {"input_nc": 1, "output_nc": 2}  # L in, ab out


# `channels`: the model checks --input_nc and --output_nc itself (options/ lets other models take 1 or 3).
@MODELS.register("colorization", tiny=("--netG", "resnet_6blocks"), channels=CHANNELS)
class ColorizationModel(Pix2PixModel):
    @staticmethod
    def modify_commandline_options(parser: Any, is_train: bool = True) -> Any:
        parser = Pix2PixModel.modify_commandline_options(parser, is_train)
        parser.set_defaults(dataset_mode="colorization", **CHANNELS)
        return parser

    @classmethod
    def validate_options(cls, opt: Any) -> None:
        super().validate_options(opt)
        if (opt.input_nc, opt.output_nc) != tuple(CHANNELS.values()):
            raise OptionError(f"--model colorization predicts the 2 colour channels (ab) of Lab from the lightness L: "
                              f"it needs --input_nc 1 --output_nc 2, got --input_nc {opt.input_nc} --output_nc "
                              f"{opt.output_nc}")
        if opt.direction != "AtoB":
            raise OptionError("--model colorization maps lightness to colour only: it needs --direction AtoB")
        if opt.dataset_mode != "colorization":
            raise OptionError(f"--model colorization reads colour photos split into L and ab: it needs --dataset_mode "
                              f"colorization, not {opt.dataset_mode}")

    def __init__(self, opt: Any):
        super().__init__(opt)
        self.visual_names = ["real_A", "real_B_rgb", "fake_B_rgb"]

    def compute_visuals(self) -> None:
        """The target's and the prediction's colours on the input's lightness, as RGB in [-1, 1] like every visual."""
        with self.accel.full_precision():
            self.real_B_rgb = network_to_rgb(self.real_A, self.real_B) * 2 - 1  # (N, 3, H, W)
            self.fake_B_rgb = network_to_rgb(self.real_A, self.fake_B.detach()) * 2 - 1  # (N, 3, H, W)
