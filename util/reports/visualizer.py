"""Training feedback: the loss log, the per-epoch HTML page of images and the optional live displays (visdom,
TensorBoard, Weights & Biases).

Output locations and formats match the reference (`<checkpoints_dir>/<name>/loss_log.txt`,
`<checkpoints_dir>/<name>/web/index.html`, `web/images/epoch%.3d_<label>.png`), so existing scripts that
parse the loss log or browse the web folder keep working.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, List, Mapping, Optional

import torch

from ..util import mkdirs, save_image, tensor2im
from .history import LossHistory, record
from .html import HTML
from .tensorboard_display import TensorBoardDisplay
from .visdom_display import VisdomDisplay
from .wandb_display import WandbDisplay

logger = logging.getLogger(__name__)

__all__: List[str] = ["Visualizer"]


class Visualizer:
    """Collects what training wants to show and sends it to the log file, the HTML page and visdom.

    Everything here is optional feedback: a missing visdom server only disables the live display.
    `opt` is read, never modified.
    """

    def __init__(self, opt: Any) -> None:
        self.opt = opt
        self.name: str = opt.name
        self.display_id: int = int(opt.display_id)
        self.win_size: int = int(opt.display_winsize)
        self.is_train: bool = bool(opt.isTrain)
        self.use_html: bool = self.is_train and not opt.no_html
        # Reference semantics: the first display call of an epoch always saves; `reset()` re-arms it.
        self.saved = False
        self.history: Optional[LossHistory] = None
        self.metric_history: Optional[LossHistory] = None

        self.display: Optional[VisdomDisplay] = None
        if self.display_id > 0:  # display_id <= 0: nothing may open a connection anywhere
            self.display = VisdomDisplay(
                opt.display_server,
                opt.display_port,
                opt.display_env,
                opt.display_ncols,
                opt.display_winsize,
                title=self.name,
                win_id=self.display_id,
            )

        expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.tensorboard: Optional[TensorBoardDisplay] = None
        if getattr(opt, "use_tensorboard", False):
            self.tensorboard = TensorBoardDisplay(os.path.join(expr_dir, "tensorboard"), int(opt.display_ncols))
        self.wandb: Optional[WandbDisplay] = None
        if getattr(opt, "use_wandb", False):
            config = opt.plain_dict() if hasattr(opt, "plain_dict") else dict(vars(opt))
            self.wandb = WandbDisplay(opt.wandb_project_name, self.name, config, expr_dir, int(opt.display_ncols))
        self.web_dir = os.path.join(expr_dir, "web")
        self.img_dir = os.path.join(self.web_dir, "images")
        if self.use_html:
            logger.info("create web directory %s", self.web_dir)
            mkdirs([self.web_dir, self.img_dir])

        self.log_name = os.path.join(expr_dir, "loss_log.txt")
        if self.is_train:
            mkdirs(expr_dir)
            now = time.strftime("%c")
            with open(self.log_name, "a", encoding="utf-8") as log_file:
                log_file.write("================ Training Loss (%s) ================\n" % now)

    def __enter__(self) -> "Visualizer":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(failed=exc_type is not None)

    def close(self, failed: bool = False) -> None:
        """Finish the live displays that need it (the wandb run; `failed`: training raised)."""
        if self.wandb is not None:
            self.wandb.close(exit_code=1 if failed else 0)
        if self.tensorboard is not None:
            self.tensorboard.close()

    def reset(self) -> None:
        """Mark the start of a new epoch: the next `display_current_results` saves images again."""
        self.saved = False

    # ------------------------------------------------------------------ images

    def display_current_results(
        self, visuals: Mapping[str, torch.Tensor], epoch: int, save_result: bool, step: Optional[int] = None
    ) -> None:
        """Show the current visuals in visdom and, when asked, save them to the HTML page.

        Images are saved when `save_result` is true or when nothing was saved yet this epoch (reference
        semantics), and only when the HTML page is enabled (training without --no_html).
        """
        if self.display is not None:
            self.display.show_images(visuals, epoch)
        if self.tensorboard is not None and step is not None:
            self.tensorboard.add_visuals(visuals, step)
        if self.wandb is not None and step is not None:
            self.wandb.add_visuals(visuals, step)

        if self.use_html and (save_result or not self.saved):
            self.saved = True
            for label, image in visuals.items():
                img_path = os.path.join(self.img_dir, _image_name(epoch, label))
                save_image(tensor2im(image), img_path)
            self._write_page(list(visuals.keys()), epoch)

    def _write_page(self, labels: List[str], epoch: int) -> None:
        """Rebuild web/index.html: one section per epoch, newest first, only images present on disk."""
        webpage = HTML(self.web_dir, "Experiment name = %s" % self.name, refresh=1)
        for n in range(epoch, 0, -1):
            names = [_image_name(n, label) for label in labels]
            present = [(label, name) for label, name in zip(labels, names)
                       if os.path.isfile(os.path.join(self.img_dir, name))]
            if not present:
                continue
            webpage.add_header("epoch [%d]" % n)
            ims = ["images/" + name for _, name in present]
            txts = [label for label, _ in present]
            webpage.add_images(ims, txts, ims, width=self.win_size)
        webpage.save()

    # ------------------------------------------------------------------ losses

    def plot_current_losses(
        self, epoch: int, counter_ratio: float, losses: Mapping[str, float], step: Optional[int] = None
    ) -> None:
        """Record the losses at `epoch + counter_ratio` and redraw the visdom loss plot (if on); TensorBoard and
        wandb get them at `step` (training images seen).

        The legend is fixed by the first call, like the reference; later calls must report the same names.
        """
        self.history = record(self.history, epoch + counter_ratio, losses)
        if self.display is not None:
            self.display.plot_losses(self.history)
        if self.tensorboard is not None and step is not None:
            self.tensorboard.add_losses(losses, step)
        if self.wandb is not None and step is not None:
            self.wandb.add_losses(losses, step)

    def plot_current_metrics(self, epoch: int, metrics: Mapping[str, float], elapsed: Optional[float] = None) -> None:
        """Validation metrics of an epoch (e.g. PSNR/SSIM) to the log, `metrics_log.txt`, visdom's metrics window,
        TensorBoard and wandb; `elapsed` is the training time so far in seconds (for curves against time)."""
        message = f"(epoch: {epoch}, elapsed: {elapsed if elapsed is not None else float('nan'):.1f} s)" + "".join(
            f" {k}: {float(v):.4f}" for k, v in metrics.items())
        logger.info("validation %s", message)
        if self.is_train:
            with open(os.path.join(os.path.dirname(self.log_name), "metrics_log.txt"), "a",
                      encoding="utf-8") as log_file:
                log_file.write(message + "\n")
        self.metric_history = record(self.metric_history, float(epoch), metrics)
        if self.display is not None:
            self.display.plot_metrics(self.metric_history)
        if self.tensorboard is not None:
            self.tensorboard.add_metrics(metrics, epoch)
        if self.wandb is not None:
            self.wandb.add_metrics(metrics, epoch)

    def print_current_losses(
        self, epoch: int, iters: int, losses: Mapping[str, float], t_comp: float, t_data: float
    ) -> str:
        """Log one line of losses and append it to loss_log.txt; returns the line.

        Format (the reference's, which log parsers rely on):
        `(epoch: 1, iters: 100, time: 0.123, data: 0.010) G_GAN: 0.693 G_L1: 12.345`
        """
        message = "(epoch: %d, iters: %d, time: %.3f, data: %.3f)" % (epoch, iters, t_comp, t_data)
        for k, v in losses.items():
            message += " %s: %.3f" % (k, float(v))
        logger.info("%s", message)
        if self.is_train:
            with open(self.log_name, "a", encoding="utf-8") as log_file:
                log_file.write(message + "\n")
                log_file.flush()
        return message


def _image_name(epoch: int, label: str) -> str:
    """The reference's name for a training image on the page, e.g. 'epoch005_fake_B.png'."""
    return "epoch%.3d_%s.png" % (epoch, label)
