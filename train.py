"""Train a model: pix2pix, CycleGAN (and every other registered model).

    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA
    python train.py --dataroot ./datasets/maps --name maps_cyclegan --model cycle_gan

Writes `<checkpoints_dir>/<name>/`: `<epoch>_net_<G|D|...>.pth`, `latest_net_*.pth`, `train_opt.txt` and
`.json`, `loss_log.txt`, and `web/index.html` with images saved during training.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Optional, Sequence

from data import create_dataset
from models import create_model
from options.train_options import TrainOptions
from util.cli import run_cli, seed_everything
from util.visualizer import Visualizer

logger = logging.getLogger("train")


def crossed(before: int, after: int, freq: int) -> bool:
    """True when a multiple of `freq` lies in (before, after]: frequencies count images, and a batch
    can step over the exact multiple the reference's `total_iters % freq == 0` waits for."""
    return after // freq > before // freq


def main(argv: Optional[Sequence[str]] = None) -> int:
    options = TrainOptions()
    opt = options.parse(argv)
    seed_everything(opt.seed)
    dataset = create_dataset(opt)  # checks the data before any network is built
    dataset_size = len(dataset)
    logger.info("The number of training images = %d", dataset_size)
    model = create_model(opt)
    model.setup(opt)
    options.save(opt)
    visualizer = Visualizer(opt)
    total_iters = 0
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    for epoch in range(opt.epoch_count, last_epoch + 1):
        epoch_start = iter_data_time = time.time()
        epoch_iter = 0
        visualizer.reset()
        for data in dataset:
            iter_start = time.time()
            t_data = iter_start - iter_data_time
            batch_size = data["A"].size(0)
            before, total_iters, epoch_iter = total_iters, total_iters + batch_size, epoch_iter + batch_size
            model.set_input(data)
            model.optimize_parameters()

            if crossed(before, total_iters, opt.display_freq):
                model.compute_visuals()
                save_result = crossed(before, total_iters, opt.update_html_freq)
                visualizer.display_current_results(model.get_current_visuals(), epoch, save_result)
            if crossed(before, total_iters, opt.print_freq):
                losses = model.get_current_losses()
                t_comp = (time.time() - iter_start) / batch_size
                visualizer.print_current_losses(epoch, epoch_iter, losses, t_comp, t_data)
                visualizer.plot_current_losses(epoch, epoch_iter / max(dataset_size, 1), losses)
            if crossed(before, total_iters, opt.save_latest_freq):
                logger.info("saving the latest model (epoch %d, total_iters %d)", epoch, total_iters)
                model.save_networks(f"iter_{total_iters}" if opt.save_by_iter else "latest")
            iter_data_time = time.time()

        if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
            logger.info("saving the model at the end of epoch %d, iters %d", epoch, total_iters)
            model.save_networks("latest")
            model.save_networks(epoch)
        model.update_learning_rate()
        logger.info("End of epoch %d / %d \t Time Taken: %d sec", epoch, last_epoch, time.time() - epoch_start)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
