"""DDP on CPU with gloo: two processes on this machine's cores, tiny models.

The claims: after N steps both ranks hold identical parameters, equal to a single process that takes the
same global batch (2 x --batch_size) within TOLERANCE; train.py under torchrun logs and saves once and resumes
exactly; the sampler splits every global batch between the ranks without overlap.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def test_ragan_with_unet_sn_and_ema_keeps_the_ranks_identical(tmp_path, demo_data) -> None:
    """Real-ESRGAN's pieces under DDP: the relativistic loss compares each prediction with the mean of the other
    kind over the rank's own batch (as BasicSR under DDP), so two ranks are not one process with the global batch;
    what must hold is that the all-reduced gradients keep both ranks' G and D bit-identical (with EMA on), and
    that the step (which runs D on real images again, without gradients, for G's loss) trains."""
    layout, extra = MODELS["srgan"]
    extra = [a for a in extra if a not in ("--netD_head", "conv")]  # an option of --netD srgan only
    common = [*TINY, "--dataroot", str(demo_data[layout]), "--model", "srgan", "--checkpoints_dir", str(tmp_path),
              "--name", "ddp", *extra, "--gan_mode", "ragan", "--netD", "unet_sn", "--lambda_adv", "0.1",
              "--pixel_loss", "l1", "--ema_decay", "0.9", "--batch_size", "2"]
    _run([*TORCHRUN, "tests/ddp_worker.py", str(tmp_path / "ddp.pt"), "3", *common])
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert ddp["steps"] == 3 and torch.equal(ddp["initial"][0], ddp["initial"][1])
    assert torch.equal(ddp["final"][0], ddp["final"][1])
    assert (ddp["final"][0] - ddp["initial"][0]).abs().max().item() > 100 * TOLERANCE


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


def test_gpu_ids_without_torchrun_launches_one_process_per_gpu(tmp_path, demo_data, monkeypatch, train_main) -> None:
    """`--gpu_ids 0,1` from plain python starts one process per GPU (util/launcher.py), never a one-GPU run."""
    import util.device as device
    from util import launcher

    calls = []
    monkeypatch.setattr(device, "available_gpu_ids", lambda ids: tuple(ids))
    monkeypatch.setattr(launcher, "relaunch",
                        lambda script, argv, nproc, **inherit: calls.append((script, list(argv), nproc)) or 0)
    argv = ["--dataroot", str(demo_data["aligned"]), "--model", "pix2pix", "--gpu_ids", "0,1", "--amp", "none",
            "--checkpoints_dir", str(tmp_path), "--name", "launch", "--display_id", "0"]
    assert train_main(argv) == 0
    assert len(calls) == 1
    script, args, nproc = calls[0]
    assert script.endswith("train.py") and args == argv and nproc == 2
    assert not (tmp_path / "launch").exists()  # nothing trained in the launching process


def test_launched_workers_get_torchrun_s_environment() -> None:
    from util import launcher

    env = launcher.worker_env(1, 2, 29555, base={"PATH": "/bin"})
    assert {k: env[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")} \
        == {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29555"}
    assert env["PATH"] == "/bin" and env["OMP_NUM_THREADS"] == "1"
    assert launcher.worker_command("train.py", ["--x"]) == [sys.executable, "train.py", "--x"]


# A stand-in training process: it says it is ready, waits for a stop signal, "saves" for SAVE_S seconds, writes
# every signal it received, and exits 128 + signal as train.py does. Rank 1 of mode `fail` exits 3 at once.
FAKE_WORKER = r"""
import os, signal, sys, time
out, mode, save_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
rank, got = os.environ["RANK"], []
for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, lambda s, f: got.append(s))
if mode == "fail" and rank == "1":
    sys.exit(3)
with open(os.path.join(out, "ready" + rank), "w") as fh:
    fh.write(f"{os.environ['WORLD_SIZE']} {os.getpgid(0) == os.getpid()}")
while not got:
    time.sleep(0.05)
time.sleep(save_s + 0.5)  # saving; a second, duplicated signal would arrive meanwhile
with open(os.path.join(out, "saved" + rank), "w") as fh:
    fh.write(" ".join(map(str, got)))
sys.exit(128 + got[0])
"""
LAUNCH = "import sys; sys.path.insert(0, {root!r}); from util import launcher; " \
         "sys.exit(launcher.relaunch(sys.argv[1], sys.argv[2:], 2))"


def _launch_fake(tmp_path: Path, mode: str, save_s: float) -> subprocess.Popen:
    (tmp_path / "worker.py").write_text(FAKE_WORKER)
    return subprocess.Popen([sys.executable, "-c", LAUNCH.format(root=str(ROOT)), str(tmp_path / "worker.py"),
                             str(tmp_path), mode, str(save_s)], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_launcher_forwards_a_stop_signal_once_and_waits_for_the_save(tmp_path, signum) -> None:
    save_s = 2.0
    parent = _launch_fake(tmp_path, "stop", save_s)
    _wait_for(lambda: all((tmp_path / f"ready{r}").is_file() for r in (0, 1)), 60, "both workers")
    assert [(tmp_path / f"ready{r}").read_text() for r in (0, 1)] == ["2 True"] * 2  # own sessions, torchrun's env
    start = time.monotonic()
    parent.send_signal(signum)  # as a terminal's Ctrl-C or a scheduler's SIGTERM reaches the launching process
    output = parent.communicate(timeout=60)[0]
    assert parent.returncode == 128 + signum, output
    assert time.monotonic() - start >= save_s  # it waited for the workers' save (no SIGKILL after 0.25 s)
    assert [(tmp_path / f"saved{r}").read_text() for r in (0, 1)] == [str(int(signum))] * 2  # exactly once each


def test_launcher_stops_the_others_when_a_worker_fails(tmp_path) -> None:
    parent = _launch_fake(tmp_path, "fail", 0.0)
    output = parent.communicate(timeout=60)[0]
    assert parent.returncode == 3, output  # the failed worker's code, not the stopped one's 143
    assert "training process 1 exited with code 3: stopping the others" in output
    assert (tmp_path / "saved0").read_text() == str(int(signal.SIGTERM))


def _processes_mentioning(text: str) -> List[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if text.encode() in fh.read():
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


def test_train_py_with_two_gpu_ids_owns_its_folder_and_stops_gracefully_on_sigterm(tmp_path, demo_data) -> None:
    """Real workers: the launching process owns the run's folder and its workers adopt the lock (rank 0 trains
    and saves there), while another train.py of that folder is refused, naming the launcher's PID. SIGTERM to
    `python train.py --gpu_ids 0,1` makes both finish the step, rank 0 save, and the command exit 143 with no
    process left. (The GPU count is patched in the launching process only; the workers see no CUDA and train on
    CPU with gloo.)"""
    wrapper = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); import util.device as device; "
               "device.available_gpu_ids = lambda ids: tuple(ids); sys.argv = sys.argv[2:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    run_dir = tmp_path / "stop"
    argv = [*TINY[2:], "--gpu_ids", "0,1", "--dataroot", str(demo_data["aligned"]), "--model", "pix2pix",
            "--netG", "resnet_6blocks", "--norm", "instance", "--no_dropout", "--n_epochs", "200", "--n_epochs_decay",
            "0", "--print_freq", "1", "--save_epoch_freq", "1000", "--checkpoints_dir", str(tmp_path), "--name", "stop"]
    with open(tmp_path / "out.log", "w") as log:
        parent = subprocess.Popen([sys.executable, "-c", wrapper, str(ROOT), str(ROOT / "train.py"), *argv], cwd=ROOT,
                                  env=dict(_env(), CUDA_VISIBLE_DEVICES=""), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for(lambda: (run_dir / "loss_log.txt").is_file()
                      and (run_dir / "loss_log.txt").read_text().count("(epoch: ") >= 3, 240, "training steps")
            other = subprocess.run([sys.executable, "train.py", *TINY, "--dataroot", str(demo_data["aligned"]),
                                    "--model", "pix2pix", "--netG", "resnet_6blocks", "--checkpoints_dir", str(tmp_path),
                                    "--name", "stop"],
                                   cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
            parent.send_signal(signal.SIGTERM)
            parent.wait(timeout=120)
        finally:
            if parent.poll() is None:
                parent.kill()
    output = (tmp_path / "out.log").read_text()
    assert other.returncode == 2 and other.stderr.strip() == (
        f"error: {run_dir} is in use by train.py (PID {parent.pid}): wait for that run to end, or give this one "
        f"another --name or --checkpoints_dir"), other.stderr
    assert parent.returncode == 143, output[-3000:]
    assert output.count("stopped at epoch") == 1 and "Resume with" in output, output[-3000:]
    state = torch.load(run_dir / "latest_train_state.pth", weights_only=True)
    assert state["total_iters"] > 0
    assert _processes_mentioning(str(run_dir)) == []
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
