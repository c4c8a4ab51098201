"""`--backend onnxruntime`: the generator run by onnxruntime, behind the interface the tiles code calls.

`OnnxGenerator` is a module without parameters whose forward takes and returns the toolkit's (N, 3, h, w) tensors
in [-1, 1], so `Upscaler`, `super_resolve` and `upscale_tiled` (tiles, alpha, 16 bit, --outscale) run unchanged;
inside, it maps to the file's own value range and runs the session.

Tiles keep their shapes (edge tiles clipped at the image's border), measured against windows of one fixed shape
(edge windows widened inward to tile + 2 * tile_pad) on this 2-core CPU, busy with other work: the fixed windows
computed 1.7 times the pixels of a 480x320 photo at tile 192 and cost more time and memory (msrresnet: 27.9 CPU-s
and 2.14 GB against 17.9 CPU-s and 1.65 GB with clipped tiles). What bounds memory over a whole photo is the
session's CPU arena, which keeps the largest buffers any tile needed: it is off (export.ort_session; a 1920x1080
photo x4 through SRResNet in tiles of 192 peaked at 3,049 MiB with it, 1,791 MiB without).

The file comes from a cache beside the run, `<checkpoints_dir>/<name>/export/<netG>-<key>.onnx`, keyed by the
sha256 of the weights (after --denoise's blend), so any run or zoo model works and a retrained one is exported
again; the first use exports and checks it (models/inference/export.py, 5-15 s). Threads: torch's count
(`onnx_threads`), so --num_threads and torchrun's shares hold for both backends.
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Mapping, Tuple

import torch
import torch.nn as nn

from util.errors import OptionError, StorageError

from .export import VALUE_RANGES, export_onnx, import_onnx, model_metadata, ort_session

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime")
# The --backend help of every front (test.py, upscale.py, serve.py).
BACKEND_HELP = ("what runs the network: torch, or onnxruntime (fp32; exported once into <checkpoints_dir>/<name>/export/, "
                "needs pip install -e '.[onnx]') (default: %(default)s)")


class OnnxGenerator(nn.Module):
    """An exported generator as a module: (N, 3, h, w) in [-1, 1] -> (N, 3, h * s, w * s) in [-1, 1], float32."""


    def __init__(self, path: str, threads: int = 0, providers: Tuple[str, ...] = ("CPUExecutionProvider",)) -> None:
        super().__init__()
        self.path = path
        self.session = ort_session(path, threads, providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.unit = meta.get("value_range") == VALUE_RANGES["unit"]
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, h, w) in [-1, 1]
        x = x.detach().float().cpu()
        if self.unit:
            x = (x + 1) * 0.5  # the file computes on [0, 1]
        out = torch.from_numpy(self.session.run(None, {self.input_name: x.contiguous().numpy()})[0])  # (N, 3, H, W)
        return out * 2 - 1 if self.unit else out


def weights_key(state: Mapping[str, torch.Tensor]) -> str:
    """The first 16 hex digits of the sha256 of the weights: each key, dtype, shape and the tensor's bytes."""
    digest = hashlib.sha256()
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def onnx_threads() -> int:
    """onnxruntime's intra-op threads: torch's, so both backends use the same cores (upscale.py's --num_threads
    sets them, and under torchrun each process gets its share of the machine's cores; util/sharding)."""
    return torch.get_num_threads()


def providers_for(device: torch.device) -> Tuple[str, ...]:
    """onnxruntime's execution providers for `device`: CUDA's where the installed onnxruntime has it."""
    if device.type == "cpu":
        return ("CPUExecutionProvider",)
    _, ort = import_onnx()
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    raise OptionError(f"--backend onnxruntime on {device}: this onnxruntime has no provider for it (it has "
                      f"{', '.join(ort.get_available_providers())}); use --gpu_ids -1, --backend torch, or install "
                      f"onnxruntime-gpu")


def onnxruntime_generator(net: nn.Module, opt: Any, state: Mapping[str, torch.Tensor]) -> OnnxGenerator:
    """`net` (the generator of `opt`, holding `state`) as an OnnxGenerator, exported into the run's cache first
    when the cache has no file for these weights."""
    import_onnx()  # a missing package: one line before any work
    folder = os.path.join(opt.checkpoints_dir, opt.name, "export")
    path = os.path.join(folder, f"{opt.netG}-{weights_key(state)}.onnx")
    if not os.path.isfile(path):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise StorageError(f"--backend onnxruntime: cannot create the export cache {folder} ({e.strerror or e}); "
                               f"make it writable or use --backend torch") from None
        logger.info("exporting %s to ONNX for onnxruntime (once for these weights): %s", opt.name, path)
        export_onnx(net, path, model_metadata(opt))
    return OnnxGenerator(path, onnx_threads(), providers_for(opt.device))
