"""Train a model: pix2pix, CycleGAN (and every other registered model).

    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA
    python train.py --dataroot ./datasets/maps --name maps_cyclegan --model cycle_gan
    python train.py ...same options... --continue_train      # resume exactly where the run stopped
    torchrun --nproc_per_node 4 train.py ...same options...    # DDP: 4 processes, each --batch_size images

Writes `<checkpoints_dir>/<name>/`: `<epoch>_net_<G|D|...>.pth` and `latest_net_*.pth` (reference-compatible
state_dicts), `latest_train_state.pth` (everything needed to resume), `train_opt.txt` and `.json`,
`loss_log.txt`, and `web/index.html` with images saved during training. Ctrl-C or SIGTERM finishes the
current step, saves, and exits with a message saying how to resume. The run owns that folder while it runs: a
second train.py into it is refused at once, naming this one's PID (util/locks.py).

Under torchrun (or `--gpu_ids 0,1`, which starts one process per GPU itself, util/launcher.py) every process
trains on its share of each batch and rank 0 alone logs, displays and saves; see util/distributed.py.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Optional, Sequence

from data import create_dataset
from models import create_model, network_options
from models.training import train_state
from options.train_options import TrainOptions
from util import distributed, launcher
from util.cli import run_cli, seed_everything
from util.errors import TrainingError
from util.locks import FolderLock
from util.stop import GracefulStop
from util.reports import Visualizer

logger = logging.getLogger("train")


def crossed(before: int, after: int, freq: int) -> bool:
    """True when a multiple of `freq` lies in (before, after]: frequencies count images, and a batch
    can step over the exact multiple the reference's `total_iters % freq == 0` waits for."""
    return after // freq > before // freq


def main(argv: Optional[Sequence[str]] = None) -> int:
    if not distributed.world_from_env().is_main:
        logging.getLogger().setLevel(logging.ERROR)  # rank 0 alone logs progress and warnings
    argv = list(sys.argv[1:] if argv is None else argv)
    options = TrainOptions()
    opt = options.parse(argv)
    placement = options.placement
    # The run owns its folder until it exits, before anything is written: rank 0 writes it, and a launcher's
    # workers adopt the launcher's lock (util/locks.py).
    owner = FolderLock(os.path.join(opt.checkpoints_dir, opt.name), "train.py",
                       "wait for that run to end, or give this one another --name or --checkpoints_dir")
    with owner if placement.world.is_main else contextlib.nullcontext():
        if placement.needs_launch:
            return launcher.relaunch(os.path.abspath(__file__), argv, len(opt.gpu_ids), **owner.for_children())
        placement.activate()  # before NCCL and the data loader start: each rank on its own GPU
        distributed.init(placement.world, use_cuda=placement.use_cuda)
        try:
            return train(opt, options, placement.world, argv)
        finally:
            distributed.shutdown()


def train(opt, options: TrainOptions, world: distributed.World, argv: Sequence[str]) -> int:
    state = train_state.prepare_resume(opt, world, network_options(opt))
    seed_everything(opt.seed)  # the same on every rank: equal initial weights
    dataset = create_dataset(opt, world.rank, world.size)  # checks the data before any network is built
    dataset.set_base_seed(distributed.broadcast_int(dataset.base_seed))  # one sample order for all ranks
    dataset_size = len(dataset)
    logger.info("The number of training images = %d", dataset_size)
    model = create_model(opt)
    model.setup(opt, load_networks=state is None)
    epoch, position, total_iters = train_state.start_position(model, dataset, state, opt)
    distributed.diverge_random_streams(world)  # dropout and image pools differ between ranks
    if world.distributed:
        logger.info("DDP: %d processes x --batch_size %d = %d images per step", world.size, opt.batch_size,
                    world.size * opt.batch_size)
    if world.is_main:
        options.save(opt)
        visualizer = Visualizer(opt)
    else:
        visualizer = None
    checkpoint = train_state.Checkpointer(model, dataset, opt)
    save_dir = model.save_dir
    resume = distributed.resume_command("train.py", argv, world)
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    run_start = time.time()

    def save(labels: Sequence, at_epoch: int, at_position: int) -> None:
        if world.is_main:
            checkpoint.save(labels, at_epoch, at_position, total_iters)
        distributed.barrier()  # every rank continues (or exits) once the files are complete

    # The visualizer closes its live displays on the way out (a wandb run is marked failed if training raised).
    with GracefulStop() as stop, visualizer if visualizer is not None else contextlib.nullcontext():
        for epoch in range(epoch, last_epoch + 1):
            epoch_start = iter_data_time = time.time()
            dataset.set_epoch(epoch, start=position)
            model.set_epoch(epoch)
            position = 0  # only the first, resumed epoch starts in the middle
            if visualizer:
                visualizer.reset()
            for data in dataset:
                iter_start = time.time()
                t_data = iter_start - iter_data_time
                batch_size = data["A"].size(0) * world.size  # images in this step, all ranks together
                before, total_iters = total_iters, total_iters + batch_size
                model.set_input(data)
                model.optimize_parameters()
                # The step's one device-to-host read: non-finite losses and stop requests, of every rank.
                bad, stopping = model.check_step(lambda: stop.requested)
                if bad:
                    raise TrainingError(
                        f"loss {', '.join(bad)} is not finite at epoch {epoch}, sample {dataset.position} "
                        f"(image {total_iters} of the run); nothing was saved from this step. Lower --lr, check "
                        f"the data, or resume from the last checkpoint with --continue_train")

                if visualizer and crossed(before, total_iters, opt.display_freq):
                    model.compute_visuals()
                    save_result = crossed(before, total_iters, opt.update_html_freq)
                    visualizer.display_current_results(model.get_current_visuals(), epoch, save_result, total_iters)
                if visualizer and crossed(before, total_iters, opt.print_freq):
                    losses = model.get_current_losses()
                    t_comp = (time.time() - iter_start) / batch_size
                    visualizer.print_current_losses(epoch, dataset.position, losses, t_comp, t_data)
                    visualizer.plot_current_losses(epoch, dataset.position / max(dataset_size, 1), losses,
                                                   total_iters)
                if crossed(before, total_iters, opt.save_latest_freq):
                    logger.info("saving the latest model (epoch %d, total_iters %d)", epoch, total_iters)
                    save([f"iter_{total_iters}" if opt.save_by_iter else "latest"], epoch, dataset.position)
                # A signal may reach the ranks at different steps: all stop at the first step any saw it.
                if stopping:
                    save(["latest"], epoch, dataset.position)
                    logger.warning("stopped at epoch %d, sample %d; state saved in %s. Resume with:\n  %s", epoch,
                                   dataset.position, save_dir, resume)
                    return stop.exit_code
                iter_data_time = time.time()

            if dataset.skipped:
                logger.warning("epoch %d: %d bad images skipped so far", epoch, len(dataset.skipped))
            if visualizer:
                metrics = model.validate()  # rank 0 alone: inference runs on the bare network, no collectives
                if metrics:
                    visualizer.plot_current_metrics(epoch, metrics, elapsed=time.time() - run_start)
            model.update_learning_rate()
            stopping = distributed.any_rank(stop.requested)
            if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch or stopping:
                logger.info("saving the model at the end of epoch %d, iters %d", epoch, total_iters)
                labels = ["latest", epoch] if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch else ["latest"]
                save(labels, epoch + 1, 0)
            logger.info("End of epoch %d / %d \t Time Taken: %d sec", epoch, last_epoch, time.time() - epoch_start)
            if stopping:
                logger.warning("stopped after epoch %d; state saved in %s. Resume with:\n  %s", epoch, save_dir,
                               resume)
                return stop.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
