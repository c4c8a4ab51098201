"""Optional TensorBoard logging (`--use_tensorboard`): the same scalars and image grids as visdom.

Events go to `<checkpoints_dir>/<name>/tensorboard/`; view them with
`tensorboard --logdir checkpoints/<name>/tensorboard --host 127.0.0.1`. Losses are logged against the number
of training images seen, validation metrics against the epoch, and the current visuals as one grid with the
images side by side (e.g. real_A | fake_B | real_B, or LR | SR | HR for super-resolution).
"""
from __future__ import annotations

import logging
import os
from typing import List, Mapping

import torch

from ..util import tensor2im
from .grid import make_grid

logger = logging.getLogger(__name__)

__all__: List[str] = ["TensorBoardDisplay"]


class TensorBoardDisplay:
    """A SummaryWriter that flushes after every call, so `tensorboard` shows a running training live."""

    def __init__(self, log_dir: str, ncols: int) -> None:
        """`ncols` images per row in the visuals grid (`--display_ncols`)."""
        from torch.utils.tensorboard import SummaryWriter  # needs the optional `tensorboard` package

        os.makedirs(log_dir, exist_ok=True)
        self.writer = SummaryWriter(log_dir=log_dir)
        self.ncols = ncols
        logger.info("TensorBoard events in %s (tensorboard --logdir %s --host 127.0.0.1)", log_dir, log_dir)

    def add_losses(self, losses: Mapping[str, float], step: int) -> None:
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", float(value), step)
        self.writer.flush()

    def add_metrics(self, metrics: Mapping[str, float], epoch: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"val/{name}", float(value), epoch)
        self.writer.flush()

    def add_visuals(self, visuals: Mapping[str, torch.Tensor], step: int) -> None:
        """One grid of the first image of each visual, in `visuals` order, tagged with their labels."""
        if not visuals:
            return
        grid = make_grid([tensor2im(v) for v in visuals.values()], self.ncols)  # (3, Hg, Wg) uint8
        self.writer.add_image("visuals/" + "|".join(visuals.keys()), grid, step, dataformats="CHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
