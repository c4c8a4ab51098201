"""Train a model: pix2pix, CycleGAN (and every other registered model).

    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA
    python train.py --dataroot ./datasets/maps --name maps_cyclegan --model cycle_gan
    python train.py ...same options... --continue_train      # resume exactly where the run stopped

Writes `<checkpoints_dir>/<name>/`: `<epoch>_net_<G|D|...>.pth` and `latest_net_*.pth` (reference-compatible
state_dicts), `latest_train_state.pth` (everything needed to resume), `train_opt.txt` and `.json`,
`loss_log.txt`, and `web/index.html` with images saved during training. Ctrl-C or SIGTERM finishes the
current step, saves, and exits with a message saying how to resume.
"""
from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from typing import Optional, Sequence

from data import create_dataset
from models import MODELS, create_model
from options.train_options import TrainOptions
from util import train_state
from util.cli import run_cli, seed_everything
from util.errors import TrainingError
from util.fileio import remove_stale_temp_files
from util.stop import GracefulStop
from util.visualizer import Visualizer

logger = logging.getLogger("train")


def crossed(before: int, after: int, freq: int) -> bool:
    """True when a multiple of `freq` lies in (before, after]: frequencies count images, and a batch
    can step over the exact multiple the reference's `total_iters % freq == 0` waits for."""
    return after // freq > before // freq


def resume_command(argv: Optional[Sequence[str]]) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--continue_train" not in args:
        args.append("--continue_train")
    return "python train.py " + " ".join(shlex.quote(a) for a in args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    options = TrainOptions()
    opt = options.parse(argv)
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    train_state.check_writable(save_dir)
    remove_stale_temp_files(save_dir)
    state = None
    resumable = opt.continue_train and opt.epoch == "latest" and opt.load_iter == 0
    if resumable and os.path.isfile(train_state.state_path(save_dir)):
        state = train_state.load(save_dir)
        train_state.check_compatible(state["options"], opt, MODELS.get(opt.model).network_options)
    seed_everything(opt.seed)
    dataset = create_dataset(opt)  # checks the data before any network is built
    dataset_size = len(dataset)
    logger.info("The number of training images = %d", dataset_size)
    model = create_model(opt)
    model.setup(opt, load_networks=state is None)
    epoch, position, total_iters = opt.epoch_count, 0, 0
    if state is not None:
        epoch, position, total_iters = train_state.restore(model, dataset, state)
        logger.info("resuming at epoch %d, sample %d of %d (from %s)", epoch, position, dataset_size,
                    train_state.state_path(save_dir))
    elif opt.continue_train:
        logger.warning("no training state in %s: networks loaded from the '%s' files, optimisers start afresh "
                       "at --epoch_count %d", save_dir, opt.epoch if opt.load_iter == 0 else opt.load_iter,
                       opt.epoch_count)
    options.save(opt)
    visualizer = Visualizer(opt)
    checkpoint = train_state.Checkpointer(model, dataset, opt)
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    run_start = time.time()
    with GracefulStop() as stop:
        for epoch in range(epoch, last_epoch + 1):
            epoch_start = iter_data_time = time.time()
            dataset.set_epoch(epoch, start=position)
            model.set_epoch(epoch)
            position = 0  # only the first, resumed epoch starts in the middle
            visualizer.reset()
            for data in dataset:
                iter_start = time.time()
                t_data = iter_start - iter_data_time
                batch_size = data["A"].size(0)
                before, total_iters = total_iters, total_iters + batch_size
                model.set_input(data)
                model.optimize_parameters()
                bad = model.nonfinite_losses()
                if bad:
                    raise TrainingError(
                        f"loss {', '.join(bad)} is not finite at epoch {epoch}, sample {dataset.position} "
                        f"(image {total_iters} of the run); nothing was saved from this step. Lower --lr, check "
                        f"the data, or resume from the last checkpoint with --continue_train")

                if crossed(before, total_iters, opt.display_freq):
                    model.compute_visuals()
                    save_result = crossed(before, total_iters, opt.update_html_freq)
                    visualizer.display_current_results(model.get_current_visuals(), epoch, save_result, total_iters)
                if crossed(before, total_iters, opt.print_freq):
                    losses = model.get_current_losses()
                    t_comp = (time.time() - iter_start) / batch_size
                    visualizer.print_current_losses(epoch, dataset.position, losses, t_comp, t_data)
                    visualizer.plot_current_losses(epoch, dataset.position / max(dataset_size, 1), losses,
                                                   total_iters)
                if crossed(before, total_iters, opt.save_latest_freq):
                    logger.info("saving the latest model (epoch %d, total_iters %d)", epoch, total_iters)
                    label = f"iter_{total_iters}" if opt.save_by_iter else "latest"
                    checkpoint.save([label], epoch, dataset.position, total_iters)
                if stop.requested:
                    checkpoint.save(["latest"], epoch, dataset.position, total_iters)
                    logger.warning("stopped at epoch %d, sample %d; state saved in %s. Resume with:\n  %s", epoch,
                                   dataset.position, save_dir, resume_command(argv))
                    return stop.exit_code
                iter_data_time = time.time()

            if dataset.skipped:
                logger.warning("epoch %d: %d bad images skipped so far", epoch, len(dataset.skipped))
            metrics = model.validate()
            if metrics:
                visualizer.plot_current_metrics(epoch, metrics, elapsed=time.time() - run_start)
            model.update_learning_rate()
            if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch or stop.requested:
                logger.info("saving the model at the end of epoch %d, iters %d", epoch, total_iters)
                labels = ["latest", epoch] if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch else ["latest"]
                checkpoint.save(labels, epoch + 1, 0, total_iters)
            logger.info("End of epoch %d / %d \t Time Taken: %d sec", epoch, last_epoch, time.time() - epoch_start)
            if stop.requested:
                logger.warning("stopped after epoch %d; state saved in %s. Resume with:\n  %s", epoch, save_dir,
                               resume_command(argv))
                return stop.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
