"""SR x4 inference measured inside a worker process (`sr_worker`), through torch or onnxruntime, and the ONNX
export an onnxruntime measurement runs (`export_worker`, a process of its own before it).

The onnxruntime side is measured as `--backend onnxruntime` runs it (the same tiles, context and 8-bit output
code, models/inference/onnx_backend.OnnxGenerator), from a file exported beforehand by another process: the
export (torch.onnx's tracing, the equality check) takes memory that is not inference, and peak RSS is a
per-process high-water mark. Both backends' networks have the same random weights (seed 0).

FLOPs computed: every convolution call's FLOPs, recorded by hooks on the torch network's convolutions during
the first timed run, so whatever order tiles and network parts run in (whole network per tile, or a trunk and
a head tiled apart) is counted as it ran; for onnxruntime, the torch network's FLOPs on the tile shapes the
file was fed (the same network).
"""
from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple

from .cases import SR_MODEL, SR_SCALE
from .machine import cuda_max_allocated_mib, current_rss_mib, peak_rss_mib
from .peak import compute_dtype, device_sync, forward_flops, matmul_peak, peak_settings
from .workers import resolved_config, test_options

# What a tree without BaseModel.inference_context (before test.py's inference settings) is measured with: its
# one SR generator at the size and tiling its test.py used.
LEGACY_SR: Dict[str, Any] = {"netG": "srresnet", "ngf": 64, "n_blocks": 16, "tile": 192, "tile_pad": 40}


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
            model = None
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
        head_tile = 0
        if spec.get("onnx_path"):  # --backend onnxruntime: the exported file behind the same tiles code
            from models.inference.onnx_backend import OnnxGenerator
            from models.inference.tiles import backend_tile

            run_net, context = OnnxGenerator(spec["onnx_path"], torch.get_num_threads()), contextlib.nullcontext
            tile = backend_tile(spec["netG"], tile, "onnxruntime", SR_SCALE)  # plain tiles: their own default
            config = {**config, "amp": "none", "channels_last": None, "backend": "onnxruntime"}
            inference = f"onnxruntime (CPUExecutionProvider, fp32) behind the tiles code; {path}"
        else:
            run_net = net
            config = {**config, "backend": "torch"}
        sync = device_sync(device)
        tile = tile if spec["mode"] == "tiled" else 0
        upscaler = None
        if hasattr(model, "_upscaler_for") and not spec.get("onnx_path"):
            from util.images import SRImage

            upscaler = model._upscaler_for(net)  # test.py's Upscaler: its tiles (split where the net splits)
            upscaler.tile = tile
            head_tile = upscaler.head_tile if tile else 0
            inference = f"{SR_MODEL} as test.py builds it: its Upscaler, under model.inference_context()"

        def run(image: Any) -> Any:
            with context():
                if upscaler is not None:
                    out = upscaler(SRImage((image[0] + 1) / 2, None, 8)).pixels  # (3, H, W)
                else:
                    out = upscale(run_net, image, SR_SCALE, tile, pad, device)  # (3, H, W)
            sync()
            return out

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            run(x)  # every tile shape once: cuDNN picks its kernels, compile traces
        else:  # on a CPU a full warm-up run would take minutes; a small corner sets up the kernels and threads
            side = min(tile or 128, 192)
            run(x[:, :, :min(h, side), :min(w, side)])
        times: List[float] = []
        out_shape: Tuple[int, ...] = ()
        shapes: List[Tuple[int, ...]] = []  # what the onnxruntime file was fed in one run: the padded tiles
        convs: List[int] = []  # the FLOPs of every convolution the torch network ran in one run
        for i in range(spec["runs"]):
            with (recording(run_net, shapes, convs) if i == 0 else contextlib.nullcontext()):
                start = time.perf_counter()
                out = run(x)
                times.append(time.perf_counter() - start)
            out_shape = tuple(out.shape)
            del out  # the next run must not hold two outputs at once
        rss = peak_rss_mib()  # before the FLOP count and the peak matmul, which are not inference
        cuda_alloc = cuda_max_allocated_mib(device)
        params = sum(p.numel() for p in net.parameters())
        useful = forward_flops(net, {(1, 3, h, w): 1})  # one pass over the whole image: the model's FLOPs
        computed = sum(convs) if convs else forward_flops(net, collections.Counter(shapes))
        dtype_name, dtype_note = compute_dtype(config["amp"])
        peak = matmul_peak(device, dtype_name, **peak_settings(spec, device))
        # The issue's MFU targets are against the fp32 peak whatever the network computed in.
        fp32_peak = peak["peak_flops"] if dtype_name == "float32" else \
            matmul_peak(device, "float32", **peak_settings(spec, device))["peak_flops"]
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
        "head_tile_used": head_tile,
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
        "peak_flops_fp32": fp32_peak,
        "mfu_fp32": useful / seconds / fp32_peak if useful else None,
        **peak,
    }
    if dtype_note:
        result["note"] = dtype_note
    return result




@contextlib.contextmanager
def recording(net: Any, shapes: List[Tuple[int, ...]], convs: List[int]) -> Iterator[None]:
    """While inside: the input shape of every call of `net` itself into `shapes`, and the FLOPs of every call of
    a convolution inside it into `convs` (2 x output elements x input channels / groups x kernel area, as
    torch.utils.flop_counter counts a convolution), however the tiles code calls the network's parts."""
    import torch.nn as nn

    def conv_flops(module: nn.Conv2d, _: Any, output: Any) -> None:
        kh, kw = module.kernel_size
        convs.append(2 * output.numel() * (module.in_channels // module.groups) * kh * kw)

    hooks = [net.register_forward_pre_hook(lambda _, args: shapes.append(tuple(args[0].shape)))]
    hooks += [m.register_forward_hook(conv_flops) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def export_worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Export spec's generator, built as `sr_worker` builds it (seed 0, the same random weights), to
    spec["onnx_path"] (models/inference/export.export_onnx: dynamic sizes, checked against torch)."""
    import torch

    from models import networks
    from models.inference.export import export_onnx, model_metadata

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="benchmark_") as tmp:
        torch.manual_seed(0)
        model, opt, shape = _sr_generator_as_test_py(spec, tmp)
        export_onnx(networks.unwrap(model.netG).cpu().float().eval(), spec["onnx_path"], model_metadata(opt))
    return {"onnx_path": spec["onnx_path"], "architecture": shape, "seconds": time.perf_counter() - start,
            "peak_rss_mib": peak_rss_mib()}
