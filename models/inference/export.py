"""An upscaling generator written for use outside the toolkit: ONNX for onnxruntime, safetensors for spandrel.

ONNX goes through `torch.onnx.export(..., dynamo=True)` (torch.export, PyTorch's default exporter since 2.9), not
the TorchScript one (dynamo=False). Both exported srresnet, msrresnet, rrdbnet and srvgg with outputs within
4e-7 of PyTorch's from 1x1 to 40x40; for msrresnet both wrote the same operators (37 Conv, pixel_shuffle as 2
DepthToSpace, 1 Resize; TorchScript's adds 34 Identity and 5 Constant nodes). TorchScript's is deprecated and
warns on every export (its tracer turns a shape test into a constant); torch.export checks the graph for every
height and width, so one file serves any image. It takes about twice as long (5-15 s here), once per model.

The file computes on the network's own value range: RGB in [0, 1] for the published architectures (rrdbnet,
srvgg, msrresnet: the toolkit's [-1, 1] hooks are left out, models/archs/value_range.py), [-1, 1] for srresnet.
Its metadata (and a JSON beside it) say the range, the scale and the layout, so a deployment need not guess.
Every export is checked before it takes its final name: onnxruntime's output equals PyTorch's forward within
FP32_TOLERANCE (FP16_TOLERANCE for --fp16) on CHECK_SIZES, an odd size and a 1-pixel-wide strip among them. A
failure is one line (ExportError, exit 2) and leaves no file under the final name.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from util.errors import ExportError
from util.fileio import atomic_write, atomic_write_text

from ..archs.registry import GENERATORS
from ..archs.value_range import own_range_copy
from .published_weights import to_publisher_state_dict

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install -e '.[onnx]' (or pip install onnx onnxruntime onnxscript)"
# (H, W) of the inputs every export is checked on: an odd size, a 1-pixel-wide strip and an even one.
CHECK_SIZES: Tuple[Tuple[int, int], ...] = ((17, 23), (29, 1), (32, 48))
FP32_TOLERANCE = 1e-4
# fp16 keeps 11 bits of mantissa: half a level of 8 bits (1/510) is what the check asks of an --fp16 file.
FP16_TOLERANCE = 1 / 510
VALUE_RANGES = {"unit": "[0, 1]", "toolkit": "[-1, 1]"}


def import_onnx() -> Tuple[Any, Any]:
    """The `onnx` and `onnxruntime` modules, or one line with the install command."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise ExportError(f"ONNX export and --backend onnxruntime need the {e.name} package, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return onnx, onnxruntime


def value_range(netG: str) -> str:
    """'[0, 1]' or '[-1, 1]': the range generator `netG` computes on, as its registration says."""
    return VALUE_RANGES[GENERATORS.meta(netG).get("value_range", "toolkit")]


def model_metadata(opt: Any) -> Dict[str, str]:
    """What a deployment needs to know about the generator of `opt` (`options.upscale_options`), as strings."""
    return {"name": opt.name, "netG": opt.netG, "scale": str(opt.scale), "value_range": value_range(opt.netG),
            "input": "(N, 3, H, W) RGB, any H and W", "output": f"(N, 3, H * {opt.scale}, W * {opt.scale}) RGB",
            "producer": "gan-translate scripts/export.py"}


def ort_session(path: str, threads: int = 0, providers: Tuple[str, ...] = ("CPUExecutionProvider",)) -> Any:
    """An onnxruntime session on `path`, sequential, with `threads` intra-op threads (0: onnxruntime's choice) and
    no CPU memory arena (bounded memory over the tiles of a photo)."""
    _, ort = import_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are not the user's
    # Without its CPU arena onnxruntime returns each tile's buffers instead of keeping the largest it has seen:
    # a 1920x1080 photo x4 through SRResNet in 192-pixel tiles peaked at 3,049 MiB with it and 1,791 MiB without
    # (scripts/tile_memory.py, docs/benchmarks.md).
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(path, options, providers=list(providers))


def export_difference(path: str, bare: nn.Module, dtype: torch.dtype, unit: bool) -> Tuple[float, Tuple[int, int]]:
    """The largest |onnxruntime - PyTorch| over CHECK_SIZES, and the size it was found at; `bare` computes in
    float32 on its own range ([0, 1] where `unit`, else [-1, 1]), the file in `dtype`."""
    session = ort_session(path)
    generator = torch.Generator().manual_seed(0)
    worst, where = 0.0, CHECK_SIZES[0]
    for h, w in CHECK_SIZES:
        x = torch.rand((1, 3, h, w), generator=generator)  # (1, 3, h, w) in [0, 1]
        if not unit:
            x = x * 2 - 1
        with torch.no_grad():
            expected = bare(x).numpy()  # (1, 3, h * s, w * s)
        got = session.run(None, {"input": x.to(dtype).numpy()})[0].astype(np.float32)
        if got.shape != expected.shape:
            return float("inf"), (h, w)
        difference = float(np.abs(got - expected).max())
        if not difference <= worst:  # NaN counts as the worst
            worst, where = difference, (h, w)
    return worst, where


def _onnx_proto(bare: nn.Module, dtype: torch.dtype, opset: Optional[int], metadata: Mapping[str, str]) -> Any:
    """The ModelProto of `bare` for inputs of any height and width, with `metadata` in its metadata_props."""
    example = torch.rand((1, 3, 24, 31), dtype=dtype)  # (1, 3, h, w); odd and unequal, so neither specialises
    height, width = torch.export.Dim("height", min=1), torch.export.Dim("width", min=1)
    quiet = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]  # their passes log at INFO
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.WARNING)
    try:
        program = torch.onnx.export(bare, (example,), None, dynamo=True, input_names=["input"],
                                    output_names=["output"], dynamic_shapes=({2: height, 3: width},),
                                    opset_version=opset, verbose=False)
    except Exception as e:  # torch.export's and the ONNX translator's errors have no common base class
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"{metadata['netG']} cannot be exported to ONNX: {reason}") from e
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto


def export_onnx(net: nn.Module, path: str, metadata: Mapping[str, str], opset: Optional[int] = None,
                fp16: bool = False) -> Dict[str, str]:
    """Write generator `net` (as the toolkit builds it, on [-1, 1]) to `path` as ONNX on its own value range
    (metadata['value_range']), fp16 weights and inputs with `fp16`, checked (module docstring) before it takes the
    name; a JSON of the metadata beside it. Returns the metadata written."""
    onnx, _ = import_onnx()
    dtype = torch.float16 if fp16 else torch.float32
    bare = own_range_copy(net).cpu().float().eval()
    meta = {**metadata, "dtype": "float16" if fp16 else "float32", "exporter": f"torch {torch.__version__} dynamo"}
    proto = _onnx_proto(copy.deepcopy(bare).half() if fp16 else bare, dtype, opset, meta)
    meta["opset"] = str(next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")))
    tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as work:
        candidate = os.path.join(work, "model.onnx")
        onnx.save(proto, candidate)
        difference, (h, w) = export_difference(candidate, bare, dtype,
                                                  meta["value_range"] == VALUE_RANGES["unit"])
        if not difference <= tolerance:
            raise ExportError(f"the ONNX export of {meta['netG']} does not compute what the network does: onnxruntime "
                              f"differs from PyTorch by {difference:.3g} (limit {tolerance:g}) on a {w}x{h} input; "
                              f"nothing was written to {path}")
        with open(candidate, "rb") as fh:
            data = fh.read()
    atomic_write(path, lambda out: out.write(data))
    meta["max_difference"] = f"{difference:.3g}"
    atomic_write_text(os.path.splitext(path)[0] + ".json", json.dumps(meta, indent=2) + "\n")
    logger.info("%s: %s x%s ONNX (opset %s, %s), onnxruntime within %.2g of PyTorch", path, meta["netG"],
                meta["scale"], meta["opset"], meta["dtype"], difference)
    return meta


def export_safetensors(net: nn.Module, path: str, metadata: Mapping[str, str]) -> Dict[str, str]:
    """Write generator `net`'s weights to `path` as safetensors in its publisher's key layout (BasicSR's for
    rrdbnet, srvgg and msrresnet: what BasicSR, Real-ESRGAN and spandrel read), the toolkit's own for a generator
    without one (srresnet, said in a warning and in the metadata); a JSON of the metadata beside it."""
    try:
        from safetensors.torch import save
    except ImportError:
        raise ExportError("--format safetensors needs the safetensors package, which is not installed: pip install "
                          "-e '.[safetensors]' (or pip install safetensors)") from None

    state, layout = to_publisher_state_dict(net.state_dict(), metadata["netG"])  # the hooks hold no state
    if layout == "toolkit":
        logger.warning("%s has no publisher's layout: %s keeps the toolkit's key names, which other loaders "
                       "(spandrel, chaiNNer) do not know", metadata["netG"], path)
    meta = {**metadata, "key_layout": layout, "dtype": "float32"}
    tensors = {key: value.detach().float().contiguous() if value.is_floating_point() else value.contiguous()
               for key, value in state.items()}
    data = save(tensors, metadata=meta)
    atomic_write(path, lambda out: out.write(data))
    atomic_write_text(os.path.splitext(path)[0] + ".json", json.dumps(meta, indent=2) + "\n")
    logger.info("%s: %s x%s weights in %s's key layout, %d tensors", path, meta["netG"], meta["scale"], layout,
                len(tensors))
    return meta
