"""Optional Weights & Biases logging (`--use_wandb`, `--wandb_project_name`): what TensorBoard gets, in a wandb run.

The run is named after `--name`, its config is the run's options, and its files go to
`<checkpoints_dir>/<name>/wandb/`. Losses are logged against `images` (training images seen), validation metrics
against `epoch`, and the current visuals as one image grid (real_A | fake_B | real_B, ...) against `images`; the
x axes are declared with `define_metric`, so the three series never fight over wandb's own step counter. Each
train.py invocation is one wandb run (as in the reference); a resumed run (--continue_train) starts a new one.

wandb's own settings apply: `WANDB_MODE=offline` writes the run to disk only (`wandb sync` uploads it later),
`WANDB_MODE=disabled` turns it off, and online it needs `wandb login` first.
"""
from __future__ import annotations

import logging
from typing import Any, List, Mapping, Optional

import torch

from ..util import tensor2im
from .grid import make_grid

logger = logging.getLogger(__name__)

__all__: List[str] = ["INSTALL_HINT", "WandbDisplay"]

INSTALL_HINT = "pip install wandb (or pip install -e .[wandb])"


class WandbDisplay:
    """One wandb run of a training run, finished by `close` (a failed training is marked failed)."""

    def __init__(self, project: str, name: str, config: Mapping[str, Any], run_dir: str, ncols: int) -> None:
        """`config`: the options as plain values; `run_dir`: the folder wandb writes into (its `wandb/` subfolder);
        `ncols`: images per row in the visuals grid (`--display_ncols`)."""
        try:
            import wandb  # the optional `wandb` package
        except ImportError as e:  # options/ refuses --use_wandb without it; this covers other callers
            raise RuntimeError(f"--use_wandb needs the wandb package: {INSTALL_HINT}") from e
        self._wandb = wandb
        self.run = wandb.init(project=project, name=name, config=dict(config), dir=run_dir)
        self.run.define_metric("images")
        self.run.define_metric("epoch")
        self.run.define_metric("loss/*", step_metric="images")
        self.run.define_metric("visuals", step_metric="images")
        self.run.define_metric("val/*", step_metric="epoch")
        self.ncols = ncols
        logger.info("wandb run %s in project %s (files in %s)", name, project, self.run.dir)

    def add_losses(self, losses: Mapping[str, float], step: int) -> None:
        self.run.log({"images": step, **{f"loss/{name}": float(value) for name, value in losses.items()}})

    def add_metrics(self, metrics: Mapping[str, float], epoch: int) -> None:
        self.run.log({"epoch": epoch, **{f"val/{name}": float(value) for name, value in metrics.items()}})

    def add_visuals(self, visuals: Mapping[str, torch.Tensor], step: int) -> None:
        """One grid of the first image of each visual, in `visuals` order, captioned with their labels."""
        if not visuals:
            return
        grid = make_grid([tensor2im(v) for v in visuals.values()], self.ncols)  # (3, Hg, Wg) uint8
        image = self._wandb.Image(grid.transpose(1, 2, 0), caption=" | ".join(visuals.keys()))  # (Hg, Wg, 3)
        self.run.log({"images": step, "visuals": image})

    def close(self, exit_code: Optional[int] = None) -> None:
        """Finish the run (non-zero `exit_code`: marked failed); later calls do nothing."""
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
