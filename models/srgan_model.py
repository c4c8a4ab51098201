"""SRGAN (Ledig et al. 2017): single-image super-resolution with an SRResNet generator.

Any upscaling --netG trains the same way (rrdbnet, msrresnet and srvgg are the published ESRGAN / Real-ESRGAN /
BasicSR layouts); --scale takes the factors the chosen generator can make (its registration's `scales`).

Training has two stages, as in the paper:
  1. SRResNet: the generator alone with the pixel MSE, or L1 with `--pixel_loss l1` (`--pretrain_epochs N`, or
     `--pretrained_G PATH` to start from a trained checkpoint, an SR zoo model or a published file);
  2. adversarial: content loss (`--lambda_pixel` * pixel loss + `--lambda_perceptual` * VGG19 feature loss, one
     layer or several, optionally against unsharp-masked targets: models/losses/content_loss.py) plus `--lambda_adv` *
     GANLoss (`--gan_mode ragan`: ESRGAN's relativistic one), against the SRGAN discriminator.
The paper's settings are the defaults of stage 2: VGG phi_5,4 with the features rescaled by 1/12.75 (a
weight of 1/12.75^2 = 0.006 on the feature MSE), 1e-3 adversarial, no pixel term, the vanilla GAN loss,
Adam(1e-4, 0.9, 0.999). Options for the usual stabilisers: Gaussian noise on the discriminator's inputs
decaying per epoch (`--d_noise_std`, `--d_noise_decay`) and one-sided label smoothing (`--real_label`).

Images: 'A' the LR, 'B' the HR, both in [-1, 1] (data/sr_pairs); the MSE is taken in that range.
At test time (`test.py --model srgan`) images of any size are upscaled tile by tile (models/inference),
keeping alpha, greyscale and 16-bit depth, and with `--eval_metrics` PSNR/SSIM on the Y channel are reported
for the model and for bicubic upscaling (util/images/metrics).
"""
from __future__ import annotations

import logging
import os
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.errors import CheckpointError, OptionError
from util.fileio import file_problem
from util.images import (SRImage, bicubic_downscale, bicubic_upscale, make_dataset, modcrop, read_image,
                         sr_metrics)
from util.reports.results import add_result_row, save_result_image, write_metrics_report

from . import networks
from .archs import registration
from .base_model import MODELS, BaseModel
from .inference.published_weights import load_pretrained_generator, pretrained_generator_file
from .losses.content_loss import ContentLoss, add_content_loss_options, validate_content_loss_options
from .inference.tiles import MAX_EXACT_PAD, backend_tile, default_tile_pad, tile_problem, tile_warnings
from .inference.onnx_backend import BACKEND_HELP, BACKENDS, onnxruntime_generator
from .inference.upscaler import Upscaler

logger = logging.getLogger(__name__)


@MODELS.register("srgan", tiny=("--lambda_perceptual", "0"))
class SRGANModel(BaseModel):
    upscales = True
    # bf16 inference of the 60-minute CPU SRResNet: Set5 29.92 / 0.8456 against fp32's 29.91 / 0.8456, Set14
    # 27.00 / 0.7394 against 27.00 / 0.7392 (docs/benchmarks.md); twice as fast on a bf16 CPU.
    bf16_inference = True
    # NHWC inference, fp32, 2-core AVX2 CPU (docs/benchmarks.md): SRResNet 2.4x, MSRResNet 1.2x, SRVGGNetCompact
    # 1.9x faster on a padded 192-pixel tile; outputs within 2e-7 of NCHW's on [0, 1] (8-bit outputs identical,
    # but for 0.0007% of RRDBNet's values, one level apart).
    channels_last_inference = True
    # fp32 training on a CPU gains from NHWC too: 16.8 -> 15.0 s/step (AVX-512), 9.23 -> 8.80 (capped at AVX2).
    prefers_channels_last_cpu_fp32 = True
    # RGB in and out (validated), and the generator is built without dropout: those options shape nothing here.
    # --scale is the model's (the data pipeline degrades by it too); --n_blocks and --netD_head are the chosen
    # architectures' own (models/archs/srresnet_arch.py, models/archs/srgan_discriminator_arch.py).
    generator_options = ("netG", "ngf", "norm", "scale")
    discriminator_options = ("netD", "ndf", "norm", "n_layers_D")

    @staticmethod
    def modify_commandline_options(parser: Any, is_train: bool = True) -> Any:
        parser.set_defaults(netG="srresnet", netD="srgan", norm="batch", dataset_mode="single", preprocess="crop",
                            crop_size=96, load_size=96, no_dropout=True)
        g = parser.add_argument_group("super-resolution")
        can_make = "; ".join(f"{name} {', '.join(map(str, networks.generator_scales(name)))}"
                             for name in networks.GENERATORS.names() if networks.generator_scales(name))
        g.add_argument("--scale", type=int, default=4, choices=networks.sr_scales(),
                       help=f"upscaling factor, one the --netG makes ({can_make})")
        # One tiling for test.py and for validation during training (--val_dataroot), which runs beside the
        # training tensors on the device: whole large photos could run out of its memory.
        upscaling = [name for name in networks.GENERATORS.names() if networks.upscales(name)]
        own_tiles = "; ".join(f"{name} {tile}" for name in upscaling
                              if (tile := networks.GENERATORS.meta(name).get("option_defaults", {}).get("tile")))
        g.add_argument("--tile", type=int, default=192,
                       help="upscale test and validation images in tiles of this many LR pixels, so memory stays "
                            f"bounded; 0: whole image (generators with a default of their own: {own_tiles})")
        radii = ", ".join(f"{name} {registration.context(networks.GENERATORS, name, {})}" for name in upscaling
                          if registration.context(networks.GENERATORS, name, {}) is not None)
        g.add_argument("--tile_pad", type=int, default=None,
                       help=f"LR pixels of context around each tile; default: the generator's receptive-field "
                            f"radius, which makes tiles exact, at most {MAX_EXACT_PAD} (radii at the default sizes: "
                            f"{radii}; beyond {MAX_EXACT_PAD} tiles are not exact)")
        g.add_argument("--edge_pad", type=int, default=0,
                       help="LR pixels of replicated edge added around each image before upscaling and cut from the "
                            "output: the network sees image-like borders instead of zero padding (8 removes the "
                            "demo model's border frame, scripts/sr_border.py); 0: the plain network output")
        if is_train:
            parser.set_defaults(gan_mode="vanilla", lr=1e-4, beta1=0.9, batch_size=16, pool_size=0)
            add_content_loss_options(g)  # --pixel_loss, --lambda_pixel, the perceptual loss, --usm_targets
            g.add_argument("--lambda_adv", type=float, default=1e-3, help="weight of the adversarial loss")
            g.add_argument("--pretrain_epochs", type=int, default=0,
                           help="first train the generator alone with the pixel MSE for this many epochs (SRResNet)")
            g.add_argument("--pretrained_G", type=str, default=None,
                           help="start the generator from these weights (fine-tuning): a net_G .pth file, a "
                                "checkpoint folder (its latest_net_G_ema.pth, else latest_net_G.pth; e.g. an SR "
                                "zoo install), or a publisher's file as downloaded (params_ema / params, ESRGAN keys)")
            g.add_argument("--d_noise_std", type=float, default=0.0,
                           help="std of Gaussian noise added to the discriminator's inputs (images in [-1, 1])")
            g.add_argument("--d_noise_decay", type=float, default=1.0,
                           help="the noise std is multiplied by this after each adversarial epoch")
            g.add_argument("--real_label", type=float, default=1.0,
                           help="target of real images for the discriminator; < 1 is one-sided label smoothing")
            g.add_argument("--val_dataroot", type=str, default=None,
                           help="folder of HR images: PSNR/SSIM of the generator on them after every epoch")
            g.add_argument("--no_rotate", action="store_true",
                           help="augment training crops by horizontal flips only (Real-ESRGAN's), not by all eight "
                                "flips and 90-degree rotations; --no_flip turns off both")
        else:
            parser.set_defaults(batch_size=1)
            g.add_argument("--eval_metrics", action="store_true",
                           help="the images are HR: make their LR (bicubic downscaling, or a seeded draw of "
                                "--degradation realesrgan) and report PSNR/SSIM (Y channel, --scale border pixels "
                                "cropped) for the model and for bicubic upscaling")
            g.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
        return parser

    @classmethod
    def validate_options(cls, opt: Any) -> None:
        def require(condition: bool, message: str) -> None:
            if not condition:
                raise OptionError(message)

        require(opt.dataset_mode in ("single", "aligned"),
                f"--dataset_mode {opt.dataset_mode}: --model srgan reads HR images (single) or LR/HR pairs in "
                f"<phase>A/ and <phase>B/ (aligned)")
        require(opt.input_nc == 3 and opt.output_nc == 3,
                "--model srgan works on RGB (greyscale images are handled at test time): keep --input_nc 3 "
                "--output_nc 3")
        problem = tile_problem(opt.tile, opt.tile_pad)
        require(problem is None, problem or "")
        require(opt.edge_pad >= 0, "--edge_pad must be >= 0")
        if not opt.isTrain:
            require(opt.batch_size == 1, "--model srgan tests one image at a time (images differ in size): "
                                         "use --batch_size 1")
            return
        require(opt.preprocess in ("crop", "none"),
                f"--preprocess {opt.preprocess}: --model srgan takes random HR crops ('crop', the default) or "
                f"whole images ('none'); resizing would change the degradation")
        require(opt.crop_size % opt.scale == 0,
                f"--crop_size {opt.crop_size} must be a multiple of --scale {opt.scale} (the LR crop is "
                f"crop_size / scale pixels)")
        if opt.preprocess == "none":
            require(opt.batch_size == 1, "--preprocess none gives whole images of different sizes: use "
                                         "--batch_size 1, or random crops with --preprocess crop")
        require(opt.pretrain_epochs >= 0, f"--pretrain_epochs must be >= 0, got {opt.pretrain_epochs}")
        cls.warn_of_unused_options(opt)
        require(0 <= opt.d_noise_std <= 10, f"--d_noise_std must be in [0, 10] (the images are in [-1, 1]), got "
                                            f"{opt.d_noise_std}")
        require(0 < opt.d_noise_decay <= 1, f"--d_noise_decay must be in (0, 1], got {opt.d_noise_decay}")
        require(0 < opt.real_label <= 1, f"--real_label must be in (0, 1], got {opt.real_label}")
        problem = None if opt.vgg_weights is None else file_problem(opt.vgg_weights)
        require(problem is None, f"--vgg_weights {opt.vgg_weights}: {problem}")
        if opt.pretrained_G is not None:
            try:
                pretrained_generator_file(opt.pretrained_G)
            except CheckpointError as e:
                raise OptionError(f"--pretrained_G: {e}") from e
        validate_content_loss_options(opt)
        require(opt.val_dataroot is None or os.path.isdir(opt.val_dataroot),
                f"--val_dataroot {opt.val_dataroot}: no such folder")

    @staticmethod
    def warn_of_unused_options(opt: Any) -> None:
        """Warnings (not errors: pixel-only runs, e.g. the documented `--pretrain_epochs 100000`, are meant) for
        stage settings the run will not use."""
        epochs = opt.n_epochs + opt.n_epochs_decay
        if opt.pretrain_epochs > epochs:
            logger.warning("--pretrain_epochs %d is more than the run's %d epochs (--n_epochs %d + --n_epochs_decay "
                           "%d): the generator trains alone on the pixel loss the whole run, and no adversarial epoch "
                           "runs (a pixel-only run says so with --pretrain_epochs %d)", opt.pretrain_epochs, epochs,
                           opt.n_epochs, opt.n_epochs_decay, epochs)
        if opt.d_noise_decay != 1 and opt.d_noise_std == 0:
            logger.warning("--d_noise_decay %g has no noise to decay: --d_noise_std is 0", opt.d_noise_decay)

    @classmethod
    def derived_options(cls, opt: Any) -> Dict[str, Any]:
        """--tile_pad, when not given: the generator's receptive-field radius (its registration's `context`), at
        most MAX_EXACT_PAD (models/inference/tiles.default_tile_pad)."""
        if opt.tile_pad is not None:
            return {}
        return {"tile_pad": default_tile_pad(opt.netG, networks.generator_kwargs(opt))}

    @classmethod
    def data_options(cls, opt: Any) -> Dict[str, Any]:
        """LR/HR pairs at --scale; with test.py's --eval_metrics the images are HR, degraded by data/ itself;
        training crops rotated as well as flipped unless --no_rotate."""
        return {**super().data_options(opt), "sr_scale": opt.scale,
                "sr_test_hr": not opt.isTrain and opt.eval_metrics,
                "sr_rotate": not (opt.isTrain and opt.no_rotate)}

    def __init__(self, opt: Any):
        super().__init__(opt)
        self.scale = opt.scale
        self.visual_names = ["real_A_up", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, False,
                                      opt.init_type, opt.init_gain, self.gpu_ids, **networks.generator_kwargs(opt))
        self.results: List[Dict[str, Any]] = []
        self._upscaler: Optional[Upscaler] = None  # the generator's, made at the first test image
        for warning in tile_warnings(opt.netG, networks.generator_kwargs(opt), opt.tile, opt.tile_pad):
            logger.warning("%s", warning)
        if not self.isTrain:
            return
        if opt.pretrained_G:
            source = load_pretrained_generator(networks.unwrap(self.netG), opt.pretrained_G, opt.netG,
                                               self.shaping_options("G"))
            logger.info("generator initialised from %s", source)
        self.loss_names = ["G_pixel", "G_perceptual", "G_GAN", "D_real", "D_fake"]
        self.netD = networks.define_D(opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm, opt.init_type,
                                      opt.init_gain, self.gpu_ids, **networks.discriminator_kwargs(opt))
        self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
        # One-sided label smoothing: only the discriminator's real targets move below 1.
        self.criterionGAN_D = networks.GANLoss(opt.gan_mode, target_real_label=opt.real_label).to(self.device)
        self.criterionContent = ContentLoss.from_options(opt).to(self.device)  # pixel, perceptual, USM targets
        self.criterionPerceptual = self.criterionContent.perceptual  # None under --lambda_perceptual 0
        if self.criterionPerceptual is not None:
            self.auxiliary_networks.append(self.criterionPerceptual)
        self.optimizer_G = self.make_adam(self.netG.parameters())
        self.optimizer_D = self.make_adam(self.netD.parameters())
        self.optimizers = [self.optimizer_G, self.optimizer_D]
        self.set_epoch(opt.epoch_count)  # train.py sets it again before every epoch
        self._val_images: Optional[List[SRImage]] = None

    # ------------------------------------------------------------------ training
    def set_epoch(self, epoch: int) -> None:
        """Stage and noise level of `epoch`: pixel-only up to --pretrain_epochs, adversarial after."""
        first_adversarial = 1 + self.opt.pretrain_epochs  # epochs count from 1, across resumes
        self.adversarial = epoch >= first_adversarial
        self.d_noise = self.opt.d_noise_std * self.opt.d_noise_decay ** max(epoch - first_adversarial, 0)

    def update_learning_rate(self) -> float:
        with warnings.catch_warnings():
            # D does not step in the SRResNet stage, yet its schedule follows the epochs like G's; torch warns.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            return super().update_learning_rate()

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)  # (N, C, h * scale, w * scale)
        # The LR shown at the HR size with visible pixels, so the three visuals line up.
        self.real_A_up = F.interpolate(self.real_A.detach(), scale_factor=self.scale, mode="nearest")

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn_like(x) * self.d_noise if self.d_noise > 0 else x

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        zero = torch.zeros((), device=self.device)
        if self.adversarial:
            self.set_requires_grad(self.netD, True)
            self.optimizer_D.zero_grad(set_to_none=True)
            with self.autocast():
                self.loss_D, self.loss_D_real, self.loss_D_fake = self.discriminator_loss(
                    self.netD, self._noisy(self.real_B), self._noisy(self.fake_B.detach()), self.criterionGAN_D)
            self.backward(self.loss_D, self.optimizer_D)
            self.step(self.optimizer_D)
            self.set_requires_grad(self.netD, False)
        else:
            self.loss_D_real = self.loss_D_fake = zero
        self.optimizer_G.zero_grad(set_to_none=True)
        with self.autocast():
            pixel, perceptual = self.criterionContent(self.fake_B, self.real_B, with_perceptual=self.adversarial)
            if self.adversarial:
                self.loss_G_pixel = pixel * self.opt.lambda_pixel
                self.loss_G_perceptual = perceptual * self.opt.lambda_perceptual
                # D sees the real batch here only in a relativistic --gan_mode; no noise is drawn for it otherwise.
                real = self._noisy(self.real_B) if self.criterionGAN.relativistic else self.real_B
                self.loss_G_GAN = self.criterionGAN.generator_loss(
                    self.netD, self._noisy(self.fake_B), real) * self.opt.lambda_adv
            else:  # the SRResNet stage: the pixel loss alone
                self.loss_G_pixel, self.loss_G_perceptual, self.loss_G_GAN = pixel, zero, zero
            self.loss_G = self.loss_G_pixel + self.loss_G_perceptual + self.loss_G_GAN
        self.backward(self.loss_G, self.optimizer_G)
        self.step(self.optimizer_G)

    def validate(self) -> Dict[str, float]:
        """Mean PSNR/SSIM (Y channel, `scale` border) of the generator on --val_dataroot's HR images; under
        --ema_decay, of its average (the weights test.py uses, as BasicSR validates)."""
        if not self.opt.val_dataroot:
            return {}
        if self._val_images is None:
            self._val_images = [modcrop(read_image(p), self.scale) for p in make_dataset(self.opt.val_dataroot)]
        net = self.ema.averages.get("G", networks.unwrap(self.netG))
        was_training = self.netG.training
        self.netG.eval()
        upscale = self._upscaler_for(net)
        with self.accel.varying_input_sizes():  # photos and edge tiles of many sizes: no cuDNN re-tuning
            scores = [sr_metrics(upscale(bicubic_downscale(hr, self.scale)).pixels, hr.pixels, border=self.scale)
                      for hr in self._val_images]
        self.netG.train(was_training)
        return {key: sum(s[key] for s in scores) / len(scores) for key in ("psnr", "ssim")}

    # ------------------------------------------------------------------ inference
    def fixed_input_size(self) -> bool:
        """Training crops have one size; test images, validation images and their edge tiles have any."""
        return self.isTrain and super().fixed_input_size()

    def _upscale(self, lr: SRImage) -> SRImage:
        """`lr` upscaled tile by tile (--tile, --tile_pad, --edge_pad) by the generator, through the one inference
        object (models/inference.Upscaler) on this model's device and precision, as validation does too."""
        if self._upscaler is None and self.opt.backend == "onnxruntime":  # the loaded weights, exported once
            net = networks.unwrap(self.netG)
            self._upscaler = Upscaler(onnxruntime_generator(net, self.opt, net.state_dict()), self.scale,
                                      tile=backend_tile(self.opt.netG, self.opt.tile, "onnxruntime", self.scale),
                                      tile_pad=self.opt.tile_pad, edge_pad=self.opt.edge_pad)
        if self._upscaler is None:
            self._upscaler = self._upscaler_for(self.netG)
        return self._upscaler(lr)

    def _upscaler_for(self, net: nn.Module) -> Upscaler:
        tile = backend_tile(self.opt.netG, self.opt.tile, "torch", self.scale)  # plain tiles: their own default
        return Upscaler(net, self.scale, self.device, tile=tile, tile_pad=self.opt.tile_pad,
                        edge_pad=self.opt.edge_pad, accel=self.accel)

    def set_input(self, input: Dict[str, Any]) -> None:
        if self.isTrain:
            return super().set_input(input)
        # Test: batch of one image of any size, kept on the CPU (tiles go to the device one at a time).
        alpha = input.get("A_alpha")
        self.lr_image = SRImage(input["A"][0], None if alpha is None else alpha[0],
                                         int(input["bit_depth"][0]))
        self.hr_image = SRImage(input["B"][0], None, self.lr_image.bit_depth) if "B" in input else None
        self.lr_from: Optional[str] = input["lr_from"][0] if "lr_from" in input else None  # data's description
        self.image_paths = input["A_paths"]

    def test(self) -> None:
        """Upscale the current image with the generator in eval mode (BatchNorm's running statistics) and, with an
        HR image (--eval_metrics), score it. The bicubic baseline is made, and scored, as it is written
        (`save_test_results`)."""
        self.netG.eval()
        self.sr_image: Optional[SRImage] = self._upscale(self.lr_image)
        self.scores: Dict[str, Dict[str, float]] = {}
        if self.hr_image is not None:
            self.scores["SR"] = sr_metrics(self.sr_image.pixels, self.hr_image.pixels, border=self.scale)

    def save_test_results(self, webpage: Any, paths: List[str], opt: Any) -> None:
        """The row LR | bicubic | SR (| HR), each written as the input's kind (alpha, greyscale, 8 or 16 bit).

        One full-size image at a time: the SR is written and released (`sr_image` is None afterwards), then the
        bicubic baseline is made, scored and written. A 2000x1500 photo x4 makes 576 MB float images, and holding
        them together with their PNG encodes took test.py to 3.1 GB (scripts/measure_test_rss.py).
        """
        source, captions = paths[0], {}

        def write(label: str, image: SRImage) -> None:
            save_result_image(webpage, source, label, image)
            score = self.scores.get(label)
            captions[label] = f"{label}: {score['psnr']:.2f} dB / {score['ssim']:.4f}" if score else label

        write("LR", self.lr_image)
        assert self.sr_image is not None, "save_test_results needs test() first"
        write("SR", self.sr_image)
        self.sr_image = None
        bicubic = bicubic_upscale(self.lr_image, self.scale)
        if self.hr_image is not None:
            self.scores["bicubic"] = sr_metrics(bicubic.pixels, self.hr_image.pixels, border=self.scale)
            write("HR", self.hr_image)
        write("bicubic", bicubic)
        del bicubic
        add_result_row(webpage, source, [(label, captions[label]) for label in ("LR", "bicubic", "SR", "HR")
                                         if label in captions], width=opt.display_winsize)
        if self.scores:
            self.results.append(OrderedDict(image=os.path.basename(paths[0]), **{
                f"{label}_{key}": value for label, score in self.scores.items() for key, value in score.items()}))

    def finish_test(self, webpage: Any) -> Optional[str]:
        """With --eval_metrics: the per-image and mean PSNR/SSIM table on the page and `metrics.json` beside it."""
        if not self.results:
            return None
        lr_from = self.lr_from  # how data/ made the LR, the same for every image of the run
        report = write_metrics_report(
            webpage, self.results,
            f"PSNR (dB) / SSIM, Y channel, {self.scale} border pixels cropped, x{self.scale}, LR by {lr_from}",
            info={"scale": self.scale, "protocol": f"Y channel (BT.601), border = scale, LR by {lr_from}"})
        mean = report.mean
        logger.info("x%d over %d images: SR %.2f dB / %.4f, bicubic %.2f dB / %.4f", self.scale, len(self.results),
                    mean["SR_psnr"], mean["SR_ssim"], mean["bicubic_psnr"], mean["bicubic_ssim"])
        return report.path
