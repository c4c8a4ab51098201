"""The baseline in the same run: `scripts/upscale.py` itself, as a user runs it, on the same photos.

One run on a folder holding the 512x384 photo, a copy of it, then every load photo (in that order: the names
are numbered), with --verbose, which logs a line as each result is written; the time of each line is taken as
it arrives. So the start-up (Python, torch, the model) and the first, cold image are left out:
    warm single latency = t(copy written) - t(first written)
    images/s            = photos / (t(last written) - t(copy written))
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

from PIL import Image

from .service import ROOT


def _written_times(inputs: Sequence[Path], folder: Path, upscale_args: Sequence[str], timeout: float) -> List[float]:
    """When each result of `upscale.py -i <folder with inputs> --verbose UPSCALE_ARGS` was written (monotonic)."""
    source = folder / "in"
    source.mkdir(parents=True)
    for i, path in enumerate(inputs):  # numbered: upscale.py takes them in this order
        os.symlink(path.resolve(), source / f"{i:03d}_{path.name}")
    command = [sys.executable, str(ROOT / "scripts" / "upscale.py"), "-i", str(source), "-o", str(folder / "out"),
               "--verbose", *upscale_args]
    times: List[float] = []
    deadline = time.monotonic() + timeout
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as run:
        assert run.stdout is not None
        tail: List[str] = []
        for line in run.stdout:  # logging flushes each record, so a line arrives as it is written
            if " -> " in line and str(folder / "out") in line:
                times.append(time.monotonic())
            tail = (tail + [line.strip()])[-3:]
            if time.monotonic() > deadline:
                run.kill()
                raise RuntimeError(f"upscale.py took longer than {timeout:.0f} s")
        code = run.wait()
    if code != 0 or len(times) != len(inputs):
        raise RuntimeError(f"upscale.py ended with {code} after {len(times)} of {len(inputs)} results: {tail}")
    return times


def upscale_py_baseline(photos: Sequence[Path], single: Path, scale: int, folder: Path,
                        upscale_args: Sequence[str], timeout: float) -> Dict[str, Any]:
    """upscale.py's images/s and output MP/s on `photos` (each once), and its warm latency for `single`."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "single_copy.png"
    shutil.copyfile(single, copy)
    started = time.monotonic()
    times = _written_times([single, copy, *photos], folder / "run", upscale_args, timeout)
    work = max(times[-1] - times[1], 1e-9)
    output_pixels = 0
    for path in photos:
        with Image.open(path) as img:
            output_pixels += img.width * img.height * scale * scale
    return {"start_and_first_s": times[0] - started, "warm_single_s": times[1] - times[0],
            "images_per_s": len(photos) / work, "output_mp_per_s": output_pixels / 1e6 / work,
            "photos": len(photos)}
