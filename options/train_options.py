"""Training flags (display, saving, schedule, optimiser), with the reference's names and defaults."""
from __future__ import annotations

import argparse
import importlib.util

from models import networks
from models.training.schedulers import SCHEDULE_OPTIONS, policies_reading
from util.errors import OptionError

from .base_options import BaseOptions, Options, _require


def _milestones(text: str) -> tuple:
    """"e1,e2,..." -> strictly increasing positive epochs (an empty text: none)."""
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs, got {text!r}") from None
    if any(v < 1 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise argparse.ArgumentTypeError(f"{text!r}: epochs must be >= 1 and strictly increasing")
    return values


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = BaseOptions.initialize(self, parser)
        g = parser.add_argument_group("visdom and HTML visualization")
        g.add_argument("--display_freq", type=int, default=400, help="frequency of showing training results on screen")
        g.add_argument("--display_ncols", type=int, default=4,
                       help="if positive, display all images in a single visdom panel with this many per row")
        g.add_argument("--display_id", type=int, default=1, help="window id of the web display; 0 or less: off")
        g.add_argument("--display_server", type=str, default="http://localhost", help="visdom server of the display")
        g.add_argument("--display_env", type=str, default="main",
                       help='visdom display environment name (default is "main")')
        g.add_argument("--display_port", type=int, default=8097, help="visdom port of the web display")
        g.add_argument("--update_html_freq", type=int, default=1000,
                       help="frequency of saving training results to html")
        g.add_argument("--print_freq", type=int, default=100, help="frequency of showing training results on console")
        g.add_argument("--no_html", action="store_true",
                       help="do not save intermediate training results to [checkpoints_dir]/[name]/web/")
        g.add_argument("--use_tensorboard", action="store_true",
                       help="also log losses and images for TensorBoard in [checkpoints_dir]/[name]/tensorboard/ "
                            "(needs the tensorboard package)")
        g = parser.add_argument_group("network saving and loading")
        g.add_argument("--save_latest_freq", type=int, default=5000, help="frequency of saving the latest results")
        g.add_argument("--save_epoch_freq", type=int, default=5,
                       help="frequency of saving checkpoints at the end of epochs")
        g.add_argument("--save_by_iter", action="store_true", help="whether saves model by iteration")
        g.add_argument("--continue_train", action="store_true", help="continue training: load the latest model")
        g.add_argument("--epoch_count", type=int, default=1,
                       help="the starting epoch count, we save the model by <epoch_count>, <epoch_count>+<save_latest_freq>, ...")
        g.add_argument("--phase", type=str, default="train", help="train, val, test, etc")
        g = parser.add_argument_group("training parameters")
        g.add_argument("--n_epochs", type=int, default=100, help="number of epochs with the initial learning rate")
        g.add_argument("--n_epochs_decay", type=int, default=100,
                       help="number of epochs to linearly decay learning rate to zero")
        g.add_argument("--beta1", type=float, default=0.5, help="momentum term of adam")
        g.add_argument("--beta2", type=float, default=0.999,
                       help="second-moment decay of adam (the reference's fixed 0.999; Real-ESRGAN trains with 0.99)")
        g.add_argument("--lr", type=float, default=0.0002, help="initial learning rate for adam")
        g.add_argument("--gan_mode", type=str, default="lsgan", choices=networks.GAN_MODES.names(),
                       help="the type of GAN objective; vanilla is the cross-entropy of the original GAN paper")
        g.add_argument("--pool_size", type=int, default=50,
                       help="the size of image buffer that stores previously generated images")
        g.add_argument("--lr_policy", type=str, default="linear", choices=networks.LR_POLICIES.names(),
                       help="learning rate policy")
        g.add_argument("--lr_decay_iters", type=int, default=50, help="multiply by a gamma every lr_decay_iters iterations")
        g.add_argument("--lr_milestones", type=_milestones, default=(),
                       help="--lr_policy multistep: epochs after which the learning rate is multiplied by --lr_gamma, "
                            "e.g. 50,100,150 (BasicSR's MultiStepLR, counted in epochs)")
        g.add_argument("--lr_gamma", type=float, default=0.1,
                       help="factor of --lr_policy step and multistep (0.1, the reference's; ESRGAN halves: 0.5)")
        g.add_argument("--ema_decay", type=float, default=0.0,
                       help="keep an exponential moving average of the generators' weights with this decay (e.g. "
                            "0.999, as Real-ESRGAN), saved as <epoch>_net_G_ema.pth and used by test.py; 0: off")
        return parser

    def validate(self, opt: Options) -> None:
        super().validate(opt)
        for flag in ("display_freq", "print_freq", "update_html_freq", "save_latest_freq", "save_epoch_freq",
                     "epoch_count", "lr_decay_iters"):
            _require(getattr(opt, flag) >= 1, f"--{flag} must be >= 1, got {getattr(opt, flag)}")
        for flag in ("n_epochs", "n_epochs_decay", "pool_size"):
            _require(getattr(opt, flag) >= 0, f"--{flag} must be >= 0, got {getattr(opt, flag)}")
        _require(opt.n_epochs + opt.n_epochs_decay >= 1, "--n_epochs + --n_epochs_decay must be >= 1")
        # Adam moves every weight by up to --lr per step: above 1 no network's weights (about 0.02 to 1) survive it.
        _require(0 < opt.lr <= 1, f"--lr must be in (0, 1] (Adam moves each weight by up to --lr per step; the "
                                  f"models' defaults are 1e-4 and 2e-4), got {opt.lr}")
        _require(0 <= opt.beta1 < 1, f"--beta1 must be in [0, 1), got {opt.beta1}")
        _require(0 <= opt.beta2 < 1, f"--beta2 must be in [0, 1), got {opt.beta2}")
        _require(0 < opt.lr_gamma <= 1, f"--lr_gamma must be in (0, 1], got {opt.lr_gamma}")
        _require(opt.lr_policy != "multistep" or bool(opt.lr_milestones),
                 "--lr_policy multistep needs --lr_milestones (epochs, e.g. 50,100,150)")
        # A schedule setting the chosen policy does not read would be ignored: the run would follow another
        # schedule than the one the user set up.
        for flag in SCHEDULE_OPTIONS:
            users = policies_reading(flag)
            _require(opt.lr_policy in users or getattr(opt, flag) == self.parser.get_default(flag),
                     f"--{flag} is a setting of --lr_policy {' or '.join(users)}, which this run does not use "
                     f"(--lr_policy {opt.lr_policy}): add --lr_policy {users[0]}, or leave --{flag} out")
        _require(opt.lr_policy != "cosine" or opt.n_epochs_decay == 0,
                 f"--lr_policy cosine anneals the rate to zero over --n_epochs ({opt.n_epochs}), and over the "
                 f"--n_epochs_decay {opt.n_epochs_decay} epochs after them it would climb back: give the run's "
                 f"length as --n_epochs and --n_epochs_decay 0")
        _require(0 <= opt.ema_decay < 1, f"--ema_decay must be in [0, 1) (0: no average), got {opt.ema_decay}")
        # With several processes the first discriminator backward would crash; in one, syncbatch is plain batch
        # norm, so the combination is refused everywhere rather than only once the run is scaled out.
        _require(not (opt.norm == "syncbatch" and opt.gan_mode == "wgangp"),
                 "--norm syncbatch with --gan_mode wgangp: the gradient penalty differentiates the discriminator's "
                 "gradient again, and SyncBatchNorm's backward has no derivative (batch_norm_backward_elemt); use "
                 "--norm batch (statistics per process) or instance, or another --gan_mode")
        _require(not opt.use_tensorboard or importlib.util.find_spec("tensorboard") is not None,
                 "--use_tensorboard needs the tensorboard package: pip install tensorboard "
                 "(or pip install -e .[tensorboard])")
        _require(not opt.use_wandb or importlib.util.find_spec("wandb") is not None,
                 "--use_wandb needs the wandb package: pip install wandb (or pip install -e .[wandb])")
        if not 1 <= opt.display_port <= 65535:
            raise OptionError(f"--display_port must be in 1..65535, got {opt.display_port}")
