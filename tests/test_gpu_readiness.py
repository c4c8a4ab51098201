"""GPU readiness (issue 16): what a first CUDA run would hit, shown on a CPU where a CPU can show it, and probed on
a GPU by the tests marked `cuda` (skipped without CUDA; `bash scripts/gpu_check.sh OUTDIR` runs them and
collects the figures they record).

CPU stand-in for "the host waits for the GPU": every read of a tensor's value into Python (`item`, `tolist`,
`float(t)`, `bool(t)`, ...) is a device-to-host transfer on a GPU, so `HostReads` counts those calls through
torch's function hook. The CUDA probes count the real synchronisations with `torch.cuda.set_sync_debug_mode`.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np
import pytest
import torch
from PIL import Image
from torch.overrides import TorchFunctionMode

from data import create_dataset
from models import create_model
from models.training.acceleration import Acceleration
from models.networks import GAN_MODES, GENERATORS, GANLoss, define_G
from models.inference.tiles import upscale_tiled
from options import TestOptions, TrainOptions
from util import device as device_module
from util.device import Placement, rank_gpu_ids
from util.distributed import World
from util.errors import OptionError

from helpers import ROOT, free_port, load_script
from test_models import TINY_ARGS, TRAINABLE_MODELS, _batch

cuda = pytest.mark.cuda
HOST_READS = {"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy", "cpu"}


class HostReads(TorchFunctionMode):
    """Counts the calls that bring a tensor's value to the host, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            self.calls[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _images(folder: Path, sizes, seed: int = 0, side_by_side: bool = False) -> Path:
    """Random RGB images of the given (W, H) sizes; `side_by_side`: A|B pairs twice as wide."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, (w, h) in enumerate(sizes):
        pixels = rng.integers(0, 256, (h, 2 * w if side_by_side else w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:02d}_{w}x{h}.png")
    return folder


def _train_args(tmp_path: Path, model: str, gpu: str = "-1", side: int = 32) -> List[str]:
    return ["--dataroot", str(tmp_path), "--gpu_ids", gpu, "--checkpoints_dir", str(tmp_path / "ck"), "--name", "g",
            "--display_id", "0", "--model", model, *TINY_ARGS[model], "--crop_size", str(side), "--load_size",
            str(side)]


def _model(tmp_path: Path, model: str, *extra: str, gpu: str = "-1", side: int = 32):
    opt = TrainOptions().parse([*_train_args(tmp_path, model, gpu, side), *extra])
    m = create_model(opt)
    m.setup(opt)
    return m


def record(name: str, **figures: Any) -> None:
    """Add a probe's figures to `$GPU_CHECK_OUT/probes.jsonl` (scripts/gpu_check.py reports them); a no-op when the
    tests run outside the check."""
    folder = os.environ.get("GPU_CHECK_OUT")
    if folder:
        with open(os.path.join(folder, "probes.jsonl"), "a") as fh:
            fh.write(json.dumps({"probe": name, **figures}) + "\n")


# ---------------------------------------------------------------------------------------------- 1. host syncs
@pytest.mark.parametrize("mode", GAN_MODES.names())
def test_gan_loss_reads_nothing_back_from_the_device(mode: str) -> None:
    criterion = GANLoss(mode, target_real_label=0.9)
    prediction = torch.randn(2, 1, 4, 4)
    with HostReads() as reads:
        for real in (True, False):
            criterion(prediction, real)
    assert reads.total == 0, reads.calls
    assert set(dict(criterion.named_buffers())) == {"real_label", "fake_label"}  # the reference's state and repr


@pytest.mark.parametrize("model_name,amp", [(name, "none") for name in TRAINABLE_MODELS] + [("pix2pix", "fp16")])
def test_a_training_step_reads_the_device_once(tmp_path, model_name: str, amp: str) -> None:
    """optimize_parameters reads nothing back (fp16: nor does the loss scaler, with the fused Adam); check_step
    (non-finite losses and stop, one all-reduce under DDP) reads once; the printed losses once per print. (bf16
    and channels_last change no Python code path; the CUDA probe below runs them.)"""
    model = _model(tmp_path, model_name, "--amp", amp, "--norm", "batch")
    batch = _batch(model=model_name)
    for step in range(2):  # the first step creates optimiser state; both must be clean
        with HostReads() as reads:
            model.set_input(batch)
            model.optimize_parameters()
        assert reads.total == 0, f"step {step}: {dict(reads.calls)}"
        with HostReads() as reads:
            bad, stopping = model.check_step(lambda: False)
        assert (bad, stopping, dict(reads.calls)) == ([], False, {"tolist": 1})
    with HostReads() as reads:
        losses = model.get_current_losses()
    assert dict(reads.calls) == {"tolist": 1} and list(losses) == model.loss_names


def test_check_step_names_nonfinite_losses_and_reports_a_stop(tmp_path) -> None:
    model = _model(tmp_path, "pix2pix", "--amp", "none")
    model.set_input(_batch())
    model.optimize_parameters()
    assert model.check_step(lambda: True) == ([], True)
    model.loss_G_L1 = torch.tensor(float("nan"))
    model.loss_D_real = float("inf")  # a loss held as a Python number counts too
    assert model.check_step() == ([n for n in model.loss_names if n in ("G_L1", "D_real")], False)
    assert model.nonfinite_losses() == model.check_step()[0]


# ---------------------------------------------------------------------------------------------- 2. cuDNN autotuning
@pytest.fixture
def autotune_flag():
    before = torch.backends.cudnn.benchmark
    yield
    torch.backends.cudnn.benchmark = before


def test_cudnn_autotuning_only_where_input_sizes_are_fixed(tmp_path, autotune_flag) -> None:
    def fixed(model: str, *extra: str, phase=TrainOptions) -> bool:
        args = _train_args(tmp_path, model) if phase is TrainOptions else [
            "--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ck"), "--name", "g",
            "--model", model, "--ngf", "8", "--n_blocks", "1"]
        opt = phase().parse([*args, *extra])
        return create_model(opt).fixed_input_size()

    assert fixed("pix2pix") and fixed("cycle_gan", "--preprocess", "scale_width_and_crop")
    assert not fixed("pix2pix", "--preprocess", "none") and not fixed("cycle_gan", "--preprocess", "scale_width")
    assert fixed("srgan")  # random HR crops
    assert not fixed("srgan", phase=TestOptions)  # whole test images, cut into tiles of any size at the edges
    # The switch is process-wide: set either way on a CUDA device, left alone on the CPU.
    torch.backends.cudnn.benchmark = True
    Acceleration("none", "off", False, torch.device("cuda", 0)).autotune(False)
    assert torch.backends.cudnn.benchmark is False
    Acceleration("none", "off", False, torch.device("cuda", 0)).autotune(True)
    assert torch.backends.cudnn.benchmark is True
    Acceleration("none", "off", False, torch.device("cpu")).autotune(False)
    assert torch.backends.cudnn.benchmark is True


def _sr_model_with_validation(tmp_path: Path, *extra: str):
    _images(tmp_path / "val", [(96, 64), (60, 44)])
    opt = TrainOptions().parse(["--model", "srgan", "--dataroot", str(tmp_path), "--gpu_ids", "-1", "--checkpoints_dir",
                                str(tmp_path / "ck"), "--name", "t", "--ngf", "8", "--ndf", "8", "--n_blocks", "1",
                                "--crop_size", "32", "--display_id", "0", "--netD_head", "conv", "--lambda_perceptual",
                                "0", "--amp", "none", "--val_dataroot", str(tmp_path / "val"), *extra])
    model = create_model(opt)
    model.setup(opt)
    seen: List[tuple] = []
    # The first convolution sees every LR window the generator is run on, whether tiles run its forward or its
    # trunk and head apart (split tiles, models/inference/split_tiles.py).
    first_conv = next(m for m in model.netG.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_pre_hook(
        lambda module, args: seen.append((tuple(args[0].shape[-2:]), torch.backends.cudnn.benchmark)))
    return model, seen


# ---------------------------------------------------------------------------------------------- 9. SR validation
def test_sr_validation_is_tiled_like_test_py_and_not_autotuned(tmp_path, autotune_flag) -> None:
    model, seen = _sr_model_with_validation(tmp_path, "--tile", "8", "--tile_pad", "4")
    torch.backends.cudnn.benchmark = True  # as a training run on fixed crops has it
    metrics = model.validate()
    assert set(metrics) == {"psnr", "ssim"}
    # LR images 24x16 and 15x11 in tiles of 8 LR pixels with 4 of context: no pass over more than 16x16.
    assert len(seen) > 2 and max(max(shape) for shape, _ in seen) <= 8 + 2 * 4, seen
    assert not any(tuned for _, tuned in seen) and torch.backends.cudnn.benchmark is True  # restored after


def test_sr_validation_tile_defaults_are_test_py_s(tmp_path) -> None:
    train = TrainOptions().parse(["--model", "srgan", "--dataroot", str(tmp_path), "--gpu_ids", "-1",
                                  "--lambda_perceptual", "0", "--display_id", "0"])
    test = TestOptions().parse(["--model", "srgan", "--dataroot", str(tmp_path), "--gpu_ids", "-1"])
    srresnet_tile = GENERATORS.meta("srresnet")["option_defaults"]["tile"]  # measured: docs/benchmarks.md
    assert (train.tile, train.tile_pad) == (test.tile, test.tile_pad) == (srresnet_tile, 40)


# ---------------------------------------------------------------------------------------------- 3. syncbatch + wgangp
def test_syncbatch_with_wgangp_is_refused_at_option_time(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        TrainOptions().parse([*_train_args(tmp_path, "pix2pix"), "--norm", "syncbatch", "--gan_mode", "wgangp"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--norm syncbatch with --gan_mode wgangp" in err and "--norm batch" in err and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------- 5, 7, 8. devices
def test_several_gpu_ids_at_test_time_are_refused(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(device_module, "available_gpu_ids", lambda ids: tuple(ids))
    with pytest.raises(SystemExit) as exc:
        TestOptions().parse(["--dataroot", str(tmp_path), "--gpu_ids", "0,1", "--amp", "none"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "testing runs on one GPU" in err and "--gpu_ids 0" in err


def test_placement_makes_its_gpu_the_current_device(monkeypatch) -> None:
    chosen: List[torch.device] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: chosen.append(device))
    Placement(()).activate()
    Placement((1,)).activate()
    assert chosen == [torch.device("cuda", 1)]


def test_test_py_selects_its_device_before_loading_anything(tmp_path, monkeypatch, test_main) -> None:
    _images(tmp_path / "imgs", [(32, 32)])

    class Selected(Exception):
        pass

    def activate(self) -> None:
        raise Selected(self.gpu_ids)

    monkeypatch.setattr(Placement, "activate", activate)
    with pytest.raises(Selected):
        test_main(["--dataroot", str(tmp_path / "imgs"), "--gpu_ids", "-1", "--model", "test", "--no_dropout",
                   "--checkpoints_dir", str(tmp_path / "none"), "--name", "missing"])


def _torchrun_env(monkeypatch, local_rank: int, local_size: int, gpus: int, visible: str = None) -> World:
    for key, value in (("RANK", local_rank), ("LOCAL_RANK", local_rank), ("WORLD_SIZE", local_size),
                       ("LOCAL_WORLD_SIZE", local_size)):
        monkeypatch.setenv(key, str(value))
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    return World(rank=local_rank, local_rank=local_rank, size=local_size, local_size=local_size)


def test_each_rank_s_gpu_is_checked_against_the_gpus_it_sees(monkeypatch) -> None:
    world = _torchrun_env(monkeypatch, local_rank=1, local_size=2, gpus=2)
    assert rank_gpu_ids((0,), world) == (1,)
    assert rank_gpu_ids((0, 1), world) == (1,)
    with pytest.raises(OptionError, match="lists 3 GPUs for the 2 processes on this node"):
        rank_gpu_ids((0, 1, 2), world)
    world = _torchrun_env(monkeypatch, local_rank=2, local_size=4, gpus=2)
    with pytest.raises(OptionError, match=r"GPU 2 for local rank 2 of the 4 processes .* sees 2 GPUs: start at most "
                                          r"2 processes per node \(torchrun --nproc_per_node 2\)"):
        rank_gpu_ids((0,), world)
    # A scheduler that gives each task its own GPU: the process sees one device, whatever its local rank.
    world = _torchrun_env(monkeypatch, local_rank=3, local_size=4, gpus=1, visible="5")
    assert rank_gpu_ids((0,), world) == (0,)
    world = _torchrun_env(monkeypatch, local_rank=1, local_size=2, gpus=1, visible="0,1,2")
    with pytest.raises(OptionError, match=r"sees 1 GPU \(CUDA_VISIBLE_DEVICES=0,1,2\)"):
        rank_gpu_ids((0,), world)


def test_a_rank_without_a_gpu_is_one_line_at_option_time(tmp_path, monkeypatch, capsys) -> None:
    _torchrun_env(monkeypatch, local_rank=1, local_size=2, gpus=1)
    with pytest.raises(SystemExit) as exc:
        TrainOptions().parse([*_train_args(tmp_path, "pix2pix", gpu="0"), "--amp", "none"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--nproc_per_node 1" in err, err


# ---------------------------------------------------------------------------------------------- 6. CUDA RNG
def test_loading_data_never_reseeds_the_cuda_generators(tmp_path, monkeypatch) -> None:
    """With --num_threads 0 samples load in the training process; seeding them must leave CUDA's streams (dropout,
    D-input noise, WGAN-GP mixing) alone. On a CPU: no call reaches torch.cuda's seeding."""
    _images(tmp_path / "train", [(40, 40)] * 4, side_by_side=True)
    opt = TrainOptions().parse([*_train_args(tmp_path, "pix2pix"), "--num_threads", "0", "--seed", "3",
                                "--batch_size", "2"])
    dataset = create_dataset(opt)
    calls: List[int] = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls.append(seed))
    cpu_state = torch.get_rng_state()
    assert len([batch for batch in dataset]) == 2
    assert calls == [] and torch.equal(torch.get_rng_state(), cpu_state)


@cuda
def test_cuda_loading_data_leaves_the_device_stream_alone(tmp_path) -> None:
    _images(tmp_path / "train", [(40, 40)] * 4, side_by_side=True)
    opt = TrainOptions().parse([*_train_args(tmp_path, "pix2pix", gpu="0"), "--num_threads", "0", "--seed", "3"])
    dataset = create_dataset(opt)
    torch.cuda.manual_seed(11)
    state = torch.cuda.get_rng_state()
    next(iter(dataset))
    assert torch.equal(torch.cuda.get_rng_state(), state)


# ---------------------------------------------------------------------------------------------- without CUDA
def test_gpu_check_without_cuda_prints_one_line_and_exits_0(tmp_path) -> None:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHON=sys.executable)
    result = subprocess.run(["bash", "scripts/gpu_check.sh", str(tmp_path / "out")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert len(output.splitlines()) == 1 and "no CUDA" in output, output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_gpu_readiness" name="test_cuda_a" time="1.5"/>
<testcase classname="tests.test_gpu_readiness" name="test_cuda_b" time="2.0"><failure message="assert 3 &lt;= 1"/>
</testcase></testsuite></testsuites>"""


def test_gpu_check_reports_what_its_phases_found(tmp_path, monkeypatch) -> None:
    """scripts/gpu_check.py's CUDA path up to its reports, with the device and the phases faked: the reports name
    the device, list every test, probe and benchmark row, and a failed test makes the exit code 1."""
    gpu_check = load_script("scripts/gpu_check.py")
    device = {"name": "Fake GPU", "count": 1, "capability": "9.0", "memory_gib": 80.0, "driver": "580",
              "torch": torch.__version__, "cuda": "13.0", "cudnn": 91000, "python": "3.12"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu_check, "device_info", lambda: device)
    phases: List[str] = []

    def run(name: str, command: List[str], timeout: float, env: Dict[str, str]) -> Dict[str, Any]:
        phases.append(name)
        out = Path(env["GPU_CHECK_OUT"])
        if name == "CUDA tests":
            assert command[command.index("-m", 2) + 1] == "cuda"
            (out / "pytest_cuda.xml").write_text(JUNIT)
            (out / "probes.jsonl").write_text(json.dumps({"probe": "syncs_per_step", "check_step": 1.0}) + "\n")
        else:
            model = command[command.index("--models") + 1]
            row = {"model": model, "setting": "default", "config": "bf16", "batch_size": 1, "images_per_s": 12.5,
                   "mfu": 0.31, "cuda_max_alloc_mib": 900.0, "speedup_vs_fp32": 2.0}
            (out / f"benchmark_{model}.json").write_text(json.dumps({"summary": {"train": [row]}}))
        return {"check": name, "ok": True, "exit_code": 0, "timed_out": False, "seconds": 1.0, "output_tail": ""}

    monkeypatch.setattr(gpu_check, "_run", run)
    assert gpu_check.main([str(tmp_path / "out")]) == 1
    assert phases == ["CUDA tests", "benchmark pix2pix", "benchmark cycle_gan", "benchmark srgan"]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["device"]["name"] == "Fake GPU" and report["ok"] is False
    assert [t["outcome"] for t in report["tests"]] == ["passed", "failed"]
    assert len(report["benchmark"]) == 3 and report["probes"][0]["check_step"] == 1.0
    text = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "Fake GPU" in text and "FAILED" in text and "test_cuda_b: assert 3 <= 1" in text and "31.0%" in text


# ================================================================================================ CUDA probes
def _pinned(batch: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _syncs(action: Callable[[], Any]) -> int:
    """How many synchronising CUDA calls `action` makes (torch.cuda.set_sync_debug_mode)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            action()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _count_step_syncs(model, batch, steps: int = 3) -> Dict[str, int]:
    counts = {"set_input": 0, "optimize_parameters": 0, "check_step": 0}
    for _ in range(steps):
        counts["set_input"] += _syncs(lambda: model.set_input(batch))
        counts["optimize_parameters"] += _syncs(model.optimize_parameters)
        counts["check_step"] += _syncs(lambda: model.check_step(lambda: False))
    return {k: v / steps for k, v in counts.items()}


@cuda
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("model_name", TRAINABLE_MODELS)
def test_cuda_step_syncs_once_in_mixed_precision_and_channels_last(tmp_path, model_name: str, amp: str) -> None:
    model = _model(tmp_path, model_name, "--amp", amp, "--norm", "batch", "--channels_last", "on", gpu="0", side=64)
    batch = _pinned(_batch(model=model_name, side=64))
    for _ in range(3):  # warm-up: optimiser state, cuDNN autotuning, the fp16 loss scale settling
        model.set_input(batch)
        model.optimize_parameters()
        model.check_step()
    per_step = _count_step_syncs(model, batch)
    record("syncs_per_step", model=model_name, amp=amp, channels_last=True, **per_step)
    assert per_step["optimize_parameters"] == 0 and per_step["set_input"] == 0, per_step
    assert per_step["check_step"] <= 1, per_step
    assert all(np.isfinite(list(model.get_current_losses().values())))


@cuda
def test_cuda_compile_matches_eager_and_syncs_once(tmp_path) -> None:
    batch = _pinned(_batch(side=64))
    losses, syncs, seconds = {}, {}, {}
    for mode in ("eager", "compiled"):
        (tmp_path / mode).mkdir()
        torch.manual_seed(0)
        # fp32 (TF32 convolutions), so that eager and compiled differ by fusion rounding alone.
        model = _model(tmp_path / mode, "pix2pix", "--amp", "none", "--no_dropout", "--norm", "batch",
                       *(["--compile"] if mode == "compiled" else []), gpu="0", side=64)
        start = time.perf_counter()
        for _ in range(3):
            model.set_input(batch)
            model.optimize_parameters()
            model.check_step()
        seconds[mode] = time.perf_counter() - start
        losses[mode] = model.get_current_losses()
        syncs[mode] = _count_step_syncs(model, batch, steps=2)
    record("compile", first_three_steps_s=seconds, syncs_per_step=syncs, losses=losses)
    for name, value in losses["eager"].items():
        assert losses["compiled"][name] == pytest.approx(value, rel=1e-2, abs=1e-3), name
    assert syncs["compiled"]["check_step"] <= 1 and syncs["compiled"]["optimize_parameters"] == 0, syncs


@cuda
def test_cuda_one_process_nccl_group_through_the_ddp_path(tmp_path) -> None:
    import torch.distributed as dist

    from models import networks
    from util import distributed

    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1,
                            device_id=torch.device("cuda", 0))
    try:
        model = _model(tmp_path, "pix2pix", "--amp", "bf16", "--norm", "batch", gpu="0", side=64)
        assert isinstance(model.netG, torch.nn.parallel.DistributedDataParallel)
        assert distributed.broadcast_int(7) == 7 and distributed.any_rank(True) and distributed.all_ranks(True)
        batch = _pinned(_batch(side=64))
        for _ in range(2):
            model.set_input(batch)
            model.optimize_parameters()
            model.check_step()
        per_step = _count_step_syncs(model, batch)
        record("nccl_one_process", **per_step)
        assert per_step["check_step"] <= 1 and per_step["optimize_parameters"] == 0, per_step
        assert model.check_step(lambda: True) == ([], True)
        saved = model.save_networks("latest")
        keys = torch.load(saved[0], weights_only=True).keys()
        assert not any(k.startswith("module.") for k in keys)
        assert list(keys) == list(networks.unwrap(model.netG).state_dict().keys())
    finally:
        dist.destroy_process_group()


@cuda
def test_cuda_fp16_training_resumes_within_tolerance(tmp_path) -> None:
    """A state saved after fp16 steps and loaded into a fresh model: optimiser moments on the GPU beside their
    parameters, the loss scale kept, and the next steps equal to the uninterrupted run's within tolerance."""
    import io

    args = ("--amp", "fp16", "--no_dropout", "--norm", "batch")
    batches = [_pinned(_batch(seed=i, side=64)) for i in range(6)]
    torch.manual_seed(0)
    whole = _model(tmp_path, "pix2pix", *args, gpu="0", side=64)
    for batch in batches[:3]:
        whole.set_input(batch)
        whole.optimize_parameters()
    buffer = io.BytesIO()
    torch.save(whole.training_state(), buffer)
    torch.manual_seed(1)  # other initial weights: everything must come from the state
    resumed = _model(tmp_path, "pix2pix", *args, gpu="0", side=64)
    buffer.seek(0)
    resumed.load_training_state(torch.load(buffer, weights_only=True, map_location="cpu"))  # as train_state loads
    devices = {str(v.device) for optimizer in resumed.optimizers for state in optimizer.state.values()
               for v in state.values() if isinstance(v, torch.Tensor)}
    assert devices == {"cuda:0"}, devices
    assert [s.get_scale() for s in resumed.scalers] == [s.get_scale() for s in whole.scalers]
    for batch in batches[3:]:
        for model in (whole, resumed):
            model.set_input(batch)
            model.optimize_parameters()
    worst = max((a - b).abs().max().item() for a, b in zip(whole.netG.parameters(), resumed.netG.parameters()))
    record("fp16_resume", max_abs_parameter_difference=worst, loss_scale=whole.scalers[0].get_scale())
    # Adam's step is about lr = 2e-4 per parameter; rounding may flip the sign of a near-zero gradient's step.
    assert worst <= 2e-3, worst


def _peak_mib(action: Callable[[], Any]) -> float:
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    action()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


@cuda
def test_cuda_tiled_sr_memory_is_bounded_for_2k_and_4k_inputs() -> None:
    """SRResNet x4 (16 blocks, 64 filters) in bf16 as test.py runs it: peak device memory of tiled SR (tile 192,
    pad 40) is the same for 2K and 4K inputs, and a small part of whole-image inference's."""
    net = define_G(3, 3, 64, "srresnet", "batch", n_blocks=16, scale=4, gpu_ids=(0,)).eval()
    device = torch.device("cuda", 0)
    figures: Dict[str, Any] = {}
    for label, (w, h) in (("2K", (2048, 1080)), ("4K", (3840, 2160))):
        lr = torch.rand(1, 3, h, w) * 2 - 1
        for mode, tile in (("tiled", 192), ("whole", 0)):
            need_gib = 2 * 64 * (w * h * 16) * 2 / 2**30  # two bf16 maps of 64 channels at the output size
            if mode == "whole" and need_gib > torch.cuda.mem_get_info()[0] / 2**30 * 0.8:
                figures[f"{label}_{mode}"] = f"skipped: needs about {need_gib:.0f} GiB"
                continue
            start = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                peak = _peak_mib(lambda: upscale_tiled(net, lr, 4, tile, 40, device))
            figures[f"{label}_{mode}"] = {"peak_mib": round(peak, 1), "seconds": round(time.perf_counter() - start, 2)}
    record("sr_memory", **figures)
    tiled_2k, tiled_4k = figures["2K_tiled"]["peak_mib"], figures["4K_tiled"]["peak_mib"]
    assert tiled_4k <= tiled_2k * 1.1 + 16, figures
    whole_2k = figures["2K_whole"]
    assert isinstance(whole_2k, dict) and tiled_2k < whole_2k["peak_mib"] / 4, figures


@cuda
def test_cuda_test_py_on_images_of_different_sizes(tmp_path, test_main, autotune_flag) -> None:
    sizes = [(37, 53), (64, 48), (120, 90), (200, 150)]
    _images(tmp_path / "imgs", sizes)
    (tmp_path / "ck" / "sr").mkdir(parents=True)
    g = define_G(3, 3, 16, "srresnet", "batch", n_blocks=2, scale=4)
    torch.save(g.state_dict(), tmp_path / "ck" / "sr" / "latest_net_G.pth")
    common = ["--dataroot", str(tmp_path / "imgs"), "--gpu_ids", "0", "--checkpoints_dir", str(tmp_path / "ck"),
              "--results_dir", str(tmp_path / "results")]
    start = time.perf_counter()
    assert test_main([*common, "--model", "srgan", "--name", "sr", "--ngf", "16", "--n_blocks", "2",
                      "--tile", "64"]) == 0
    sr_seconds = time.perf_counter() - start
    assert torch.backends.cudnn.benchmark is False  # tiles and images of many sizes
    for (w, h) in sizes:
        out = next((tmp_path / "results" / "sr").rglob(f"img*_{w}x{h}_SR.png"))
        assert Image.open(out).size == (4 * w, 4 * h)
    (tmp_path / "ck" / "tr").mkdir()
    generator = define_G(3, 3, 8, "resnet_6blocks", "instance")
    torch.save(generator.state_dict(), tmp_path / "ck" / "tr" / "latest_net_G.pth")
    start = time.perf_counter()
    assert test_main([*common, "--model", "test", "--name", "tr", "--netG", "resnet_6blocks", "--ngf", "8",
                      "--no_dropout", "--preprocess", "none"]) == 0
    record("test_py_sizes", sizes=sizes, srgan_seconds=round(sr_seconds, 2),
           test_model_seconds=round(time.perf_counter() - start, 2))
    assert torch.backends.cudnn.benchmark is False
    assert len(list((tmp_path / "results" / "tr").rglob("*_fake.png"))) == len(sizes)
