"""What the benchmark measures: the models, settings and speed configs of training, the SR photo sizes, and
where the code lives.

These tables are the one place a measurement's flags come from: the CLI takes its choices from them, the plan
builds every worker's flags from them, and the report cites them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[2]  # the tree this benchmark belongs to: the `after` code
SCRIPT = ROOT / "scripts" / "benchmark.py"  # what a worker process runs (`--worker SPEC`)


class BenchmarkError(Exception):
    """A user error of the benchmark itself (bad revision, no CUDA): one line on stderr, exit code 2."""


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

# SR: every upscaling generator of the registry that makes x4 (`inputs.sr_generators`), in the srgan model as
# test.py builds it, with its architecture's default options (srresnet and msrresnet 16 blocks, srvgg 32
# convolutions, rrdbnet 23 blocks) and test.py's default tile and context unless --sr-tile / --sr-tile-pad say.
# The photo of setting `default` is 1920x1080; `small` is the same photo downscaled by 4 (480x270).
SR_MODEL = "srgan"
SR_SCALE = 4
SR_PHOTO_SIZE = (1920, 1080)
# `upload` is the size users upload most, 480x320: the photo's top-left 480x320 (one real photo of the mosaic).
SR_SETTINGS: Dict[str, Dict[str, Any]] = {
    "default": {"downscale": 1, "tile": None},  # None: test.py's default --tile
    "small": {"downscale": 4, "tile": 128},  # 480x270: a 256 tile would hold most of it
    "upload": {"crop": (480, 320), "tile": None},
}
SETTINGS: Tuple[str, ...] = tuple(dict.fromkeys([*SETTING_FLAGS, *SR_SETTINGS]))  # --settings' choices
# What runs the SR network (--sr-backends): torch, or onnxruntime on a file exported beforehand (fp32, CPU).
SR_BACKENDS: Tuple[str, ...] = ("torch", "onnxruntime")
ONNX_CONFIG = "onnxruntime"  # the config name of onnxruntime's SR measurements
ONNX_FLAGS: Tuple[str, ...] = ("--backend", "onnxruntime")
SR_MODES = ("tiled", "whole")
# Whole-image inference holds about two float32 maps of 64 channels (--ngf) x the output pixels at the last x2
# stage (SRResNet: the 256-channel conv output at half the output size and its pixel-shuffled copy; RRDBNet and
# MSRResNet hold as much at the output size): 2 x 64 x output pixels x 4 bytes. That is ~16 GiB for a 1920x1080
# photo, too much for a CPU machine, so whole mode runs only where the estimate fits.
SR_WHOLE_CHANNELS = 64
SR_WHOLE_CPU_LIMIT_GIB = 4.0
SR_WHOLE_CUDA_FRACTION = 0.5
# The targets of tiled 1920x1080 x4 on a CPU (issue 12): peak RSS, and the FLOP/s of the convolutions actually
# computed (tile overlap included, so the overlap is judged separately) as a share of the dtype's matmul peak.
SR_RSS_TARGET_MIB = 2048.0
SR_MFU_TARGET = 0.5
BUSY_WARNING = 0.25  # share of CPU time used by other work between measurements above which the report warns


def config_list(device: str, names: Optional[Sequence[str]]) -> List[str]:
    """The configs to measure: those asked for, else the device's defaults."""
    return list(names) if names else list(DEFAULT_CONFIGS[device])


def whole_image_skip(size: Sequence[int], device: str) -> Optional[str]:
    """Why whole-image SR of this size is not run on this device, or None when it fits."""
    estimate_gib = 2 * SR_WHOLE_CHANNELS * (size[0] * size[1] * SR_SCALE**2) * 4 / 2**30
    if device == "cuda":
        import torch

        limit = torch.cuda.get_device_properties(0).total_memory / 2**30 * SR_WHOLE_CUDA_FRACTION
    else:
        limit = SR_WHOLE_CPU_LIMIT_GIB
    if estimate_gib <= limit:
        return None
    return (f"whole-image x{SR_SCALE} of {size[0]}x{size[1]} needs about {estimate_gib:.0f} GiB ({device} limit "
            f"{limit:.0f} GiB); measured tiled only")
