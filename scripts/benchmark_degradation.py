"""Does `--degradation realesrgan` keep up with training? Samples/s of the data pipeline against the srgan step.

    python scripts/benchmark_degradation.py              # srgan's defaults (SRResNet, batch 16, 96 px)
    python scripts/benchmark_degradation.py --train_args "--netG rrdbnet --crop_size 256 --batch_size 12 --gpu_ids 0"
    python scripts/benchmark_degradation.py --json deg.json

Measured, one after the other in this process (so they do not compete for the cores):
  * the loader: batches of `train.py`'s own DatasetLoader (real HR files, random crops, the pipeline per sample)
    with the default --num_threads workers (4, at most the CPU count), after one warm-up batch that starts the
    workers; samples/s for realesrgan and for bicubic;
  * one sample in this process (--num_threads 0): milliseconds per sample of each degradation on one core;
  * the training step: `set_input` + `optimize_parameters` of --model srgan in its adversarial stage, on the
    loader's first batch; median of --steps steps after two warm-up steps. The perceptual loss is off
    (--lambda_perceptual 0, no VGG19 weights needed): a faster step is the harder target for the data to meet.
The data keeps up when the loader's samples/s are at least the step's images/s (batch size / step time). On a CPU
run the workers and the step share the cores, so the margin must be large; on a GPU the step leaves them free.
Output: one line per measurement on stderr, a summary on stdout and the report as JSON with --json.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

import models
from data import create_dataset
from options.train_options import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sr_train" / "T91"


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataroot", default=str(DEFAULT_DATA), help="HR training images")
    parser.add_argument("--train_args", default="", help="extra train.py options, e.g. \"--netG srvgg --batch_size 8\"")
    parser.add_argument("--batches", type=int, default=6, help="loader batches timed after the warm-up batch")
    parser.add_argument("--steps", type=int, default=5,
                        help="training steps timed after two warm-up steps (0: time the data pipeline only)")
    parser.add_argument("--json", default=None, help="write the report here")
    args = parser.parse_args(argv)
    if args.batches < 1 or args.steps < 0:
        parser.error("--batches must be >= 1 and --steps >= 0")
    return args


def options(args: argparse.Namespace, degradation: str, tmp: str, *extra: str) -> Any:
    return TrainOptions().parse(["--model", "srgan", "--dataroot", args.dataroot, "--checkpoints_dir", tmp,
                                 "--name", "bench", "--display_id", "0", "--lambda_perceptual", "0", "--seed", "0",
                                 "--gpu_ids", "-1", "--degradation", degradation, *shlex.split(args.train_args),
                                 *extra])


def loader_rate(opt: Any, batches: int) -> float:
    """Samples/s of the loader over `batches` batches after the first (the workers' start-up)."""
    loader = create_dataset(opt)
    loader.set_epoch(1)
    stream = iter(loader)
    next(stream)
    start, count = time.perf_counter(), 0
    for _ in range(batches):
        try:
            count += len(next(stream)["A"])
        except StopIteration:  # a small dataset: the next epoch
            loader.set_epoch(loader.sampler.epoch + 1)
            stream = iter(loader)
    return count / (time.perf_counter() - start)


def sample_ms(opt: Any, count: int = 8) -> float:
    """Milliseconds per sample made in this process with one torch thread, as a loader worker makes it (index
    order, after one warm-up sample)."""
    dataset = create_dataset(opt).dataset
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset[0]
        start = time.perf_counter()
        for i in range(count):
            dataset[(i + 1) % len(dataset)]
        return (time.perf_counter() - start) / count * 1000
    finally:
        torch.set_num_threads(threads)


def step_seconds(opt: Any, steps: int) -> float:
    loader = create_dataset(opt)
    loader.set_epoch(1)
    batch = next(iter(loader))
    torch.manual_seed(0)
    model = models.create_model(opt)
    model.setup(opt)
    model.set_epoch(opt.pretrain_epochs + 1)  # the adversarial stage: G and D both train
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        model.set_input(batch)
        model.optimize_parameters()
        sync()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    report: Dict[str, Any] = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench_deg_") as tmp:
        for degradation in ("realesrgan", "bicubic"):
            opt = options(args, degradation, tmp)
            report["workers"] = min(opt.num_threads, os.cpu_count() or 1)  # the loader's rule (data/loader.py)
            report[f"{degradation}_samples_per_s"] = loader_rate(opt, args.batches)
            report[f"{degradation}_ms_per_sample_one_core"] = sample_ms(options(args, degradation, tmp,
                                                                                "--num_threads", "0"))
            print(f"{degradation}: {report[f'{degradation}_samples_per_s']:.1f} samples/s with {report['workers']} "
                  f"workers, {report[f'{degradation}_ms_per_sample_one_core']:.1f} ms/sample on one core "
                  f"({opt.crop_size} px crops)", file=sys.stderr)
        report.update(batch_size=opt.batch_size, netG=opt.netG, crop_size=opt.crop_size, device=str(opt.device))
        if args.steps:
            step = step_seconds(options(args, "realesrgan", tmp, "--num_threads", "0"), args.steps)
            report.update(step_s=step, step_images_per_s=opt.batch_size / step)
            report["headroom"] = report["realesrgan_samples_per_s"] / report["step_images_per_s"]
            print(f"srgan step ({opt.netG}, batch {opt.batch_size}, {opt.crop_size} px, {opt.device}): "
                  f"{step * 1000:.0f} ms = {report['step_images_per_s']:.2f} images/s; realesrgan data: "
                  f"{report['realesrgan_samples_per_s']:.1f} samples/s = {report['headroom']:.1f}x what the step "
                  f"takes (load average {report['load_average']:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
