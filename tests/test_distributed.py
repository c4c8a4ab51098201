"""DDP on CPU with gloo: two processes on this machine's cores, tiny models.

The claims: after N steps both ranks hold identical parameters, equal to a single process that takes the
same global batch (2 x --batch_size) within TOLERANCE; train.py under torchrun logs and saves once and resumes
exactly; the sampler splits every global batch between the ranks without overlap.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from data import EpochSampler
from util import distributed

from helpers import ROOT

# Two ranks sum their half-batch gradients in another order than one process does, so parameters agree to
# rounding only; Adam divides by the gradient's own size, so the difference does not grow with the lr.
TOLERANCE = 1e-5
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
TINY = ["--gpu_ids", "-1", "--display_id", "0", "--ngf", "8", "--ndf", "8", "--load_size", "32", "--crop_size", "32",
        "--seed", "3", "--amp", "none", "--num_threads", "0", "--lr", "0.002"]
# Per model: data layout and flags that make one process with batch 2B the same computation as 2 x B
# (no dropout, no batch statistics, no image pool, no D-input noise: those differ between ranks on purpose).
# No norm layers: the conv biases before InstanceNorm have an exactly-zero gradient, so their float
# gradients are rounding noise, which Adam normalises into updates of +-lr whose signs differ between runs.
MODELS = {
    "pix2pix": ("aligned", ["--netG", "resnet_6blocks", "--norm", "none", "--no_dropout"]),
    "cycle_gan": ("unaligned", ["--netG", "resnet_6blocks", "--pool_size", "0", "--norm", "none"]),
    "srgan": ("single", ["--n_blocks", "1", "--netD_head", "conv", "--lambda_perceptual", "0", "--norm", "none",
                         "--crop_size", "32", "--pretrain_epochs", "0"]),
}


def _env() -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _run(command: List[str], timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("ddp_data")
    folders = {}
    for layout in ("aligned", "unaligned", "single"):
        out = root / layout
        _run([sys.executable, "scripts/make_demo_data.py", "--out", str(out), "--n_train", "12", "--n_test", "1",
              "--layout", layout])
        folders[layout] = out
    return folders


@pytest.mark.parametrize("model", sorted(MODELS))
def test_two_ranks_match_one_process_with_the_global_batch(tmp_path, demo_data, model) -> None:
    layout, extra = MODELS[model]
    steps, per_rank = 3, 2
    common = [*TINY, "--dataroot", str(demo_data[layout]), "--model", model, "--checkpoints_dir", str(tmp_path),
              "--name", "ddp", *extra]
    _run([*TORCHRUN, "tests/ddp_worker.py", str(tmp_path / "ddp.pt"), str(steps), *common,
          "--batch_size", str(per_rank)])
    _run([sys.executable, "tests/ddp_worker.py", str(tmp_path / "one.pt"), str(steps), *common,
          "--batch_size", str(2 * per_rank)])
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    assert ddp["steps"] == one["steps"] == steps
    assert ddp["images_rank0"] == steps * per_rank
    assert ddp["position"] == one["position"] == steps * 2 * per_rank  # global samples, counted alike
    # Same initial weights on both ranks and in the single process (same seed; DDP broadcasts rank 0's).
    assert torch.equal(ddp["initial"][0], ddp["initial"][1])
    assert torch.equal(ddp["initial"][0], one["initial"][0])
    # Identical on both ranks after the steps: the all-reduced gradients are the same bits everywhere.
    assert torch.equal(ddp["final"][0], ddp["final"][1])
    difference = (ddp["final"][0] - one["final"][0]).abs().max().item()
    moved = (one["final"][0] - one["initial"][0]).abs().max().item()
    assert difference <= TOLERANCE, f"DDP and single-process parameters differ by {difference:.2e}"
    assert moved > 100 * TOLERANCE, f"parameters barely moved ({moved:.2e}): the comparison would prove nothing"


def test_train_py_under_torchrun_logs_once_saves_and_resumes_exactly(tmp_path, demo_data) -> None:
    common = [*TINY, "--dataroot", str(demo_data["aligned"]), "--model", "pix2pix", "--netG", "resnet_6blocks",
              "--norm", "instance", "--no_dropout", "--batch_size", "2", "--print_freq", "4", "--n_epochs_decay", "0",
              "--lr_policy", "step", "--lr_decay_iters", "100",  # a constant lr: --n_epochs may change on resume
              "--checkpoints_dir", str(tmp_path), "--save_epoch_freq", "1"]
    whole = _run([*TORCHRUN, "train.py", *common, "--name", "whole", "--n_epochs", "2"])
    assert whole.stdout.count("DDP: 2 processes x --batch_size 2 = 4 images per step") == 1
    assert whole.stdout.count("End of epoch 2 / 2") == 1  # rank 1 logs nothing
    log = (tmp_path / "whole" / "loss_log.txt").read_text()
    # 12 images, 4 per step: 3 steps per epoch, a loss line every 4 images, 2 epochs; once, from rank 0.
    assert log.count("(epoch: ") == 6
    assert (tmp_path / "whole" / "2_net_G.pth").is_file()

    _run([*TORCHRUN, "train.py", *common, "--name", "resumed", "--n_epochs", "1"])
    resumed = _run([*TORCHRUN, "train.py", *common, "--name", "resumed", "--n_epochs", "2", "--continue_train"])
    assert "resuming at epoch 2" in resumed.stdout
    for name in ("G", "D"):
        a = torch.load(tmp_path / "whole" / f"latest_net_{name}.pth", weights_only=True)
        b = torch.load(tmp_path / "resumed" / f"latest_net_{name}.pth", weights_only=True)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"net_{name} {key} differs after resuming under DDP"


def test_syncbatch_on_cpu_processes_is_refused(tmp_path, demo_data) -> None:
    command = [*TORCHRUN, "train.py", *TINY, "--dataroot", str(demo_data["aligned"]), "--model", "pix2pix",
               "--netG", "resnet_6blocks", "--norm", "syncbatch", "--checkpoints_dir", str(tmp_path), "--name", "sb"]
    result = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "--norm syncbatch" in result.stderr and "no CPU implementation" in result.stderr


def test_gpu_ids_without_torchrun_launches_it(tmp_path, demo_data, monkeypatch, train_main) -> None:
    """`--gpu_ids 0,1` from plain python starts torchrun with one process per GPU, never a one-GPU run."""
    import util.device as device

    calls = []
    monkeypatch.setattr(device, "available_gpu_ids", lambda ids: tuple(ids))
    monkeypatch.setattr(subprocess, "call", lambda command: calls.append(command) or 0)
    argv = ["--dataroot", str(demo_data["aligned"]), "--model", "pix2pix", "--gpu_ids", "0,1", "--amp", "none",
            "--checkpoints_dir", str(tmp_path), "--name", "launch", "--display_id", "0"]
    assert train_main(argv) == 0
    assert len(calls) == 1
    command = calls[0]
    assert command[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert command[5].endswith("train.py") and command[6:] == argv
    assert not (tmp_path / "launch").exists()  # nothing trained in the launching process


def test_each_rank_uses_its_own_gpu() -> None:
    world = distributed.World(rank=3, local_rank=1, size=4, local_size=2)
    assert distributed.device_ids_for_rank((4, 6), world) == (6,)  # one id per local process
    assert distributed.device_ids_for_rank((0,), world) == (1,)  # the default: local rank r on GPU r
    assert distributed.device_ids_for_rank((), world) == ()  # CPU
    assert distributed.device_ids_for_rank((0, 1), distributed.World()) == (0, 1)  # not under torchrun


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("start", [0, 6])
def test_sampler_splits_each_global_batch_without_overlap(world_size: int, start: int) -> None:
    count, batch = 20, 2
    single = EpochSampler(count, shuffle=True, base_seed=11)
    single.set_epoch(4, start=start)
    expected = list(single)
    shares = []
    for rank in range(world_size):
        sampler = EpochSampler(count, shuffle=True, base_seed=11, rank=rank, world_size=world_size)
        sampler.set_epoch(4, start=start)
        shares.append(list(sampler))
        assert len(shares[-1]) == len(sampler)
    assert len({len(share) for share in shares}) == 1  # equal shares: no rank waits for another
    per_rank = len(shares[0])
    assert per_rank == (count - start) // world_size
    for step in range(0, per_rank, batch):
        together = sorted(item for share in shares for item in share[step:step + batch])
        assert together == sorted(expected[step * world_size:(step + batch) * world_size])
