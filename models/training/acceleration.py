"""Speed settings of the networks: mixed precision (`--amp`), memory layout (`--channels_last`) and
`torch.compile` (`--compile`), resolved once from the options and applied by `BaseModel.setup`.

Why these defaults (measured with scripts/benchmark.py, figures in docs/benchmarks.md):
- `--amp auto` trains in bf16 where the hardware multiplies bf16 natively (CUDA GPUs of compute capability 8
  and later; CPUs with AVX512-BF16 or AMX), else fp32; test.py's auto is fp32 (the reference's exact images)
  except for models whose bf16 outputs score the same (`BaseModel.bf16_inference`: SRGAN, Set5/Set14 PSNR
  within 0.01 dB), where it halves time and memory. bf16 keeps fp32's exponent range, so it needs no loss
  scaling; fp16 (`--amp fp16`) does, and gets a GradScaler per optimiser.
- `--channels_last auto` in training follows the model's preference measured for the device and precision
  (`nhwc_preferred`): on CUDA and in bf16 on a CPU `BaseModel.prefers_channels_last` (reflection padding, the
  CycleGAN ResNet generator's, is slower in NHWC); in fp32 on a CPU `prefers_channels_last_cpu_fp32`, since
  oneDNN's fp32 NHWC kernels made pix2pix slower (AVX2 and AVX-512 alike) while srgan still gained.
  test.py's auto is contiguous (the reference's exact images)
  except for models whose NHWC outputs were measured equal up to float rounding
  (`BaseModel.channels_last_inference`: SRGAN, 1.2-2.4x faster on a CPU).
- `--compile` is off: its first steps compile for minutes, which only long runs win back.
- cuDNN autotuning is on where every input has one size (training crops), off where sizes vary
  (`BaseModel.fixed_input_size`): each new shape would re-time every convolution.

Autocast covers the networks' forward passes and the losses; backward runs outside it, as PyTorch
recommends. Network outputs are cast back to float32 by a forward hook, so losses, image pools, visuals and
saved images see one dtype whatever the precision.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, ContextManager, Iterator, Optional

import torch
import torch.nn as nn

from util.errors import OptionError

logger = logging.getLogger(__name__)

AMP_MODES = ("auto", "none", "bf16", "fp16")
CHANNELS_LAST_MODES = ("auto", "on", "off")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# oneDNN's CPU instruction sets, lowest first, as ONEDNN_MAX_CPU_ISA (or the older DNNL_MAX_CPU_ISA) names them.
# A cap below AVX512_CORE_BF16 makes oneDNN emulate bf16 even where the CPU multiplies it natively (AVX2 under
# the cap: reference kernels, hundreds of times slower on contiguous tensors), and is also how this code is
# measured as an AVX2-only CPU would run it (scripts/benchmark_layouts.sh).
ONEDNN_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
               "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX",
               "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2")
_ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def onednn_isa_cap() -> Optional[str]:
    """The instruction set oneDNN is capped at by its environment variable, upper-cased; None when uncapped
    (unset, 'ALL' or 'DEFAULT', or a name this table does not know, which oneDNN itself ignores)."""
    for name in _ISA_ENV:
        value = os.environ.get(name, "").strip().upper()
        if value in ONEDNN_ISAS:
            return value
        if value and value not in ("ALL", "DEFAULT"):
            logger.debug("%s=%s is not an instruction set this code knows; taken as no cap", name, value)
    return None


def onednn_allows(isa: str) -> bool:
    """Whether oneDNN may use `isa` (one of ONEDNN_ISAS) under this process's cap, if any."""
    cap = onednn_isa_cap()
    return cap is None or ONEDNN_ISAS.index(cap) >= ONEDNN_ISAS.index(isa)


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN multiplies bf16 natively here: the CPU has bf16 dot-product instructions (AVX512-BF16 or
    AMX) and no ONEDNN_MAX_CPU_ISA cap below AVX512_CORE_BF16 forbids them. Otherwise bf16 is emulated and
    slower than fp32. torch exposes the CPU check only privately, so a torch without it counts as 'no'.
    """
    if not onednn_allows("AVX512_CORE_BF16"):
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def cuda_has_native_bf16(device_index: int) -> bool:
    """bf16 tensor cores: compute capability 8.0 (Ampere) and later."""
    return torch.cuda.get_device_capability(device_index)[0] >= 8


def resolve_amp(requested: str, gpu_ids: tuple, training: bool = True, bf16_inference: bool = False) -> str:
    """'auto' -> 'bf16' or 'none' for the device; explicit choices are checked against it.

    Inference's 'auto' is fp32 unless the model's bf16 outputs were measured to score the same
    (`bf16_inference`): bf16 moves output pixels by a few levels, and people applying the reference's
    published generators expect its images exactly. `--amp bf16` at test time is the faster choice.
    """
    if requested not in AMP_MODES:
        raise OptionError(f"--amp {requested!r}: choose one of {', '.join(AMP_MODES)}")
    if requested == "auto" and not (training or bf16_inference):
        return "none"
    if requested == "auto":
        native = cuda_has_native_bf16(gpu_ids[0]) if gpu_ids else cpu_has_native_bf16()
        return "bf16" if native else "none"
    if requested == "bf16" and gpu_ids and not cuda_has_native_bf16(gpu_ids[0]):
        name = torch.cuda.get_device_name(gpu_ids[0])
        raise OptionError(f"--amp bf16: GPU {gpu_ids[0]} ({name}) has no bf16 support; use --amp fp16 or --amp none")
    if requested == "bf16" and not gpu_ids and not cpu_has_native_bf16():
        # Allowed (the results are right, and a user may want bf16's numerics), but oneDNN's reference kernels
        # are many times slower than fp32: pix2pix's NHWC step did not finish 4 steps in 4 minutes under AVX2.
        logger.warning("--amp bf16: this CPU has no native bf16 (AVX512-BF16 or AMX, or ONEDNN_MAX_CPU_ISA caps "
                       "it), so bf16 is emulated and much slower than fp32; --amp auto picks fp32 here")
    return requested


# Norm layers whose gradients PyTorch gets wrong on NHWC tensors (checked against float64 in
# tests/models/training/test_acceleration.py): with torch 2.15 on CPU, a batch of one image and InstanceNorm,
# the ResNet and SRResNet generators' weight gradients were off by more than their own size.
CHANNELS_LAST_UNSAFE_NORMS = ("instance",)


def nhwc_preferred(prefers: bool, prefers_cpu_fp32: bool, amp: str, gpu_ids: tuple) -> bool:
    """Whether training's `--channels_last auto` should be NHWC for a model on this device at the precision
    `--amp` resolved to: the model's measured preference for that (device, precision).

    `prefers` (`BaseModel.prefers_channels_last`) holds for CUDA and for a CPU in bf16; `prefers_cpu_fp32`
    (`BaseModel.prefers_channels_last_cpu_fp32`) for a CPU in fp32, where oneDNN's NHWC kernels often lose.
    Measured by scripts/benchmark_layouts.sh (docs/benchmarks.md, "Memory layout per CPU and precision",
    2-core EPYC Zen 4, 1 thread, s/step NCHW -> NHWC), natively and with oneDNN and ATen capped at AVX2:
    - CPU fp32: pix2pix loses in NHWC on both ISAs (native 1.38 -> 1.53, AVX2 1.98 -> 2.62), as the issue saw
      on an AVX2 EPYC (default step 1.17-1.30x the reference's with NHWC, 1.01x without); srgan gains (native
      16.8 -> 15.0, AVX2 9.23 -> 8.80, one run each; 4.32 -> 3.88 on a quiet machine, 2 threads).
    - CPU bf16 (native): pix2pix 1.35 -> 1.13, srgan 9.51 -> 8.79. Emulated bf16 (an AVX2 CPU, only with an
      explicit `--amp bf16`) is not measured: pix2pix's NHWC step had not done 4 steps in 4 minutes.
    - Quiet re-run (2 threads, nothing else running): pix2pix fp32 NCHW 0.732 / NHWC 0.905 s/step under AVX2,
      0.788 / 0.853 natively; srgan fp32 4.791 / 4.316 under AVX2, 4.785 / 4.333 natively; the same rule.
    - CPU fp16: not measured; the reference's layout.
    - CUDA: cuDNN's tensor-core kernels take NHWC; the model's preference.
    cycle_gan trains with InstanceNorm, which refuses NHWC whatever this says (`resolve_channels_last`).
    """
    if gpu_ids or amp == "bf16":
        return prefers
    return amp == "none" and prefers_cpu_fp32


def resolve_channels_last(requested: Optional[str], preferred: bool, training: bool = True,
                          norm: str = "batch", inference: bool = False) -> str:
    """'auto' -> the model's measured preference ('on'/'off') for training on this device at this precision
    (`preferred`, from `nhwc_preferred`); for inference 'on' only where the model says NHWC outputs were measured
    equal (`inference`: `BaseModel.channels_last_inference`, measured at fp32 on an AVX2 CPU), else 'off', whose
    outputs match the reference's bit for bit (NHWC kernels round differently); and 'off' with a norm layer
    whose NHWC gradients are wrong (asking for 'on' there is refused)."""
    if requested not in CHANNELS_LAST_MODES:
        raise OptionError(f"--channels_last {requested!r}: choose one of {', '.join(CHANNELS_LAST_MODES)}")
    unsafe = norm in CHANNELS_LAST_UNSAFE_NORMS
    if requested == "on" and unsafe:
        raise OptionError(f"--channels_last on with --norm {norm}: PyTorch computes wrong gradients for this norm "
                          f"on NHWC tensors (a batch of one image: errors larger than the gradients); use "
                          f"--channels_last off")
    if requested == "auto":
        return "on" if (preferred if training else inference) and not unsafe else "off"
    return requested


class Acceleration:
    """The resolved settings of one model on one device, and the operations that apply them."""

    def __init__(self, amp: str, channels_last: str, compile: bool, device: torch.device) -> None:
        if amp not in _DTYPES and amp != "none":
            raise ValueError(f"amp must be resolved to none, bf16 or fp16 first, got {amp!r}")
        self.device = device
        self.dtype: Optional[torch.dtype] = _DTYPES.get(amp)
        self.memory_format = torch.channels_last if channels_last == "on" else torch.contiguous_format
        self.compile = compile

    @property
    def needs_scaler(self) -> bool:
        return self.dtype is torch.float16

    def autotune(self, fixed_input_size: bool) -> None:
        """cuDNN autotuning (`torch.backends.cudnn.benchmark`) on a CUDA device exactly when the inputs have
        one size. It times every convolution algorithm for each new input shape and keeps the fastest: once
        for fixed crops, but for every new shape when sizes vary (--preprocess none, SR tiles and whole
        images), where the timing costs more than it wins. The switch is process-wide, so it is set either way
        (a model built earlier in the process must not leave it on)."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = fixed_input_size

    @staticmethod
    @contextlib.contextmanager
    def varying_input_sizes() -> Iterator[None]:
        """cuDNN autotuning off for work whose input sizes vary inside a run that tunes (SR validation images
        during training), and back as it was afterwards."""
        previous = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = previous

    def autocast(self) -> ContextManager[Any]:
        """Mixed precision for forward passes and losses (a no-op context at fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def full_precision(self) -> ContextManager[Any]:
        """float32 inside an autocast region (e.g. the WGAN-GP penalty's double backward)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    def grad_scaler(self) -> Optional[torch.amp.GradScaler]:
        """A loss scaler for fp16 (its gradients underflow without one); None otherwise."""
        return torch.amp.GradScaler(self.device.type) if self.needs_scaler else None

    def input(self, tensor: torch.Tensor) -> torch.Tensor:
        """A batch moved to the device in the networks' memory layout."""
        if tensor.dim() == 4:
            return tensor.to(self.device, memory_format=self.memory_format, non_blocking=True)
        return tensor.to(self.device, non_blocking=True)

    def prepare(self, net: nn.Module) -> None:
        """Layout, float32 outputs and compilation for one bare network (in place: state_dict keys unchanged)."""
        if self.memory_format is torch.channels_last:
            net.to(memory_format=torch.channels_last)
        if self.dtype is not None:
            net.register_forward_hook(_outputs_to_float32)
        if self.compile:
            net.compile()


def _outputs_to_float32(module: nn.Module, args: Any, output: Any) -> Any:
    if isinstance(output, torch.Tensor) and output.is_floating_point() and output.dtype != torch.float32:
        return output.float()
    return output
