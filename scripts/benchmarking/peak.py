"""The two sides of the MFU (model-FLOPs utilisation): the FLOPs of one training step and the machine's peak.

The peak FLOP/s is measured, not taken from a data sheet: the median time of square matmuls in the dtype the
config computes in, in the same process on the same device right after the training steps, so the MFU compares
the model with what this machine actually delivers now. FLOPs are counted by torch.utils.flop_counter around
one extra step: the matmul and convolution FLOPs of the forward and backward passes (the optimiser's
element-wise work is not counted), the usual definition of model FLOPs.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

AMP_DTYPES: Dict[Optional[str], str] = {"bf16": "bfloat16", "fp16": "float16", "none": "float32", None: "float32"}


def device_sync(device: Any) -> Callable[[], None]:
    """A function that waits for the device's queued work: CUDA runs asynchronously, the CPU does not."""
    import torch

    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def count_flops(step: Callable[[], None]) -> Optional[int]:
    """Matmul/convolution FLOPs of one call of `step` (forward and backward); None when none were seen
    (compiled code runs its kernels out of the counter's sight)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    total = int(counter.get_total_flops())
    return total if total > 0 else None


def forward_flops(net: Any, shapes: Mapping[Tuple[int, ...], int]) -> int:
    """Matmul/convolution FLOPs of `net`'s forward passes on inputs of the given shapes, each as many times as
    `shapes` says (e.g. a collections.Counter of the tile shapes one tiled run fed it).

    Counted on a copy on the meta device, which computes shapes and no values: free whatever the input size,
    and without touching the measured network or the process's memory peak.
    """
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    twin = copy.deepcopy(net).to("meta")
    total = 0
    for shape, count in shapes.items():
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            twin(torch.empty(shape, device="meta"))
        total += count * int(counter.get_total_flops())
    return total


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


def peak_settings(spec: Dict[str, Any], device: Any) -> Dict[str, Any]:
    """Size and repetitions of the peak matmul: bigger and more on a GPU, where one matmul takes milliseconds."""
    if device.type == "cuda":
        return {"n_max": spec.get("peak_size") or 8192, "reps": 50, "warmup": 2, "budget_s": 30.0,
                "rep_limit_s": 1.0}
    return {"n_max": spec.get("peak_size") or 2048, "reps": 10, "warmup": 2, "budget_s": 10.0, "rep_limit_s": 1.0}


def compute_dtype(amp: Optional[str]) -> Tuple[str, Optional[str]]:
    """The dtype the config computes in, for the matmul peak, and a note when it cannot be known."""
    if amp in AMP_DTYPES:
        return AMP_DTYPES[amp], None
    return "float32", (f"amp {amp!r} is not resolved in the options: the peak is measured in float32, so the "
                       f"MFU is too high if the model computes in a 16-bit type")
