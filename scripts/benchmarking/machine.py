"""The machine and the measuring process: memory high-water marks, CPU model, load.

Timings on a shared machine are only as good as the machine was quiet, so the load and the share of CPU time
other work used are recorded before every measurement, and the machine's description goes into the report.
"""
from __future__ import annotations

import datetime
import os
import platform
import resource
import sys
import time
from typing import Any, Dict, Optional, Tuple


def proc_status_mib(field: str, pid: str = "self") -> Optional[float]:
    """A `VmXXX:` line of /proc/<pid>/status in MiB (Linux), None where there is no such file (or process)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
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
    hwm = proc_status_mib("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mib() -> Optional[float]:
    """RSS right now, to show how much of the peak the interpreter and torch take by themselves."""
    return proc_status_mib("VmRSS")


def cuda_max_allocated_mib(device: Any) -> Optional[float]:
    """The CUDA caching allocator's high-water mark on `device` in MiB; None on a CPU."""
    import torch

    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


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


def _cpu_jiffies() -> Optional[Tuple[int, int]]:
    """(all, idle) CPU time of the machine since boot, in clock ticks summed over the cores (Linux /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]), idle  # user..steal; guest time is already inside user


def cpu_busy_fraction(interval: float = 0.5) -> Optional[float]:
    """Share of the machine's CPU time spent on other work during `interval` seconds (Linux /proc/stat), taken
    while this process sleeps and no measurement runs. Unlike the load average, which lags by a minute, it
    says whether something else is using the cores right now."""
    first = _cpu_jiffies()
    time.sleep(interval)
    second = _cpu_jiffies()
    if first is None or second is None or second[0] <= first[0]:
        return None
    return 1 - (second[1] - first[1]) / (second[0] - first[0])


CpuMark = Tuple[Tuple[int, int], float]


def cpu_mark() -> Optional[CpuMark]:
    """The machine's CPU ticks and the CPU seconds of this process's finished children, now: taken before a
    worker runs, `others_busy_since` turns it into the share of the machine other work used meanwhile."""
    jiffies = _cpu_jiffies()
    if jiffies is None:
        return None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return jiffies, children.ru_utime + children.ru_stime


def others_busy_since(mark: Optional[CpuMark]) -> Optional[float]:
    """Share of the machine's CPU time that processes other than the workers used since `mark` (call it right
    after a worker has been waited for): its busy time less the workers' own CPU time. A measurement taken with
    other work on the cores is slower than the machine alone would be: its time is an upper bound."""
    now = cpu_mark()
    if mark is None or now is None or now[0][0] <= mark[0][0]:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = (now[0][0] - mark[0][0]) / ticks  # CPU seconds the machine had, all cores
    busy = total - (now[0][1] - mark[0][1]) / ticks
    return min(max(busy - (now[1] - mark[1]), 0.0) / total, 1.0)


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
