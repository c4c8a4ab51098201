"""One measurement, in a process of its own (`python scripts/benchmark.py --worker SPEC`), against the tree
named in the spec.

Every measurement runs in a fresh process: peak RSS is a per-process high-water mark, so only a process of its
own gives each measurement its own peak; a crash, a compile cache or a global switch (cuDNN benchmark, matmul
precision) cannot leak into the next measurement either.

The tree under test is imported only after `check_tree` has checked that it comes first on the import path,
and the --baseline-rev tree is measured by this very code, which therefore uses only APIs that exist in both
trees (TrainOptions().parse, TestOptions().parse, create_model, setup, set_input, optimize_parameters,
set_epoch, the model's `upscales`, netG, networks.define_G, and the tiled upscaling: models.inference's
super_resolve, in older trees models.sr_inference's, else upscale_tiled, named upscale in older trees;
networks.GENERATORS and generator_kwargs where the tree has them).
What differs between models and generators comes from what they declare (`upscales`, their options), never
from their names.
"""
from __future__ import annotations

import importlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

from .cases import COMPILE_WARMUP
from .machine import cuda_max_allocated_mib, current_rss_mib, peak_rss_mib
from .peak import compute_dtype, count_flops, device_sync, matmul_peak, peak_settings
from .timing import percentile_summary

def check_tree(tree_root: str) -> Path:
    """Import the toolkit and check it is the tree under test's, not this script's tree or the installed one
    (runner.run_worker puts the tree first on PYTHONPATH, before the editable install's finder)."""
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


def upscale_factor(model: Any, opt: Any) -> int:
    """How many times larger the model's output is than its input: its `--scale` where the model declares that
    it `upscales` (super-resolution), else 1."""
    return int(opt.scale) if getattr(model, "upscales", False) else 1


def synthetic_batch(opt: Any, scale: int) -> Dict[str, Any]:
    """A batch as the data loader gives it: 'A' the input, 'B' the target, in [-1, 1], on the CPU.

    A model that upscales by `scale` gets an LR input of crop_size / scale pixels; the others same-size pairs.
    """
    import torch

    size = opt.crop_size
    lr_size = size // scale
    generator = torch.Generator().manual_seed(0)
    n = opt.batch_size
    a = torch.rand((n, opt.input_nc, lr_size, lr_size), generator=generator) * 2 - 1  # (B, C_in, h, w)
    b = torch.rand((n, opt.output_nc, size, size), generator=generator) * 2 - 1  # (B, C_out, H, W)
    return {"A": a, "B": b, "A_paths": [f"bench_A_{i}.png" for i in range(n)],
            "B_paths": [f"bench_B_{i}.png" for i in range(n)]}


def resolved_config(opt: Any) -> Dict[str, Any]:
    """The speed settings the tree ran with (None where the tree has no such option, e.g. the old code)."""
    return {"amp": getattr(opt, "amp", None), "channels_last": getattr(opt, "channels_last", None),
            "compile": getattr(opt, "compile", None)}


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
        # The first epoch after a pre-training stage, where the model has one (srgan's SRResNet epochs): the
        # stage that trains everything (G, D and the perceptual loss). A no-op for models without stages.
        model.set_epoch(getattr(opt, "pretrain_epochs", 0) + 1)
        device = model.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        batch = synthetic_batch(opt, upscale_factor(model, opt))
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
    # What the model's options declare: a residual depth, a VGG perceptual loss (and which weights it ran with).
    if hasattr(opt, "n_blocks"):
        result["n_blocks"] = opt.n_blocks
    if hasattr(opt, "lambda_perceptual"):
        result["vgg_weights"] = spec.get("vgg_label") if opt.lambda_perceptual > 0 else "unused"
    if dtype_note:
        result["note"] = dtype_note
    return result
