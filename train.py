"""Train a model: pix2pix, CycleGAN (and every other registered model).

    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA
    python train.py --dataroot ./datasets/maps --name maps_cyclegan --model cycle_gan
    python train.py ...same options... --continue_train      # resume exactly where the run stopped
    torchrun --nproc_per_node 4 train.py ...same options...    # DDP: 4 processes, each --batch_size images

Writes `<checkpoints_dir>/<name>/`: `<epoch>_net_<G|D|...>.pth` and `latest_net_*.pth` (reference-compatible
state_dicts), `latest_train_state.pth` (everything needed to resume), `train_opt.txt` and `.json`,
`loss_log.txt`, and `web/index.html` with images saved during training. Ctrl-C or SIGTERM finishes the
current step, saves, and exits with a message saying how to resume.

Under torchrun (or `--gpu_ids 0,1`, which starts torchrun itself) every process trains on its share of
each batch and rank 0 alone logs, displays and saves; see util/distributed.py.
"""
from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from typing import Optional, Sequence

from data import create_dataset
from models import MODELS, create_model
from options.train_options import TrainOptions
from util import distributed, train_state
from util.cli import run_cli, seed_everything
from util.errors import CheckpointError, TrainingError
from util.fileio import remove_stale_temp_files
from util.stop import GracefulStop
from util.visualizer import Visualizer

logger = logging.getLogger("train")


def crossed(before: int, after: int, freq: int) -> bool:
    """True when a multiple of `freq` lies in (before, after]: frequencies count images, and a batch
    can step over the exact multiple the reference's `total_iters % freq == 0` waits for."""
    return after // freq > before // freq


def resume_command(argv: Optional[Sequence[str]], world: distributed.World = distributed.World()) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--continue_train" not in args:
        args.append("--continue_train")
    launcher = f"torchrun --nproc_per_node {world.local_size} " if world.distributed else "python "
    return launcher + "train.py " + " ".join(shlex.quote(a) for a in args)


def launch_processes(argv: Optional[Sequence[str]], nproc: int) -> int:
    """`--gpu_ids 0,1` outside torchrun: run this same command under torchrun, one process per GPU."""
    command = distributed.launch_command(os.path.abspath(__file__), list(sys.argv[1:] if argv is None else argv),
                                         nproc)
    logger.info("%d GPUs: starting one training process each with\n  %s", nproc, shlex.join(command))
    return subprocess.call(command)


def main(argv: Optional[Sequence[str]] = None) -> int:
    world = distributed.world_from_env()
    if not world.is_main:
        logging.getLogger().setLevel(logging.ERROR)  # rank 0 alone logs progress and warnings
    options = TrainOptions()
    opt = options.parse(argv)
    if len(opt.gpu_ids) > 1 and not world.distributed:
        return launch_processes(argv, len(opt.gpu_ids))
    if opt.gpu_ids:
        import torch

        torch.cuda.set_device(opt.gpu_ids[0])  # before NCCL starts: each rank on its own GPU
    distributed.init(world, use_cuda=bool(opt.gpu_ids))
    try:
        return train(opt, options, world, argv)
    finally:
        distributed.shutdown()


def train(opt, options: TrainOptions, world: distributed.World, argv: Optional[Sequence[str]]) -> int:
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    train_state.check_writable(save_dir)
    if world.is_main:
        remove_stale_temp_files(save_dir)
    state = None
    resumable = opt.continue_train and opt.epoch == "latest" and opt.load_iter == 0
    has_state = resumable and os.path.isfile(train_state.state_path(save_dir))
    if distributed.any_rank(has_state) and not distributed.all_ranks(has_state):
        raise CheckpointError(f"{train_state.state_path(save_dir)} is missing on some nodes: put --checkpoints_dir "
                              f"on storage all nodes share to resume a multi-node run")
    distributed.barrier()  # no rank reads the checkpoint folder while rank 0 still tidies it
    if has_state:
        state = train_state.load(save_dir)
        train_state.check_compatible(state["options"], opt, MODELS.get(opt.model).network_options)
    seed_everything(opt.seed)  # the same on every rank: equal initial weights
    dataset = create_dataset(opt, world.rank, world.size)  # checks the data before any network is built
    dataset.set_base_seed(distributed.broadcast_int(dataset.base_seed))  # one sample order for all ranks
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
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    run_start = time.time()

    def save(labels: Sequence, at_epoch: int, at_position: int) -> None:
        if world.is_main:
            checkpoint.save(labels, at_epoch, at_position, total_iters)
        distributed.barrier()  # every rank continues (or exits) once the files are complete

    with GracefulStop() as stop:
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
                bad = model.nonfinite_losses()
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
                if distributed.any_rank(stop.requested):
                    save(["latest"], epoch, dataset.position)
                    logger.warning("stopped at epoch %d, sample %d; state saved in %s. Resume with:\n  %s", epoch,
                                   dataset.position, save_dir, resume_command(argv, world))
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
                               resume_command(argv, world))
                return stop.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
