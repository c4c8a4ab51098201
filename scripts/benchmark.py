"""The benchmark suite: training speed, memory and model-FLOPs utilisation of pix2pix, cycle_gan and srgan,
and SR x4 inference speed and memory on a photo.

    python scripts/benchmark.py                                           # everything, this machine's defaults
    python scripts/benchmark.py --models pix2pix,srgan --settings small --configs fp32 --steps 3 --no-sr
    python scripts/benchmark.py --baseline-rev bead187 --repeats 2 --json bench.json --markdown docs/benchmarks.md
    python scripts/benchmark.py --no-train --sr                           # only SR x4 of a 1920x1080 photo

Training (per model, setting and config): median step time of `--steps` steps after `--warmup` warm-up steps
(p10/p90 too), images/s = batch size / median, peak RSS, CUDA max allocated, the FLOPs of one step and the MFU
(model-FLOPs utilisation) = FLOPs / median step time / peak FLOP/s. A step is what train.py does per batch:
`set_input` + `optimize_parameters` on a synthetic batch (no data loading), followed by a CUDA synchronise.

SR x4 inference: an SRResNet (16 blocks, 64 filters, random weights: the time does not depend on them) upscales
a 1920x1080 photo (setting `default`, tiled as test.py does) and a 480x270 one (setting `small`, tiled and
whole). Reported: seconds, output MP/s (output pixels, i.e. 16 x the input pixels, per second, in millions),
input MP/s and peak RSS.

Why it is built this way:
  * Every measurement runs in a fresh process (`--worker SPEC`, this same file): peak RSS is a per-process
    high-water mark, so only a process of its own gives each measurement its own peak; a crash, a compile
    cache or a global switch (cuDNN benchmark, matmul precision) cannot leak into the next measurement either.
  * `--baseline-rev REV` measures the code before a change side by side with the code now, in one run and
    interleaved (before, after, before, after with --repeats 2), so both see the same machine conditions. The
    old code is checked out into a temporary git worktree and measured by this very file, which therefore uses
    only APIs that exist in both trees (TrainOptions().parse, create_model, setup, set_input,
    optimize_parameters, set_epoch, netG, networks.define_G, sr_inference.upscale).
  * The peak FLOP/s of the MFU is measured, not taken from a data sheet: the median time of square matmuls in
    the dtype the config computes in, in the same process on the same device right after the training steps,
    so the MFU compares the model with what this machine actually delivers now.
  * FLOPs are counted by torch.utils.flop_counter.FlopCounterMode around one extra step: the matmul and
    convolution FLOPs of the forward and backward passes (the optimiser's element-wise work is not counted),
    the usual definition of model FLOPs. Under torch.compile the counter cannot see inside compiled kernels;
    a compiled config takes the count of an eager config of the same model and setting where one was measured
    (the model's FLOPs are the same), and the table says so.
  * srgan's default perceptual loss needs VGG19 ImageNet weights. Where the torch hub cache lacks them (no
    internet), randomly initialised VGG19 weights of the same shapes are used: the time is the same, the loss
    is meaningless, and the report says "random (timing only)".

Output: the JSON report (to `--json FILE`, or stdout) and a markdown section naming the machine (to `--markdown
FILE`, or stderr). Progress goes to stderr, one line per measurement. Exit code 0 when every measurement ran,
1 when some failed (each failure is reported with the worker's stderr tail, the others still run, and the JSON
carries an "error" for it), 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
SHARED_PHOTOS = ROOT.parent / "shared" / "data" / "sr_train" / "BSD200"

logger = logging.getLogger("benchmark")

RESULT_MARKER = "BENCHMARK_RESULT "
SCHEMA_VERSION = 1

MODEL_NAMES: Tuple[str, ...] = ("pix2pix", "cycle_gan", "srgan")
# `default` passes no flags: each model's own defaults (pix2pix unet_256 batch 1 crop 256, cycle_gan
# resnet_9blocks batch 1 crop 256, srgan SRResNet 16 blocks batch 16 crop 96), whatever they are in the tree.
# `small`: narrow networks on small crops. pix2pix keeps its U-Net family: unet_128 on 128-pixel crops, since a
# U-Net needs crops divisible by 2^depth and unet_256 would need 256.
SETTING_FLAGS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "default": {name: () for name in MODEL_NAMES},
    "small": {
        "pix2pix": ("--ngf", "16", "--ndf", "16", "--netG", "unet_128", "--crop_size", "128", "--load_size", "128"),
        "cycle_gan": ("--ngf", "16", "--ndf", "16", "--crop_size", "64", "--load_size", "64"),
        "srgan": ("--ngf", "16", "--ndf", "16", "--crop_size", "64", "--load_size", "64", "--n_blocks", "4"),
    },
}
CONFIG_FLAGS: Dict[str, Tuple[str, ...]] = {
    "default": (),
    "fp32": ("--amp", "none", "--channels_last", "off"),
    "bf16": ("--amp", "bf16", "--channels_last", "off"),
    "bf16_cl": ("--amp", "bf16", "--channels_last", "on"),
    "bf16_compile": ("--amp", "bf16", "--compile"),
    "fp32_cl": ("--amp", "none", "--channels_last", "on"),
}
BEFORE = "before"  # the config name of the --baseline-rev measurements (run with no config flags)
DEFAULT_CONFIGS: Dict[str, Tuple[str, ...]] = {
    "cpu": ("default", "fp32"),
    "cuda": ("fp32", "bf16", "bf16_cl", "bf16_compile", "default"),
}
DEFAULT_STEPS = {"cpu": 10, "cuda": 50}
COMPILE_WARMUP = 5  # compiling takes the first steps; they must not be timed

# SR: the photo of setting `default` is 1920x1080; `small` is the same photo downscaled by 4 (480x270).
SR_SCALE = 4
SR_PHOTO_SIZE = (1920, 1080)
SR_SETTINGS: Dict[str, Dict[str, int]] = {
    "default": {"downscale": 1, "tile": 192},  # tile 192: test.py's default
    "small": {"downscale": 4, "tile": 128},  # 480x270: a 256 tile would hold most of it
}
SR_MODES = ("tiled", "whole")
SR_NGF = 64
SR_BLOCKS = 16
# Whole-image inference holds about two float32 maps of 64 channels x the output pixels at the last x2 stage
# (the 256-channel conv output at half the output size and its pixel-shuffled copy): 2 x 64 x output pixels x
# 4 bytes. That is ~16 GiB for a 1920x1080 photo, too much for a CPU machine, so whole mode runs only where the
# estimate fits.
SR_WHOLE_CPU_LIMIT_GIB = 4.0
SR_WHOLE_CUDA_FRACTION = 0.5
SR_RSS_TARGET_MIB = 2048.0  # the target for tiled 1920x1080 on CPU
BUSY_WARNING = 0.25  # share of CPU time used by other work between measurements above which the report warns

AMP_DTYPES: Dict[Optional[str], str] = {"bf16": "bfloat16", "fp16": "float16", "none": "float32", None: "float32"}


class BenchmarkError(Exception):
    """A user error of the benchmark itself (bad revision, no CUDA): one line on stderr, exit code 2."""


# =============================================================================================================
# Worker: one measurement in this process, against the tree named in the spec.
# =============================================================================================================


def _proc_status_mib(field: str) -> Optional[float]:
    """A `VmXXX:` line of /proc/self/status in MiB (Linux), None where there is no such file."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    Linux: VmHWM, the high-water mark of this program's own memory. Not ru_maxrss: the kernel carries the
    pre-exec peak across exec into ru_maxrss, so a worker's ru_maxrss is at least the RSS its (torch-loaded)
    parent had when it forked, and small measurements would all read the parent's size. Elsewhere
    ru_maxrss (KiB on Linux, bytes on macOS).
    """
    hwm = _proc_status_mib("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mib() -> Optional[float]:
    """RSS right now, to show how much of the peak the interpreter and torch take by themselves."""
    return _proc_status_mib("VmRSS")


def import_tree(tree_root: str) -> Path:
    """Make `import options, models` load the tree under test, not this script's tree or the installed one.

    sys.path[0] is this script's folder; the tree goes in front of everything, including the editable
    install's finder, which comes after the path-based one.
    """
    here = str(SCRIPT.parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.insert(0, tree_root)
    origin = Path(importlib.import_module("models").__file__ or "").resolve()
    if Path(tree_root).resolve() not in origin.parents:
        raise RuntimeError(f"imported models from {origin}, not from the tree under test {tree_root}")
    return origin.parent.parent


def _base_args(spec: Dict[str, Any], tmp: str) -> List[str]:
    """Flags every measurement passes: an empty dataroot (no data is read), the device, a scratch folder."""
    dataroot = os.path.join(tmp, "data")
    os.makedirs(dataroot, exist_ok=True)
    return ["--dataroot", dataroot, "--gpu_ids", "0" if spec["device"] == "cuda" else "-1",
            "--checkpoints_dir", os.path.join(tmp, "checkpoints"), "--name", "bench"]


def train_options(spec: Dict[str, Any], model: str, flags: Sequence[str], tmp: str) -> Any:
    """Parse the tree's TrainOptions as train.py would."""
    import options

    return options.TrainOptions().parse([*_base_args(spec, tmp), "--display_id", "0", "--model", model, *flags])


def test_options(spec: Dict[str, Any], flags: Sequence[str], tmp: str) -> Any:
    """Parse the tree's TestOptions as test.py would (test-time defaults: --amp, --channels_last, --tile)."""
    import options

    return options.TestOptions().parse([*_base_args(spec, tmp), *flags])


def synthetic_batch(opt: Any) -> Dict[str, Any]:
    """A batch as the data loader gives it: 'A' the input, 'B' the target, in [-1, 1], on the CPU.

    Super-resolution models get an LR input of crop_size / scale pixels; the others same-size pairs.
    """
    import torch

    size = opt.crop_size
    lr_size = size // opt.scale if getattr(opt, "scale", None) and opt.model == "srgan" else size
    generator = torch.Generator().manual_seed(0)
    n = opt.batch_size
    a = torch.rand((n, opt.input_nc, lr_size, lr_size), generator=generator) * 2 - 1  # (B, C_in, h, w)
    b = torch.rand((n, opt.output_nc, size, size), generator=generator) * 2 - 1  # (B, C_out, H, W)
    return {"A": a, "B": b, "A_paths": [f"bench_A_{i}.png" for i in range(n)],
            "B_paths": [f"bench_B_{i}.png" for i in range(n)]}


def device_sync(device: Any) -> Callable[[], None]:
    """A function that waits for the device's queued work: CUDA runs asynchronously, the CPU does not."""
    import torch

    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def percentile_summary(times: Sequence[float]) -> Dict[str, float]:
    """Median, p10 and p90 of step times (p10/p90 fall back to min/max for fewer than 2 samples)."""
    median = statistics.median(times)
    if len(times) >= 2:
        cuts = statistics.quantiles(times, n=10, method="inclusive")
        p10, p90 = cuts[0], cuts[-1]
    else:
        p10 = p90 = times[0]
    return {"median": median, "p10": p10, "p90": p90}


def count_flops(step: Callable[[], None]) -> Optional[int]:
    """Matmul/convolution FLOPs of one call of `step` (forward and backward); None when none were seen
    (compiled code runs its kernels out of the counter's sight)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    total = int(counter.get_total_flops())
    return total if total > 0 else None


def matmul_peak(device: Any, dtype_name: str, n_max: int, reps: int, warmup: int, budget_s: float,
                rep_limit_s: float) -> Dict[str, Any]:
    """Peak matmul FLOP/s on `device` in `dtype_name`: 2 n^3 / median time of square n x n matmuls.

    A dtype the hardware lacks can be a thousand times slower (fp16 on most CPUs), so a probe at n = 256
    predicts the time per matmul and n is halved from `n_max` until one matmul fits in `rep_limit_s`; the
    repetitions stop early (after at least 3) once `budget_s` is spent.
    """
    import torch

    dtype = getattr(torch, dtype_name)
    sync = device_sync(device)

    def timed(n: int, count: int) -> List[float]:
        a = torch.randn((n, n), device=device, dtype=dtype)
        b = torch.randn((n, n), device=device, dtype=dtype)
        out = torch.empty((n, n), device=device, dtype=dtype)
        times: List[float] = []
        spent = 0.0
        for _ in range(count):
            sync()
            start = time.perf_counter()
            torch.matmul(a, b, out=out)
            sync()
            times.append(time.perf_counter() - start)
            spent += times[-1]
            if spent > budget_s and len(times) >= 3:
                break
        return times

    probe_n = min(256, n_max)
    timed(probe_n, 1)
    probe = min(timed(probe_n, 2))
    n = n_max
    while n > probe_n and probe * (n / probe_n) ** 3 > rep_limit_s:
        n //= 2
    timed(n, warmup)
    times = timed(n, reps)
    median = statistics.median(times)
    return {"peak_flops": 2 * n**3 / median, "peak_dtype": dtype_name, "peak_matmul_n": n,
            "peak_matmul_reps": len(times)}


def resolved_config(opt: Any) -> Dict[str, Any]:
    """The speed settings the tree ran with (None where the tree has no such option, e.g. the old code)."""
    return {"amp": getattr(opt, "amp", None), "channels_last": getattr(opt, "channels_last", None),
            "compile": getattr(opt, "compile", None)}


def compute_dtype(amp: Optional[str]) -> Tuple[str, Optional[str]]:
    """The dtype the config computes in, for the matmul peak, and a note when it cannot be known."""
    if amp in AMP_DTYPES:
        return AMP_DTYPES[amp], None
    return "float32", (f"amp {amp!r} is not resolved in the options: the peak is measured in float32, so the "
                       f"MFU is too high if the model computes in a 16-bit type")


def cuda_max_allocated_mib(device: Any) -> Optional[float]:
    import torch

    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def peak_settings(spec: Dict[str, Any], device: Any) -> Dict[str, Any]:
    """Size and repetitions of the peak matmul: bigger and more on a GPU, where one matmul takes milliseconds."""
    if device.type == "cuda":
        return {"n_max": spec.get("peak_size") or 8192, "reps": 50, "warmup": 2, "budget_s": 30.0,
                "rep_limit_s": 1.0}
    return {"n_max": spec.get("peak_size") or 2048, "reps": 10, "warmup": 2, "budget_s": 10.0, "rep_limit_s": 1.0}


def train_worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Time training steps of one model/setting/config, then count one step's FLOPs and measure the peak."""
    import torch

    import models

    rss_start = current_rss_mib()
    with tempfile.TemporaryDirectory(prefix="benchmark_") as tmp:
        opt = train_options(spec, spec["model"], spec["flags"], tmp)
        torch.manual_seed(0)
        model = models.create_model(opt)
        model.setup(opt)
        if opt.model == "srgan":
            model.set_epoch(opt.pretrain_epochs + 1)  # the adversarial stage: G, D and the perceptual loss
        device = model.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        batch = synthetic_batch(opt)
        sync = device_sync(device)

        def step() -> None:
            model.set_input(batch)
            model.optimize_parameters()
            sync()

        config = resolved_config(opt)
        warmup = spec["warmup"]
        if config["compile"]:
            warmup = max(warmup, COMPILE_WARMUP)
        for _ in range(warmup):
            step()
        times: List[float] = []
        for _ in range(spec["steps"]):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        rss = peak_rss_mib()  # before the FLOP count and the peak matmul, which are not training
        cuda_alloc = cuda_max_allocated_mib(device)
        nonfinite = getattr(model, "nonfinite_losses", None)
        losses_finite = None if nonfinite is None else not nonfinite()
        flops = count_flops(step)
        dtype_name, dtype_note = compute_dtype(config["amp"])
        peak = matmul_peak(device, dtype_name, **peak_settings(spec, device))
    summary = percentile_summary(times)
    result: Dict[str, Any] = {
        **config,
        "batch_size": opt.batch_size,
        "crop_size": opt.crop_size,
        "netG": opt.netG,
        "ngf": opt.ngf,
        "warmup": warmup,
        "steps": len(times),
        "step_times_s": times,
        "step_median_s": summary["median"],
        "step_p10_s": summary["p10"],
        "step_p90_s": summary["p90"],
        "images_per_s": opt.batch_size / summary["median"],
        "peak_rss_mib": rss,
        "rss_after_import_mib": rss_start,
        "cuda_max_alloc_mib": cuda_alloc,
        "losses_finite": losses_finite,
        "flops_per_step": flops,
        "mfu": None if flops is None else flops / summary["median"] / peak["peak_flops"],
        "generator_params": sum(p.numel() for p in model.netG.parameters()) if hasattr(model, "netG") else None,
        **peak,
    }
    if opt.model == "srgan":
        result["n_blocks"] = opt.n_blocks
        result["vgg_weights"] = spec.get("vgg_label") if opt.lambda_perceptual > 0 else "unused"
    if dtype_note:
        result["note"] = dtype_note
    return result


def load_photo(path: str) -> Any:
    """An RGB image file as a (1, 3, h, w) float32 tensor in [-1, 1], the generator's input range."""
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # (h, w, 3) in 0..255
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).contiguous() / 127.5 - 1


def sr_worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Time SR x4 inference of one photo, tiled or whole, with the tree's inference settings where it has them."""
    import torch

    import models
    from models import networks
    from models.sr_inference import upscale

    rss_start = current_rss_mib()
    x = load_photo(spec["image"])  # (1, 3, h, w)
    _, _, h, w = x.shape
    with tempfile.TemporaryDirectory(prefix="benchmark_") as tmp:
        torch.manual_seed(0)
        if hasattr(models.base_model.BaseModel, "inference_context"):
            # As test.py builds it: TestOptions (test-time defaults) and a generator loaded from a checkpoint,
            # here one of random weights (timing does not depend on them).
            opt = test_options(spec, ["--model", "srgan", "--ngf", str(SR_NGF), "--n_blocks", str(SR_BLOCKS),
                                      "--scale", str(SR_SCALE), *spec["flags"]], tmp)
            generator = networks.define_G(3, 3, SR_NGF, "srresnet", opt.norm, False, n_blocks=SR_BLOCKS,
                                          scale=SR_SCALE)
            os.makedirs(os.path.join(opt.checkpoints_dir, opt.name), exist_ok=True)
            torch.save(generator.state_dict(), os.path.join(opt.checkpoints_dir, opt.name, "latest_net_G.pth"))
            model = models.create_model(opt)
            model.setup(opt)
            model.eval()
            net, device, context = model.netG, model.device, model.inference_context
            config = resolved_config(opt)
            inference = "srgan as test.py builds it, under model.inference_context()"
        else:
            if spec["flags"]:  # not a failure: there is nothing to measure on this tree
                return {"skipped": f"config {spec['config']} ({' '.join(spec['flags'])}) does not apply: this tree "
                                   f"has no BaseModel.inference_context to apply it to inference"}
            device = torch.device("cuda", 0) if spec["device"] == "cuda" else torch.device("cpu")
            gpu_ids = [0] if device.type == "cuda" else []
            net = networks.define_G(3, 3, SR_NGF, "srresnet", "batch", False, "normal", 0.02, gpu_ids,
                                    n_blocks=SR_BLOCKS, scale=SR_SCALE)
            net.eval()
            context = contextlib.nullcontext
            config = {"amp": None, "channels_last": None, "compile": None}
            inference = "plain float32 (the tree has no inference settings)"
        sync = device_sync(device)
        tile = spec["tile"] if spec["mode"] == "tiled" else 0
        pad = spec["tile_pad"]

        def run(image: Any) -> Any:
            with context():
                out = upscale(net, image, SR_SCALE, tile=tile, tile_pad=pad, device=device)
            sync()
            return out

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            run(x)  # every tile shape once: cuDNN picks its kernels, compile traces
        else:  # on a CPU a full warm-up run would take minutes; one tile's worth sets up the kernels
            side = tile or 128
            run(x[:, :, :min(h, side), :min(w, side)])
        times: List[float] = []
        out_shape: Tuple[int, ...] = ()
        for _ in range(spec["runs"]):
            start = time.perf_counter()
            out = run(x)
            times.append(time.perf_counter() - start)
            out_shape = tuple(out.shape)
            del out  # the next run must not hold two outputs at once
        rss = peak_rss_mib()
        cuda_alloc = cuda_max_allocated_mib(device)
        params = sum(p.numel() for p in net.parameters())
    seconds = statistics.median(times)
    expected = (1, 3, h * SR_SCALE, w * SR_SCALE)
    if out_shape != expected:
        raise RuntimeError(f"upscale returned shape {out_shape}, expected {expected}")
    return {
        **config,
        "inference": inference,
        "input_size": [w, h],
        "output_size": [w * SR_SCALE, h * SR_SCALE],
        "tile_used": tile,
        "runs": len(times),
        "times_s": times,
        "seconds": seconds,
        "input_mp_per_s": h * w / 1e6 / seconds,
        "output_mp_per_s": h * w * SR_SCALE**2 / 1e6 / seconds,
        "peak_rss_mib": rss,
        "rss_after_import_mib": rss_start,
        "cuda_max_alloc_mib": cuda_alloc,
        "generator_params": params,
    }


def worker_main(spec_text: str) -> int:
    """Run one measurement and print its result as one marked JSON line on the real stdout.

    Anything the libraries print goes to stderr meanwhile, so stdout carries the result line alone (the
    marker still guards against output written straight to file descriptor 1).
    """
    spec = json.loads(spec_text)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s")
    try:
        import torch

        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        code = import_tree(spec["tree_root"])
        worker = {"train": train_worker, "sr": sr_worker}[spec["kind"]]
        result = worker(spec)
        result.update(code=str(code), threads=torch.get_num_threads(), torch=torch.__version__)
    except SystemExit:  # an option error: the tree's parser has printed its one-line message
        raise
    except BaseException:  # noqa: BLE001  (the parent reports the traceback as the measurement's error)
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        return 1
    finally:
        sys.stdout = real_stdout
    real_stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    real_stdout.flush()
    return 0


# =============================================================================================================
# Parent: plan, run the workers, summarise, write the reports.
# =============================================================================================================


def stderr_tail(text: Any, lines: int = 25, chars: int = 4000) -> str:
    """The end of a worker's stderr: where the traceback or the option error is."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    tail = "\n".join((text or "").rstrip().splitlines()[-lines:])
    return tail[-chars:]


def identity(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The fields that name a measurement, copied into its result (also into a failed one)."""
    keys = ("kind", "tree", "model", "setting", "config", "repeat", "flags", "mode", "tile", "tile_pad",
            "image_source")
    return {k: spec[k] for k in keys if k in spec}


def run_worker(spec: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    """Run one measurement in a fresh process in the tree's root; a failure becomes a result with "error"."""
    command = [sys.executable, str(SCRIPT), "--worker", json.dumps(spec)]
    base = identity(spec)
    try:
        proc = subprocess.run(command, cwd=spec["tree_root"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return {**base, "error": f"timed out after {timeout:g} s", "stderr_tail": stderr_tail(e.stderr)}
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if proc.returncode != 0 or not lines:
        tail = stderr_tail(proc.stderr)
        last = tail.splitlines()[-1] if tail else f"no result line (exit code {proc.returncode})"
        return {**base, "error": last, "exit_code": proc.returncode, "stderr_tail": tail}
    return {**base, **json.loads(lines[-1][len(RESULT_MARKER):])}


def git(*args: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchmarkError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def tree_info(root: Path) -> Dict[str, Any]:
    """Which code a tree holds: its commit and whether it has uncommitted changes."""
    try:
        rev = git("rev-parse", "HEAD", cwd=root)
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", cwd=root))
    except BenchmarkError:
        rev, dirty = None, None
    return {"root": str(root), "rev": rev, "uncommitted_changes": dirty}


@contextlib.contextmanager
def baseline_worktree(rev: str) -> Iterator[Path]:
    """A temporary detached git worktree of `rev`, removed again afterwards whatever happens."""
    try:
        sha = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except BenchmarkError:
        raise BenchmarkError(f"--baseline-rev {rev}: not a commit of the repository at {ROOT}") from None
    folder = Path(tempfile.mkdtemp(prefix="benchmark_baseline_"))
    path = folder / "tree"
    try:
        git("worktree", "add", "--detach", str(path), sha)
        logger.info("baseline %s (%s) checked out in %s", rev, sha[:12], path)
        yield path
    finally:
        if path.exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def vgg_weights(folder: Path) -> Tuple[Optional[str], str]:
    """(--vgg_weights file or None, label) for srgan's perceptual loss.

    The ImageNet weights in the torch hub cache when present; otherwise randomly initialised VGG19
    features saved in `folder` (the loader accepts a state_dict of the features alone): the same work per
    step, so the same time, but no meaningful loss.
    """
    import torch
    import torchvision

    cached = Path(torch.hub.get_dir()) / "checkpoints" / "vgg19-dcbb9e9d.pth"
    if cached.is_file():
        return None, "ImageNet (torch hub cache)"
    torch.manual_seed(0)
    features = torchvision.models.vgg19(weights=None).features
    path = folder / "vgg19_random_features.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    logger.info("no VGG19 ImageNet weights in %s: srgan uses random VGG19 weights (timing only)", cached.parent)
    return str(path), "random (timing only)"


def demo_photo_module() -> Any:
    """scripts/make_demo_data.py, whose procedural 'photos' stand in when the shared photos are absent."""
    spec = importlib.util.spec_from_file_location("_benchmark_make_demo_data", ROOT / "scripts" / "make_demo_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_sr_photo(folder: Path, photos: Path = SHARED_PHOTOS) -> Tuple[Path, str]:
    """A 1920x1080 photo for SR, made at run time in `folder`: a mosaic of real photos (BSD200, 481x321
    each, portrait ones turned) when they are present, else of make_demo_data's procedural photos.

    A mosaic of real photos has real texture and edges at a real photo's size without any photo of that
    size being stored; nothing is copied into the repository.
    """
    from PIL import Image

    width, height = SR_PHOTO_SIZE
    canvas = Image.new("RGB", (width, height))
    files = sorted(photos.glob("*.jpg")) if photos.is_dir() else []
    if files:
        cell_w, cell_h = 480, 320
        cols, rows = -(-width // cell_w), -(-height // cell_h)
        for i in range(cols * rows):
            with Image.open(files[i % len(files)]) as image:
                image = image.convert("RGB")
                if image.height > image.width:
                    image = image.transpose(Image.Transpose.ROTATE_90)
                image = image.resize((cell_w, cell_h), Image.Resampling.BICUBIC) if image.size[0] < cell_w \
                    or image.size[1] < cell_h else image.crop((0, 0, cell_w, cell_h))
                canvas.paste(image, ((i % cols) * cell_w, (i // cols) * cell_h))
        source = f"mosaic of {min(cols * rows, len(files))} BSD200 photos from {photos}"
    else:
        import numpy as np

        module = demo_photo_module()
        rng = np.random.default_rng(0)
        cell = module.SIZE
        cols, rows = -(-width // cell), -(-height // cell)
        for i in range(cols * rows):
            canvas.paste(module.make_pair(rng, noise_std=0.0)[1], ((i % cols) * cell, (i // cols) * cell))
        source = f"mosaic of {cols * rows} procedural photos (scripts/make_demo_data.py; {photos} is absent)"
    path = folder / "sr_photo_1920x1080.png"
    canvas.save(path)
    return path, source


def sr_images(folder: Path, sr_image: Optional[str], settings: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """The LR image of each SR setting: the photo itself (`default`) or downscaled by 4 (`small`)."""
    from PIL import Image

    if sr_image is not None:
        photo, source = Path(sr_image), f"--sr-image {sr_image}"
    else:
        photo, source = make_sr_photo(folder)
    images: Dict[str, Dict[str, Any]] = {}
    with Image.open(photo) as image:
        image = image.convert("RGB")
        for setting in settings:
            factor = SR_SETTINGS[setting]["downscale"]
            if factor == 1 and sr_image is not None:
                path = photo
            else:
                size = (max(1, image.width // factor), max(1, image.height // factor))
                path = folder / f"sr_{setting}_{size[0]}x{size[1]}.png"
                image.resize(size, Image.Resampling.BICUBIC).save(path)
            with Image.open(path) as saved:
                images[setting] = {"path": str(path), "size": list(saved.size), "source": source if factor == 1
                                   else f"{source}, downscaled by {factor}"}
    return images


def whole_image_skip(size: Sequence[int], device: str) -> Optional[str]:
    """Why whole-image SR of this size is not run on this device, or None when it fits."""
    estimate_gib = 2 * SR_NGF * (size[0] * size[1] * SR_SCALE**2) * 4 / 2**30
    if device == "cuda":
        import torch

        limit = torch.cuda.get_device_properties(0).total_memory / 2**30 * SR_WHOLE_CUDA_FRACTION
    else:
        limit = SR_WHOLE_CPU_LIMIT_GIB
    if estimate_gib <= limit:
        return None
    return (f"whole-image x{SR_SCALE} of {size[0]}x{size[1]} needs about {estimate_gib:.0f} GiB ({device} limit "
            f"{limit:.0f} GiB); measured tiled only")


def config_list(device: str, names: Optional[List[str]]) -> List[str]:
    return list(names) if names else list(DEFAULT_CONFIGS[device])


def plan(args: argparse.Namespace, trees: Dict[str, Path], vgg: Tuple[Optional[str], str],
         images: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Every measurement, in run order: per model and setting, repeats of [before, configs...] interleaved."""
    configs = config_list(args.device, args.configs)
    runs = [(BEFORE, "before")] if "before" in trees else []
    runs += [(config, "after") for config in configs]
    common = {"device": args.device, "threads": args.threads}
    specs: List[Dict[str, Any]] = []
    if args.train:
        vgg_path, vgg_label = vgg
        steps = args.steps or DEFAULT_STEPS[args.device]
        for model in args.models:
            for setting in args.settings:
                for repeat in range(args.repeats):
                    for config, tree in runs:
                        flags = list(SETTING_FLAGS[setting][model])
                        flags += [] if config == BEFORE else list(CONFIG_FLAGS[config])
                        if model == "srgan" and vgg_path is not None:
                            flags += ["--vgg_weights", vgg_path]
                        specs.append({**common, "kind": "train", "tree": tree, "tree_root": str(trees[tree]),
                                      "model": model, "setting": setting, "config": config, "repeat": repeat,
                                      "flags": flags, "steps": steps, "warmup": args.warmup,
                                      "peak_size": args.peak_size, "vgg_label": vgg_label})
    if args.sr:
        sr_runs = args.sr_runs or (3 if args.device == "cuda" else 1)
        for setting in args.settings:
            image = images[setting]
            for mode in SR_MODES:
                for repeat in range(args.repeats):
                    for config, tree in runs:
                        spec = {**common, "kind": "sr", "tree": tree, "tree_root": str(trees[tree]),
                                "setting": setting, "mode": mode, "config": config, "repeat": repeat,
                                "flags": [] if config == BEFORE else list(CONFIG_FLAGS[config]),
                                "image": image["path"], "image_size": image["size"], "image_source": image["source"],
                                "tile": args.sr_tile or SR_SETTINGS[setting]["tile"], "tile_pad": args.sr_tile_pad,
                                "runs": sr_runs}
                        if mode == "whole":
                            spec["skipped"] = whole_image_skip(image["size"], args.device)
                        specs.append(spec)
    return specs


def describe(spec: Dict[str, Any]) -> str:
    if spec["kind"] == "train":
        return f"{spec['model']} {spec['setting']} {spec['config']} ({spec['tree']}, repeat {spec['repeat'] + 1})"
    size = "x".join(map(str, spec["image_size"]))
    tile = f" tile {spec['tile']}" if spec["mode"] == "tiled" else ""
    return f"SR x{SR_SCALE} {spec['setting']} {size} {spec['mode']}{tile} {spec['config']} ({spec['tree']}, " \
           f"repeat {spec['repeat'] + 1})"


def progress_line(result: Dict[str, Any]) -> str:
    if "error" in result:
        return f"FAILED: {result['error']}"
    if result.get("skipped"):
        return f"skipped: {result['skipped']}"
    rss = f"peak RSS {result['peak_rss_mib']:.0f} MiB"
    if result["kind"] == "train":
        mfu = "n/a" if result.get("mfu") is None else f"{100 * result['mfu']:.1f}%"
        return f"{result['step_median_s']:.4g} s/step, {result['images_per_s']:.3g} images/s, {rss}, MFU {mfu}"
    return f"{result['seconds']:.4g} s, {result['output_mp_per_s']:.3g} output MP/s, {rss}"


def measure(specs: Sequence[Dict[str, Any]], timeout: float) -> List[Dict[str, Any]]:
    """Run every planned measurement, logging one progress line each; failures do not stop the others."""
    results = []
    for i, spec in enumerate(specs, 1):
        if spec.get("skipped"):
            result = {**identity(spec), "image_size": spec["image_size"], "skipped": spec["skipped"]}
        else:
            load, busy = load_average(), cpu_busy_fraction()
            result = run_worker(spec, timeout)
            result.update(load_avg_before=load, cpu_busy_before=busy)
            if spec["kind"] == "sr":
                result.setdefault("image_size", spec["image_size"])
        logger.info("[%d/%d] %s: %s", i, len(specs), describe(spec), progress_line(result))
        if "error" in result:
            logger.error("%s failed; worker stderr (tail):\n%s", describe(spec), result.get("stderr_tail", ""))
        results.append(result)
    return results


# ---- summary ------------------------------------------------------------------------------------------------


def _median_of(rows: Sequence[Dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def _max_of(rows: Sequence[Dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in rows if r.get(key) is not None]
    return max(values) if values else None


def _ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    return numerator / denominator if numerator and denominator else None


def _grouped(results: Sequence[Dict[str, Any]], keys: Sequence[str]) -> Dict[Tuple[Any, ...], List[Dict[str, Any]]]:
    groups: Dict[Tuple[Any, ...], List[Dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(tuple(result.get(k) for k in keys), []).append(result)
    return groups


def summarize_train(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per model, setting and config: medians over the repeats, speed-ups against `before` and
    `fp32` of the same model and setting, and the MFU from the FLOPs and the measured peak."""
    rows: List[Dict[str, Any]] = []
    for (model, setting, config), group in _grouped(results, ("model", "setting", "config")).items():
        ok = [r for r in group if "error" not in r]
        row: Dict[str, Any] = {"model": model, "setting": setting, "config": config, "tree": group[0].get("tree"),
                               "measured": len(ok), "failed": len(group) - len(ok)}
        if not ok:
            row["error"] = group[0]["error"]
            rows.append(row)
            continue
        first = ok[0]
        step = _median_of(ok, "step_median_s")
        row.update({k: first.get(k) for k in ("amp", "channels_last", "compile", "batch_size", "vgg_weights")
                    if k in first})
        row.update(step_median_s=step, images_per_s=first["batch_size"] / step,
                   peak_rss_mib=_max_of(ok, "peak_rss_mib"), cuda_max_alloc_mib=_max_of(ok, "cuda_max_alloc_mib"),
                   flops_per_step=first.get("flops_per_step"), peak_flops=_median_of(ok, "peak_flops"),
                   peak_dtype=first.get("peak_dtype"), losses_finite=all(r.get("losses_finite") is not False
                                                                          for r in ok))
        rows.append(row)
    by_key = {(r["model"], r["setting"], r["config"]): r for r in rows}
    for row in rows:
        if row.get("step_median_s") is None:
            continue
        if row.get("compile") or row["flops_per_step"] is None:
            # The counter cannot see inside compiled kernels (it counts none or only the parts left eager); the
            # model's FLOPs are the same in eager mode, so an eager config of the same model supplies them.
            donor = next((r for r in rows if (r["model"], r["setting"], r["tree"]) == (row["model"], row["setting"],
                          row["tree"]) and r.get("flops_per_step") and not r.get("compile")), None)
            if donor is not None:
                row.update(flops_per_step=donor["flops_per_step"], flops_from=donor["config"])
        row["mfu"] = (row["flops_per_step"] / row["step_median_s"] / row["peak_flops"]
                      if row["flops_per_step"] and row["peak_flops"] else None)
        for reference in (BEFORE, "fp32"):
            other = by_key.get((row["model"], row["setting"], reference))
            if other is not None and other is not row:
                row[f"speedup_vs_{reference}"] = _ratio(other.get("step_median_s"), row["step_median_s"])
    return rows


def summarize_sr(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per SR setting, mode and config: median seconds over repeats, MP/s, peak memory, speed-up."""
    rows: List[Dict[str, Any]] = []
    for (setting, mode, config), group in _grouped(results, ("setting", "mode", "config")).items():
        first = group[0]
        row: Dict[str, Any] = {"setting": setting, "mode": mode, "config": config, "tree": first.get("tree"),
                               "image_size": first.get("image_size"),
                               "tile": first.get("tile") if mode == "tiled" else 0}
        if first.get("skipped"):
            row["skipped"] = first["skipped"]
            rows.append(row)
            continue
        ok = [r for r in group if "error" not in r]
        row.update(measured=len(ok), failed=len(group) - len(ok))
        if not ok:
            row["error"] = first["error"]
            rows.append(row)
            continue
        seconds = _median_of(ok, "seconds")
        w, h = ok[0]["input_size"]
        row.update({k: ok[0].get(k) for k in ("amp", "channels_last", "compile", "inference")})
        row.update(seconds=seconds, input_mp_per_s=w * h / 1e6 / seconds,
                   output_mp_per_s=w * h * SR_SCALE**2 / 1e6 / seconds, peak_rss_mib=_max_of(ok, "peak_rss_mib"),
                   cuda_max_alloc_mib=_max_of(ok, "cuda_max_alloc_mib"))
        rows.append(row)
    by_key = {(r["setting"], r["mode"], r["config"]): r for r in rows}
    for row in rows:
        before = by_key.get((row["setting"], row["mode"], BEFORE))
        if before is not None and before is not row and row.get("seconds"):
            row["speedup_vs_before"] = _ratio(before.get("seconds"), row["seconds"])
    return rows


# ---- markdown -----------------------------------------------------------------------------------------------


def _cell(value: Any, spec: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "on" if value else "off"
    return format(value, spec) if spec else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def machine_line(machine: Dict[str, Any]) -> str:
    gpu = machine.get("gpu") or "no GPU"
    memory = f", {machine['memory_gib']:.0f} GiB RAM" if machine.get("memory_gib") else ""
    return (f"Machine: {machine.get('cpu', 'unknown CPU')} ({machine.get('cores_usable', '?')} of "
            f"{machine.get('cores', '?')} cores usable{memory}), {gpu}; torch {machine.get('torch')}, Python "
            f"{machine.get('python')}; measured on {machine.get('device')} on {machine.get('date')}.")


def markdown_report(report: Dict[str, Any]) -> str:
    """The markdown section of a report: the machine, the training table, before/after, SR, notes, failures."""
    machine = report["machine"]
    run = report.get("run", {})
    trees = report.get("trees", {})
    lines = [f"## Benchmarks ({machine.get('date', '')[:10]}, {machine.get('device')})", "", machine_line(machine)]
    after = trees.get("after")
    if after:
        changes = " with uncommitted changes" if after.get("uncommitted_changes") else ""
        code = f"Code: {str(after.get('rev') or 'unknown')[:12]}{changes}"
        before = trees.get("before")
        if before:
            code += f"; `before` = {before.get('requested')} ({str(before.get('rev'))[:12]})"
        lines += ["", code + "."]
    if run:
        lines += ["", f"Training: median of {run.get('steps')} steps after {run.get('warmup')} warm-up steps "
                      f"({COMPILE_WARMUP} under --compile), synthetic batches, {run.get('repeats')} repeat(s) "
                      f"interleaved; {run.get('threads') or 'default'} torch threads."]
    train = report.get("summary", {}).get("train", [])
    if train:
        header = ["model", "setting", "config", "amp", "channels_last", "compile", "batch", "step (s)", "images/s",
                  "vs before", "vs fp32", "peak RSS (MiB)", "CUDA max alloc (MiB)", "GFLOP/step", "MFU"]
        rows = []
        for r in train:
            if r.get("step_median_s") is None:
                rows.append([r["model"], r["setting"], r["config"], *["n/a"] * 4, "failed", *["n/a"] * 7])
                continue
            flops = _cell(r["flops_per_step"] / 1e9 if r.get("flops_per_step") else None, ".1f")
            if r.get("flops_from"):
                flops += f" (from {r['flops_from']})"
            speedups = [_cell(r.get(f"speedup_vs_{ref}"), ".2f") + ("x" if r.get(f"speedup_vs_{ref}") else "")
                        for ref in (BEFORE, "fp32")]
            rows.append([r["model"], r["setting"], r["config"], _cell(r.get("amp")), _cell(r.get("channels_last")),
                         _cell(r.get("compile")), _cell(r.get("batch_size")), _cell(r["step_median_s"], ".4g"),
                         _cell(r["images_per_s"], ".3g"), *speedups, _cell(r.get("peak_rss_mib"), ".0f"),
                         _cell(r.get("cuda_max_alloc_mib"), ".0f"), flops,
                         _cell(100 * r["mfu"] if r.get("mfu") is not None else None, ".1f")
                         + ("%" if r.get("mfu") is not None else "")])
        right = [False] * 6 + [True] * 9
        lines += ["", "### Training", "", *_table(header, rows, right)]
        pairs = [(r, next((d for d in train if (d["model"], d["setting"], d["config"]) ==
                           (r["model"], r["setting"], "default")), None)) for r in train if r["config"] == BEFORE]
        if pairs:
            rows = [[b["model"], b["setting"], _cell(b.get("step_median_s"), ".4g"),
                     _cell(d.get("step_median_s") if d else None, ".4g"),
                     _cell(d.get("speedup_vs_before") if d else None, ".2f")
                     + ("x" if d and d.get("speedup_vs_before") else "")] for b, d in pairs]
            lines += ["", "### Default step time, before and after", "",
                      *_table(["model", "setting", "before (s/step)", "after, default config (s/step)", "speed-up"],
                              rows, [False, False, True, True, True])]
    sr = report.get("summary", {}).get("sr", [])
    if sr:
        header = ["setting", "LR image", "mode", "tile", "config", "amp", "time (s)", "output MP/s", "input MP/s",
                  "vs before", "peak RSS (MiB)", "CUDA max alloc (MiB)"]
        rows = []
        for r in sr:
            size = "x".join(map(str, r.get("image_size") or [])) or "n/a"
            head = [r["setting"], size, r["mode"], _cell(r.get("tile")), r["config"]]
            if r.get("seconds") is None:
                rows.append([*head, "n/a", "skipped: " + r["skipped"] if r.get("skipped") else "failed",
                             *["n/a"] * 5])
                continue
            rows.append([*head, _cell(r.get("amp")), _cell(r["seconds"], ".4g"), _cell(r["output_mp_per_s"], ".3g"),
                         _cell(r["input_mp_per_s"], ".3g"),
                         _cell(r.get("speedup_vs_before"), ".2f") + ("x" if r.get("speedup_vs_before") else ""),
                         _cell(r.get("peak_rss_mib"), ".0f"), _cell(r.get("cuda_max_alloc_mib"), ".0f")])
        lines += ["", f"### SR x{SR_SCALE} inference", "",
                  *_table(header, rows, [False] * 5 + [False] + [True] * 6)]
    lines += ["", "Notes:", ""]
    lines += [f"- {note}" for note in report.get("notes", [])]
    failures = report.get("failures", [])
    if failures:
        lines += ["", "### Failures", ""]
        lines += [f"- {f['what']}: {f['error']}" for f in failures]
    return "\n".join(lines) + "\n"


def report_notes(report: Dict[str, Any]) -> List[str]:
    """What a reader must know to read the numbers right, derived from what was actually measured."""
    notes = ["Step = set_input + optimize_parameters on a synthetic batch (no data loading); images/s = batch / "
             "median step time. Peak RSS is the measuring process's high-water mark (Linux VmHWM; it includes "
             "torch itself); every measurement runs in a process of its own.",
             "MFU = matmul/convolution FLOPs of one training step (forward and backward, counted by "
             "torch.utils.flop_counter) / median step time / peak FLOP/s, the peak being the median speed of square "
             "matmuls in the config's compute dtype, measured in the same process on the same device."]
    train = report.get("summary", {}).get("train", [])
    vgg = {r.get("vgg_weights") for r in train if r.get("model") == "srgan" and r.get("vgg_weights")}
    if "random (timing only)" in vgg:
        notes.append("srgan: the VGG19 ImageNet weights are not on this machine, so its perceptual loss ran with "
                     "random VGG19 weights of the same shapes: timing only (the work per step is the same).")
    if any(r.get("flops_from") for r in train):
        notes.append("Under torch.compile the FLOP counter cannot see the compiled kernels; those rows take the "
                     "FLOPs of an eager config of the same model and setting ('from ...').")
    measured = [r for kind in ("train", "sr") for r in report.get("measurements", {}).get(kind, [])]
    busy = [r["cpu_busy_before"] for r in measured if r.get("cpu_busy_before") is not None]
    busy_at_start = report["machine"].get("cpu_busy_at_start")
    if busy_at_start is not None:
        busy.append(busy_at_start)
    if busy and max(busy) > BUSY_WARNING:
        notes.append(f"WARNING: other work used up to {100 * max(busy):.0f}% of the CPU time just before "
                     f"measurements (between them, while none ran); it slows the measurements unevenly. The "
                     f"share before each measurement is in the JSON (cpu_busy_before).")
    diverged = [f"{r['model']} {r['setting']} {r['config']}" for r in train if r.get("losses_finite") is False]
    if diverged:
        notes.append(f"WARNING: losses were NaN or infinite after the timed steps of {', '.join(diverged)}: "
                     f"that config does not train as measured.")
    high = [f"{r['model']} {r['setting']} {r['config']}" for r in train if (r.get("mfu") or 0) > 1]
    if high:
        notes.append(f"MFU above 100% ({', '.join(high)}): the step's kernels ran faster than the square matmul "
                     f"that defines the peak. Either they are genuinely faster (on some CPUs oneDNN's convolutions "
                     f"beat the BLAS matmul) or the machine's load changed between the steps and the peak "
                     f"measurement; the load averages before each measurement are in the JSON.")
    sr = report.get("summary", {}).get("sr", [])
    if sr:
        sources = sorted({r.get("image_source") for r in report.get("measurements", {}).get("sr", [])
                          if r.get("image_source")})
        notes.append(f"SR: SRResNet x{SR_SCALE} ({SR_BLOCKS} blocks, {SR_NGF} filters) with random weights: timing "
                     f"only. Output MP/s = output pixels ({SR_SCALE**2} x the input pixels) / seconds / 10^6. Image: "
                     + ("; ".join(sources) if sources else "n/a") + ".")
        on_cpu = report["machine"].get("device") == "cpu"
        for r in sr:
            if r.get("image_size") == list(SR_PHOTO_SIZE) and r["mode"] == "tiled" and r.get("seconds"):
                target = ""
                if on_cpu:
                    met = "met" if r["peak_rss_mib"] <= SR_RSS_TARGET_MIB else "NOT met"
                    target = f" (CPU target <= {SR_RSS_TARGET_MIB:.0f} MiB: {met})"
                notes.append(f"SR x{SR_SCALE} of a {SR_PHOTO_SIZE[0]}x{SR_PHOTO_SIZE[1]} photo, tiled "
                             f"(tile {r['tile']}), config {r['config']}: {r['seconds']:.1f} s, peak RSS "
                             f"{r['peak_rss_mib']:.0f} MiB{target}.")
    return notes


# ---- the run ------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> Optional[float]:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def load_average() -> Optional[float]:
    """The 1-minute load average: work of other processes on the same cores makes every timing slower (on a
    small machine many times slower, when OpenMP threads wait for a preempted sibling), so it is recorded."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def cpu_busy_fraction(interval: float = 0.5) -> Optional[float]:
    """Share of the machine's CPU time spent on other work during `interval` seconds (Linux /proc/stat), taken
    while this process sleeps and no measurement runs. Unlike the load average, which lags by a minute, it
    says whether something else is using the cores right now."""
    def sample() -> Optional[Tuple[int, int]]:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle  # user..steal; guest time is already inside user

    first = sample()
    time.sleep(interval)
    second = sample()
    if first is None or second is None or second[0] <= first[0]:
        return None
    return 1 - (second[1] - first[1]) / (second[0] - first[0])


def machine_info(device: str) -> Dict[str, Any]:
    """What the numbers were measured on, for the report's machine line."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "cores_usable": usable, "memory_gib": memory_gib(),
            "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
            "cuda": torch.version.cuda if device == "cuda" else None, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": device,
            "load_avg_at_start": load_average(), "cpu_busy_at_start": cpu_busy_fraction(1.0),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def comma_list(allowed: Sequence[str], what: str) -> Callable[[str], List[str]]:
    """argparse type for `a,b,c` drawn from `allowed`; an unknown name is a usage error (exit code 2)."""
    def parse(text: str) -> List[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(map(repr, unknown)) or repr(text)} "
                                             f"(choose from {', '.join(allowed)})")
        return list(dict.fromkeys(names))
    return parse


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    summary = __doc__.split("\n\n", 1)[0].replace("\n", " ")
    parser = argparse.ArgumentParser(prog="benchmark.py", description=summary)
    parser.add_argument("--models", type=comma_list(MODEL_NAMES, "model"), default=list(MODEL_NAMES),
                        help=f"comma-separated models (default: {','.join(MODEL_NAMES)})")
    parser.add_argument("--settings", type=comma_list(tuple(SETTING_FLAGS), "setting"), default=list(SETTING_FLAGS),
                        help="comma-separated settings: default (each model's own defaults) and small (narrow "
                             "networks on small crops; for SR a 480x270 photo); default: both")
    parser.add_argument("--configs", type=comma_list(tuple(CONFIG_FLAGS), "config"), default=None,
                        help="comma-separated speed configs (default: "
                             + "; ".join(f"{d}: {','.join(c)}" for d, c in DEFAULT_CONFIGS.items()) + "); "
                             + "; ".join(f"{n} = {' '.join(f) or 'no flags'}" for n, f in CONFIG_FLAGS.items()))
    parser.add_argument("--baseline-rev", default=None,
                        help="also measure this git revision (config 'before', no config flags), interleaved")
    parser.add_argument("--repeats", type=positive_int, default=1, help="measure everything this many times (default: 1)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"timed training steps (default: {DEFAULT_STEPS['cpu']} on CPU, "
                             f"{DEFAULT_STEPS['cuda']} on CUDA)")
    parser.add_argument("--warmup", type=non_negative_int, default=3,
                        help=f"untimed warm-up steps (default: 3; at least {COMPILE_WARMUP} under --compile)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda where available, else cpu")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads in each measurement (default: torch's default)")
    parser.add_argument("--train", action=argparse.BooleanOptionalAction, default=True,
                        help="measure training steps (default: on)")
    parser.add_argument("--sr", action=argparse.BooleanOptionalAction, default=True,
                        help=f"measure SR x{SR_SCALE} inference, tiled and whole (default: on)")
    parser.add_argument("--sr-image", default=None,
                        help=f"LR photo for SR (default: a {SR_PHOTO_SIZE[0]}x{SR_PHOTO_SIZE[1]} mosaic made at run "
                             f"time); setting small uses it downscaled by 4")
    parser.add_argument("--sr-tile", type=positive_int, default=None,
                        help="tile size of tiled SR (default: " + ", ".join(
                            f"{s} {v['tile']}" for s, v in SR_SETTINGS.items()) + ")")
    parser.add_argument("--sr-tile-pad", type=non_negative_int, default=40, help="tile context in LR pixels (default: 40)")
    parser.add_argument("--sr-runs", type=positive_int, default=None,
                        help="timed SR runs per measurement (default: 1 on CPU, 3 on CUDA)")
    parser.add_argument("--peak-size", type=positive_int, default=None,
                        help="largest n of the n x n peak matmul (default: 2048 on CPU, 8192 on CUDA)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one measurement may take (default: 3600)")
    parser.add_argument("--json", default=None, help="write the JSON report here (default: stdout)")
    parser.add_argument("--markdown", default=None, help="write the markdown section here (default: stderr)")
    args = parser.parse_args(argv)
    if not args.train and not args.sr:
        parser.error("nothing to measure: --no-train and --no-sr together")
    if args.sr_image is not None and not os.path.isfile(args.sr_image):
        parser.error(f"--sr-image {args.sr_image}: no such file")
    return args


def write_text(path: str, text: str) -> None:
    """Write through a temporary file and a rename, so an interrupted run leaves no half-written report."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)
    logger.info("wrote %s", path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda: CUDA is not available on this machine")
    machine = machine_info(args.device)
    logger.info("%s", machine_line(machine))
    trees: Dict[str, Path] = {"after": ROOT}
    tree_meta: Dict[str, Any] = {"after": tree_info(ROOT)}
    with contextlib.ExitStack() as stack:
        if args.baseline_rev:
            trees["before"] = stack.enter_context(baseline_worktree(args.baseline_rev))
            tree_meta["before"] = {**tree_info(trees["before"]), "requested": args.baseline_rev}
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="benchmark_files_")))
        vgg = vgg_weights(folder) if args.train and "srgan" in args.models else (None, "unused")
        images = sr_images(folder, args.sr_image, args.settings) if args.sr else {}
        specs = plan(args, trees, vgg, images)
        results = measure(specs, args.timeout)
    train = [r for r in results if r["kind"] == "train"]
    sr = [r for r in results if r["kind"] == "sr"]
    failures = [{"what": f"{r.get('model') or 'SR ' + r.get('mode', '')} {r['setting']} {r['config']} "
                         f"({r['tree']}, repeat {r['repeat'] + 1})", "error": r["error"]}
                for r in results if "error" in r]
    report: Dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "machine": machine,
        "trees": {name: {k: v for k, v in meta.items() if k != "root" or name == "after"}
                  for name, meta in tree_meta.items()},
        "run": {"models": args.models if args.train else [], "settings": args.settings,
                "configs": config_list(args.device, args.configs), "baseline_rev": args.baseline_rev,
                "repeats": args.repeats, "steps": args.steps or DEFAULT_STEPS[args.device], "warmup": args.warmup,
                "threads": args.threads, "sr": args.sr,
                "sr_images": {s: {"size": v["size"], "source": v["source"]} for s, v in images.items()}},
        "measurements": {"train": train, "sr": sr},
        "summary": {"train": summarize_train(train), "sr": summarize_sr(sr)},
        "failures": failures,
    }
    report["notes"] = report_notes(report)
    text = json.dumps(report, indent=2) + "\n"
    if args.json:
        write_text(args.json, text)
    else:
        sys.stdout.write(text)
    markdown = markdown_report(report)
    if args.markdown:
        write_text(args.markdown, markdown)
    else:
        sys.stderr.write("\n" + markdown)
    if failures:
        logger.error("%d of %d measurements failed (see above and the report's 'failures')", len(failures),
                     len(results))
        return 1
    return 0


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: `--worker SPEC` runs one measurement; anything else is a benchmark run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "--worker":
        return worker_main(argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        return main(argv)
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
