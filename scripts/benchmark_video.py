"""Frames per second of scripts/upscale_video.py's pipeline on this machine (docs/benchmarks.md, "Video").

    python scripts/benchmark_video.py --frames 6 --gpu_ids -1

A clip the script makes (854x480, a moving gradient with noise, lossless FFV1) goes through the same path as
upscale_video.py: util/video.transcode_frames decoding and encoding (libx264, crf 18) around the Upscaler of
each model. Models: realesr-animevideov3's architecture (SRVGGNetCompact, 16 convolutions) with random weights
in its publisher's layout (the time does not depend on the values), and the shipped gan-translate-x4. Reported:
frames/s over the whole clip and over the frames after the first (the first pays for allocation), output
megapixels/s, and the process's peak RSS after each model.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from models.inference import load_upscaler
from models.inference.loading import published_file_as_run
from models.inference.published_weights import expected_shapes
from options import upscale_options
from util.cli import run_cli
from util.download import SR_MODELS
from util.video import import_av, transcode_frames

SIZE = (854, 480)


def make_clip(path: Path, frames: int, fps: int = 25) -> None:
    av = import_av()
    w, h = SIZE
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "bgr0"
        for i in range(frames):
            rgb = (np.roll(ramp, 8 * i, axis=1) + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def random_published_file(path: Path, name: str) -> None:
    """Random weights in `name`'s publisher layout (wrapper key included), as its downloaded file is."""
    entry = SR_MODELS.get(name)
    state = {k: torch.randn(shape) * 0.02 for k, shape in expected_shapes(entry).items()}
    torch.save({entry.wrapper_key: state} if entry.wrapper_key else state, path)


def measure(upscaler, clip: Path, out: Path) -> Dict[str, float]:
    stamps: List[float] = []

    start = time.perf_counter()
    frames = transcode_frames(str(clip), str(out), upscaler.upscale_rgb8, upscaler.result_size(SIZE), "libx264",
                              18, on_frame=lambda: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else float("nan")
    output_mp = SIZE[0] * SIZE[1] * upscaler.scale ** 2 / 1e6
    return {"frames": frames, "seconds": round(total, 2), "frames_per_s": round(frames / total, 4),
            "frames_per_s_after_first": round(1 / steady, 4), "output_mp_per_s": round(output_mp / steady, 3),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "precision": upscaler.precision, "tile": upscaler.tile}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--gpu_ids", default="-1")
    p.add_argument("--checkpoints_dir", default="./checkpoints")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    flags = ["--gpu_ids", args.gpu_ids]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip480p.mkv"
        make_clip(clip, args.frames)
        weights = Path(tmp) / "realesr-animevideov3.pth"
        random_published_file(weights, "realesr-animevideov3")
        with published_file_as_run("realesr-animevideov3", str(weights)) as folder:
            upscaler = load_upscaler(upscale_options("realesr-animevideov3", folder, "latest", flags))
        results["realesr-animevideov3 architecture (srvgg, 16 conv), random weights"] = measure(
            upscaler, clip, Path(tmp) / "a.mp4")
        del upscaler
        upscaler = load_upscaler(upscale_options("gan-translate-x4", args.checkpoints_dir, "latest", flags))
        results["gan-translate-x4 (msrresnet, 8 blocks)"] = measure(upscaler, clip, Path(tmp) / "b.mp4")
    report = {"clip": f"{SIZE[0]}x{SIZE[1]}, {args.frames} frames, x4 -> {SIZE[0] * 4}x{SIZE[1] * 4}, libx264 crf 18",
              "torch_threads": torch.get_num_threads(), "results": results}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
