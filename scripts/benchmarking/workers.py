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

import contextlib
import importlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

from .cases import COMPILE_WARMUP, SR_MODEL, SR_SCALE
from .machine import cuda_max_allocated_mib, current_rss_mib, peak_rss_mib
from .peak import compute_dtype, count_flops, device_sync, forward_flops, matmul_peak, peak_settings
from .timing import percentile_summary

RESULT_MARKER = "BENCHMARK_RESULT "
# What a tree without BaseModel.inference_context (before test.py's inference settings) is measured with: its
# one SR generator at the size and tiling its test.py used.
LEGACY_SR: Dict[str, Any] = {"netG": "srresnet", "ngf": 64, "n_blocks": 16, "tile": 192, "tile_pad": 40}


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


def load_photo(path: str) -> Any:
    """An RGB image file as a (1, 3, h, w) float32 tensor in [-1, 1], the generator's input range."""
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # (h, w, 3) in 0..255
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).contiguous() / 127.5 - 1


def _tiled_upscale() -> Tuple[Callable[..., Any], str]:
    """The tree's tiled SR inference, `(net, x (1, 3, h, w) in [-1, 1], scale, tile, tile_pad, device) -> output`,
    and what it is: super_resolve on an 8-bit SRImage where the tree has it (what test.py and scripts/upscale.py
    run: the output kept as 8-bit levels; models.inference, models.sr_inference in older trees), else
    upscale_tiled (named upscale in older trees; a float32 output)."""
    try:
        from models import inference as sr_inference
    except ImportError:  # trees before models/inference/
        from models import sr_inference  # type: ignore[no-redef]

    super_resolve = getattr(sr_inference, "super_resolve", None)
    if super_resolve is not None:
        from util.images import SRImage

        def upscale(net: Any, x: Any, scale: int, tile: int, tile_pad: int, device: Any) -> Any:
            return super_resolve(net, SRImage((x[0] + 1) / 2, None, 8), scale, tile, tile_pad, device).pixels

        return upscale, "super_resolve of an 8-bit image"
    tiled = getattr(sr_inference, "upscale_tiled", None) or sr_inference.upscale

    def upscale_float(net: Any, x: Any, scale: int, tile: int, tile_pad: int, device: Any) -> Any:
        return tiled(net, x, scale, tile=tile, tile_pad=tile_pad, device=device)[0]

    return upscale_float, "upscale_tiled, float32 output"


def _sr_generator_as_test_py(spec: Dict[str, Any], tmp: str) -> Tuple[Any, Any, Any]:
    """(model, opt, architecture options) for spec's --netG, as test.py builds it: TestOptions (test-time
    defaults: --amp, --channels_last, --tile, --tile_pad) and a generator loaded from a checkpoint, here one of
    random weights (the time does not depend on them). The architecture's own options (--n_blocks, --n_conv...)
    keep their defaults, so a generator is measured at the size it is registered with."""
    import torch

    import models
    from models import networks

    tiling = [*(["--tile", str(spec["tile"])] if spec.get("tile") else []),
              *(["--tile_pad", str(spec["tile_pad"])] if spec.get("tile_pad") is not None else [])]
    opt = test_options(spec, ["--model", SR_MODEL, "--netG", spec["netG"], "--scale", str(SR_SCALE), *tiling,
                              *spec["flags"]], tmp)
    if hasattr(networks, "generator_kwargs"):
        try:
            from models.archs import registration
        except ImportError:  # trees before models/archs/
            from models import architecture as registration  # type: ignore[no-redef]

        kwargs = networks.generator_kwargs(opt)
        shape = {name: getattr(opt, name) for name in registration.own_options(networks.GENERATORS, opt.netG)}
    else:  # trees before the architecture registry: SRResNet's one option
        kwargs = shape = {"n_blocks": opt.n_blocks, "scale": opt.scale}
    generator = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, False, **kwargs)
    os.makedirs(os.path.join(opt.checkpoints_dir, opt.name), exist_ok=True)
    torch.save(generator.state_dict(), os.path.join(opt.checkpoints_dir, opt.name, "latest_net_G.pth"))
    model = models.create_model(opt)
    model.setup(opt)
    model.eval()
    return model, opt, {"ngf": opt.ngf, **{k: v for k, v in shape.items() if k != "scale"}}


def sr_worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Time SR x4 inference of one photo by one generator, tiled or whole, with the tree's inference settings
    where it has them; then count the FLOPs the network did (useful and computed, tile overlap included) and
    measure the matmul peak of the dtype it computed in."""
    import collections

    import torch

    import models
    from models import networks

    upscale, path = _tiled_upscale()
    rss_start = current_rss_mib()
    x = load_photo(spec["image"])  # (1, 3, h, w)
    _, _, h, w = x.shape
    registry = getattr(networks, "GENERATORS", None)
    if registry is not None and spec["netG"] not in registry:
        return {"skipped": f"this tree has no generator {spec['netG']!r}"}
    with tempfile.TemporaryDirectory(prefix="benchmark_") as tmp:
        torch.manual_seed(0)
        if hasattr(models.base_model.BaseModel, "inference_context"):
            model, opt, shape = _sr_generator_as_test_py(spec, tmp)
            net, device, context = model.netG, model.device, model.inference_context
            config = resolved_config(opt)
            tile, pad = opt.tile, opt.tile_pad
            inference = f"{SR_MODEL} as test.py builds it, under model.inference_context(); {path}"
        else:
            if spec["flags"] or spec["netG"] != LEGACY_SR["netG"]:  # not a failure: nothing to measure here
                return {"skipped": f"config {spec['config']} ({' '.join(spec['flags'])}) or --netG {spec['netG']} "
                                   f"does not apply: this tree has no BaseModel.inference_context"}
            device = torch.device("cuda", 0) if spec["device"] == "cuda" else torch.device("cpu")
            gpu_ids = [0] if device.type == "cuda" else []
            net = networks.define_G(3, 3, LEGACY_SR["ngf"], spec["netG"], "batch", False, "normal", 0.02, gpu_ids,
                                    n_blocks=LEGACY_SR["n_blocks"], scale=SR_SCALE)
            net.eval()
            context = contextlib.nullcontext
            config = {"amp": None, "channels_last": None, "compile": None}
            shape = {"ngf": LEGACY_SR["ngf"], "n_blocks": LEGACY_SR["n_blocks"]}
            tile, pad = spec.get("tile") or LEGACY_SR["tile"], spec.get("tile_pad") or LEGACY_SR["tile_pad"]
            inference = f"plain float32 (the tree has no inference settings); {path}"
        sync = device_sync(device)
        tile = tile if spec["mode"] == "tiled" else 0

        def run(image: Any) -> Any:
            with context():
                out = upscale(net, image, SR_SCALE, tile, pad, device)  # (3, H, W)
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
        shapes: List[Tuple[int, ...]] = []  # what the network was fed in one run: the padded tiles
        for i in range(spec["runs"]):
            hook = net.register_forward_pre_hook(lambda _, args: shapes.append(tuple(args[0].shape))) \
                if i == 0 else None
            start = time.perf_counter()
            out = run(x)
            times.append(time.perf_counter() - start)
            if hook is not None:
                hook.remove()
            out_shape = tuple(out.shape)
            del out  # the next run must not hold two outputs at once
        rss = peak_rss_mib()  # before the FLOP count and the peak matmul, which are not inference
        cuda_alloc = cuda_max_allocated_mib(device)
        params = sum(p.numel() for p in net.parameters())
        useful = forward_flops(net, {(1, 3, h, w): 1})  # one pass over the whole image: the model's FLOPs
        computed = forward_flops(net, collections.Counter(shapes))
        dtype_name, dtype_note = compute_dtype(config["amp"])
        peak = matmul_peak(device, dtype_name, **peak_settings(spec, device))
    seconds = statistics.median(times)
    expected = (3, h * SR_SCALE, w * SR_SCALE)
    if out_shape != expected:
        raise RuntimeError(f"upscale returned shape {out_shape}, expected {expected}")
    result = {
        **config,
        "inference": inference,
        "architecture": shape,
        "input_size": [w, h],
        "output_size": [w * SR_SCALE, h * SR_SCALE],
        "tile_used": tile,
        "tile_pad_used": pad if tile else 0,
        "runs": len(times),
        "times_s": times,
        "seconds": seconds,
        "input_mp_per_s": h * w / 1e6 / seconds,
        "output_mp_per_s": h * w * SR_SCALE**2 / 1e6 / seconds,
        "peak_rss_mib": rss,
        "rss_after_import_mib": rss_start,
        "cuda_max_alloc_mib": cuda_alloc,
        "generator_params": params,
        "flops_useful": useful,
        "flops_computed": computed,
        "overlap": computed / useful if useful else None,
        "mfu": useful / seconds / peak["peak_flops"] if useful else None,
        "mfu_computed": computed / seconds / peak["peak_flops"] if computed else None,
        **peak,
    }
    if dtype_note:
        result["note"] = dtype_note
    return result


WORKERS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {"train": train_worker, "sr": sr_worker}


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
        code = check_tree(spec["tree_root"])
        result = WORKERS[spec["kind"]](spec)
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
