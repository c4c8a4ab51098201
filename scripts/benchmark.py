"""The benchmark suite: training speed, memory and model-FLOPs utilisation of pix2pix, cycle_gan and srgan,
and SR x4 inference speed and memory on a photo.

    python scripts/benchmark.py                                           # everything, this machine's defaults
    python scripts/benchmark.py --models pix2pix,srgan --settings small --configs fp32 --steps 3 --no-sr
    python scripts/benchmark.py --baseline-rev bead187 --repeats 2 --json bench.json --markdown docs/benchmarks.md
    python scripts/benchmark.py --no-train --sr                           # only SR x4 of a 1920x1080 photo

Training (per model, setting and config): median step time of `--steps` steps after `--warmup` warm-up steps
(p10/p90 too), images/s = batch size / median, peak RSS, CUDA max allocated, the FLOPs of one step and the MFU
(model-FLOPs utilisation) = FLOPs / median step time / peak FLOP/s. A step is what train.py does per batch:
`set_input` + `optimize_parameters` on a synthetic batch (no data loading), followed by a CUDA synchronise.

SR x4 inference: every upscaling generator of the registry (srresnet, msrresnet, srvgg, rrdbnet: a new one
needs no change here) at its registered default size, with random weights (the time does not depend on them),
upscales a 1920x1080 photo (setting `default`, tiled as test.py does, with test.py's tile and context for that
generator), a 480x270 one (setting `small`, tiled and whole) and a 480x320 one (setting `upload`), through
torch and, side by side in the same run, onnxruntime (`--backend onnxruntime`, config `onnxruntime`). Reported: seconds, output MP/s (output pixels,
i.e. 16 x the input pixels, per second, in millions), peak RSS, the convolution FLOPs useful (one pass over the
whole image) and computed (the tiles with their context: the overlap), and the MFU of both against the matmul
peak of the dtype the network computed in, measured in the same process.

Why it is built this way:
  * Every measurement runs in a fresh process (`--worker SPEC`, this same file): peak RSS is a per-process
    high-water mark, so only a process of its own gives each measurement its own peak; a crash, a compile
    cache or a global switch (cuDNN benchmark, matmul precision) cannot leak into the next measurement either.
  * `--baseline-rev REV` measures the code before a change side by side with the code now, in one run and
    interleaved (before, after, before, after with --repeats 2), so both see the same machine conditions. The
    old code is checked out into a temporary git worktree and measured by this very code, which therefore uses
    only APIs that exist in both trees (TrainOptions().parse, create_model, setup, set_input,
    optimize_parameters, set_epoch, the model's `upscales`, netG, networks.define_G, models.inference.super_resolve
    or upscale_tiled, named upscale in older trees).
    What differs between models comes from what each model declares (`upscales`, options such as
    --vgg_weights), not from its name, so a new model needs no change here beyond its `small` flags.
  * The peak FLOP/s of the MFU is measured, not taken from a data sheet: the median time of square matmuls in
    the dtype the config computes in, in the same process on the same device right after the training steps,
    so the MFU compares the model with what this machine actually delivers now.
  * FLOPs are counted by torch.utils.flop_counter.FlopCounterMode around one extra step: the matmul and
    convolution FLOPs of the forward and backward passes (the optimiser's element-wise work is not counted),
    the usual definition of model FLOPs. Under torch.compile the counter cannot see inside compiled kernels;
    a compiled config takes the count of an eager config of the same model and setting where one was measured
    (the model's FLOPs are the same), and the table says so.
  * A perceptual loss (srgan's default) needs VGG19 ImageNet weights. Where the torch hub cache lacks them (no
    internet), randomly initialised VGG19 weights of the same shapes are used: the time is the same, the loss
    is meaningless, and the report says "random (timing only)".

Output: the JSON report (to `--json FILE`, or stdout) and a markdown section naming the machine (to `--markdown
FILE`, or stderr). Progress goes to stderr, one line per measurement. Exit code 0 when every measurement ran,
1 when some failed (each failure is reported with the worker's stderr tail, the others still run, and the JSON
carries an "error" for it), 2 for bad arguments.

This file is the command line; measuring, worker processes, statistics and reports are the package beside
it, scripts/benchmarking (its __init__ lists the modules).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from benchmarking import BenchmarkError, markdown_report, measure, plan, report_notes
from benchmarking import summarize_sr, summarize_train, worker_main
from benchmarking.cases import (COMPILE_WARMUP, CONFIG_FLAGS, DEFAULT_CONFIGS, DEFAULT_STEPS,
                                MODEL_NAMES, ROOT, SETTINGS, SR_BACKENDS, SR_MODES, SR_PHOTO_SIZE, SR_SCALE,
                                SR_SETTINGS, config_list)
from benchmarking.inputs import sr_generators, sr_images, takes_vgg_weights, vgg_weights
from benchmarking.machine import machine_info
from benchmarking.report import SCHEMA_VERSION, failures_of, machine_line, write_text
from benchmarking.revisions import baseline_worktree, tree_info

logger = logging.getLogger("benchmark")


def comma_list(allowed: Sequence[str], what: str) -> Callable[[str], List[str]]:
    """argparse type for `a,b,c` drawn from `allowed`; an unknown name is a usage error (exit code 2)."""
    def parse(text: str) -> List[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(map(repr, unknown)) or repr(text)} "
                                             f"(choose from {', '.join(allowed)})")
        return list(dict.fromkeys(names))
    return parse


def comma_list_any(text: str) -> List[str]:
    """argparse type for `a,b,c` whose allowed names are known only once the toolkit is imported (checked in
    `main`)."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise argparse.ArgumentTypeError(f"no names in {text!r}")
    return names


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """The run's flags; a bad name or value is a usage error (exit code 2)."""
    summary = __doc__.split("\n\n", 1)[0].replace("\n", " ")
    parser = argparse.ArgumentParser(prog="benchmark.py", description=summary)
    parser.add_argument("--models", type=comma_list(MODEL_NAMES, "model"), default=list(MODEL_NAMES),
                        help=f"comma-separated models (default: {','.join(MODEL_NAMES)})")
    parser.add_argument("--settings", type=comma_list(SETTINGS, "setting"), default=list(SETTINGS),
                        help="comma-separated settings: default (each model's own defaults; for SR a 1920x1080 "
                             "photo), small (narrow networks on small crops; for SR a 480x270 photo) and upload "
                             "(SR only: a 480x320 photo, the size users upload most); default: all")
    parser.add_argument("--configs", type=comma_list(tuple(CONFIG_FLAGS), "config"), default=None,
                        help="comma-separated speed configs (default: "
                             + "; ".join(f"{d}: {','.join(c)}" for d, c in DEFAULT_CONFIGS.items()) + "); "
                             + "; ".join(f"{n} = {' '.join(f) or 'no flags'}" for n, f in CONFIG_FLAGS.items()))
    parser.add_argument("--baseline-rev", default=None,
                        help="also measure this git revision (config 'before', no config flags), interleaved")
    parser.add_argument("--repeats", type=positive_int, default=1,
                        help="measure everything this many times (default: 1)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"timed training steps (default: {DEFAULT_STEPS['cpu']} on CPU, "
                             f"{DEFAULT_STEPS['cuda']} on CUDA)")
    parser.add_argument("--warmup", type=non_negative_int, default=3,
                        help=f"untimed warm-up steps (default: 3; at least {COMPILE_WARMUP} under --compile)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda where available, else cpu")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads in each measurement (default: torch's default)")
    parser.add_argument("--train", action=argparse.BooleanOptionalAction, default=True,
                        help="measure training steps (default: on)")
    parser.add_argument("--sr", action=argparse.BooleanOptionalAction, default=True,
                        help=f"measure SR x{SR_SCALE} inference, tiled and whole (default: on)")
    parser.add_argument("--sr-image", default=None,
                        help=f"LR photo for SR (default: a {SR_PHOTO_SIZE[0]}x{SR_PHOTO_SIZE[1]} mosaic made at run "
                             f"time); setting small uses it downscaled by 4")
    parser.add_argument("--sr-nets", type=comma_list_any, default=None,
                        help="comma-separated generators for SR (default: every registered one that upscales "
                             f"x{SR_SCALE})")
    parser.add_argument("--sr-backends", type=comma_list(SR_BACKENDS, "backend"), default=None,
                        help="comma-separated: what runs the SR network, torch and/or onnxruntime (its measurements "
                             "are the config 'onnxruntime', fp32; default: both where onnxruntime is installed, "
                             "else torch)")
    parser.add_argument("--sr-modes", type=comma_list(SR_MODES, "mode"), default=list(SR_MODES),
                        help="comma-separated SR modes: tiled (test.py's tiles) and whole (one pass, where it "
                             "fits); default: both")
    parser.add_argument("--sr-tile", type=positive_int, default=None,
                        help="tile size of tiled SR (default: " + ", ".join(
                            f"{s} {v['tile']}" if v["tile"] else f"{s} test.py's --tile"
                            for s, v in SR_SETTINGS.items()) + ")")
    parser.add_argument("--sr-tile-pad", type=non_negative_int, default=None,
                        help="tile context in LR pixels (default: test.py's --tile_pad for the generator: its "
                             "receptive field, at most 40)")
    parser.add_argument("--sr-runs", type=positive_int, default=None,
                        help="timed SR runs per measurement (default: 1 on CPU, 3 on CUDA)")
    parser.add_argument("--peak-size", type=positive_int, default=None,
                        help="largest n of the n x n peak matmul (default: 2048 on CPU, 8192 on CUDA)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds one measurement may take (default: 3600)")
    parser.add_argument("--json", default=None, help="write the JSON report here (default: stdout)")
    parser.add_argument("--markdown", default=None, help="write the markdown section here (default: stderr)")
    args = parser.parse_args(argv)
    if not args.train and not args.sr:
        parser.error("nothing to measure: --no-train and --no-sr together")
    if args.sr_backends is None:
        import importlib.util

        args.sr_backends = ["torch", *(["onnxruntime"] if importlib.util.find_spec("onnxruntime") else [])]
    if args.sr_image is not None and not os.path.isfile(args.sr_image):
        parser.error(f"--sr-image {args.sr_image}: no such file")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """A benchmark run: prepare the inputs, run every measurement in its own worker, write the reports."""
    args = parse_args(argv)
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda: CUDA is not available on this machine")
    if args.sr:
        known = sr_generators()
        unknown = [n for n in args.sr_nets or () if n not in known]
        if unknown:
            raise BenchmarkError(f"--sr-nets: unknown generator {', '.join(map(repr, unknown))} (choose from "
                                 f"{', '.join(known)})")
        args.sr_nets = args.sr_nets or list(known)
    machine = machine_info(args.device)
    logger.info("%s", machine_line(machine))
    trees: Dict[str, Path] = {"after": ROOT}
    tree_meta: Dict[str, Any] = {"after": tree_info(ROOT)}
    with contextlib.ExitStack() as stack:
        if args.baseline_rev:
            trees["before"] = stack.enter_context(baseline_worktree(args.baseline_rev))
            tree_meta["before"] = {**tree_info(trees["before"]), "requested": args.baseline_rev}
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="benchmark_files_")))
        needs_vgg = args.train and any(takes_vgg_weights(model) for model in args.models)
        vgg = vgg_weights(folder) if needs_vgg else (None, "unused")
        images = sr_images(folder, args.sr_image, args.settings) if args.sr else {}
        specs = plan(args, trees, vgg, images, export_dir=folder)
        results = measure(specs, args.timeout)
    train = [r for r in results if r["kind"] == "train"]
    sr = [r for r in results if r["kind"] == "sr"]
    failures = failures_of(results)
    report: Dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "machine": machine,
        "trees": {name: {k: v for k, v in meta.items() if k != "root" or name == "after"}
                  for name, meta in tree_meta.items()},
        "run": {"models": args.models if args.train else [], "settings": args.settings,
                "configs": config_list(args.device, args.configs), "baseline_rev": args.baseline_rev,
                "repeats": args.repeats, "steps": args.steps or DEFAULT_STEPS[args.device], "warmup": args.warmup,
                "threads": args.threads, "sr": args.sr, "sr_nets": args.sr_nets if args.sr else [],
                "sr_backends": args.sr_backends if args.sr else [], "sr_modes": args.sr_modes if args.sr else [],
                "sr_images": {s: {"size": v["size"], "source": v["source"]} for s, v in images.items()}},
        "measurements": {"train": train, "sr": sr},
        "summary": {"train": summarize_train(train), "sr": summarize_sr(sr)},
        "failures": failures,
    }
    report["notes"] = report_notes(report)
    text = json.dumps(report, indent=2) + "\n"
    if args.json:
        write_text(args.json, text)
    else:
        sys.stdout.write(text)
    markdown = markdown_report(report)
    if args.markdown:
        write_text(args.markdown, markdown)
    else:
        sys.stderr.write("\n" + markdown)
    if failures:
        logger.error("%d of %d measurements failed (see above and the report's 'failures')", len(failures),
                     len(results))
        return 1
    return 0


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: `--worker SPEC` runs one measurement; anything else is a benchmark run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "--worker":
        return worker_main(argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        return main(argv)
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
