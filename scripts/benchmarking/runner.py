"""The parent's side of a run: the plan of every measurement, one worker process each, a progress line each.

A failed or timed-out worker becomes a result with an "error" (and the tail of its stderr); the other
measurements still run. With --baseline-rev the two trees are interleaved (before, after, before, after with
--repeats 2), so both see the same machine conditions.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .cases import (BEFORE, CONFIG_FLAGS, DEFAULT_STEPS, ONNX_CONFIG, ONNX_FLAGS, SCRIPT, SETTING_FLAGS, SR_MODES,
                    SR_SCALE, SR_SETTINGS, config_list, whole_image_skip)
from .inputs import takes_vgg_weights
from .machine import cpu_busy_fraction, cpu_mark, load_average, others_busy_since
from .dispatch import RESULT_MARKER

logger = logging.getLogger("benchmark")


def plan(args: argparse.Namespace, trees: Dict[str, Path], vgg: Tuple[Optional[str], str],
         images: Dict[str, Dict[str, Any]], export_dir: Optional[Path] = None) -> List[Dict[str, Any]]:
    """Every measurement, in run order: per model and setting, repeats of [before, configs...] interleaved;
    with onnxruntime among --sr-backends, each generator's export first (into `export_dir`), then its SR
    measurements with an `onnxruntime` config interleaved after the torch ones."""
    configs = config_list(args.device, args.configs)
    runs = [(BEFORE, "before")] if "before" in trees else []
    runs += [(config, "after") for config in configs]
    common = {"device": args.device, "threads": args.threads}
    specs: List[Dict[str, Any]] = []
    if args.train:
        vgg_path, vgg_label = vgg
        steps = args.steps or DEFAULT_STEPS[args.device]
        for model in args.models:
            for setting in (s for s in args.settings if s in SETTING_FLAGS):
                for repeat in range(args.repeats):
                    for config, tree in runs:
                        flags = list(SETTING_FLAGS[setting][model])
                        flags += [] if config == BEFORE else list(CONFIG_FLAGS[config])
                        if vgg_path is not None and takes_vgg_weights(model):
                            flags += ["--vgg_weights", vgg_path]
                        specs.append({**common, "kind": "train", "tree": tree, "tree_root": str(trees[tree]),
                                      "model": model, "setting": setting, "config": config, "repeat": repeat,
                                      "flags": flags, "steps": steps, "warmup": args.warmup,
                                      "peak_size": args.peak_size, "vgg_label": vgg_label})
    if args.sr:
        sr_runs = args.sr_runs or (3 if args.device == "cuda" else 1)
        onnx = "onnxruntime" in getattr(args, "sr_backends", ["torch"])
        sr_configs = runs if "torch" in getattr(args, "sr_backends", ["torch"]) else []
        sr_configs = sr_configs + ([(ONNX_CONFIG, "after")] if onnx else [])
        for net in args.sr_nets:
            onnx_path = str((export_dir or Path(".")) / f"{net}.onnx")
            if onnx:
                specs.append({**common, "kind": "export", "tree": "after", "tree_root": str(trees["after"]),
                              "netG": net, "config": ONNX_CONFIG, "flags": list(ONNX_FLAGS), "onnx_path": onnx_path,
                              "tile": None, "tile_pad": None})
            for setting in (s for s in args.settings if s in SR_SETTINGS):
                image = images[setting]
                for mode in getattr(args, "sr_modes", SR_MODES):
                    for repeat in range(args.repeats):
                        for config, tree in sr_configs:
                            flags = [] if config == BEFORE else list(ONNX_FLAGS if config == ONNX_CONFIG
                                                                     else CONFIG_FLAGS[config])
                            spec = {**common, "kind": "sr", "tree": tree, "tree_root": str(trees[tree]),
                                    "netG": net, "setting": setting, "mode": mode, "config": config,
                                    "repeat": repeat, "flags": flags,
                                    "image": image["path"], "image_size": image["size"],
                                    "image_source": image["source"],
                                    # None: test.py's default for this generator (its --tile, its --tile_pad)
                                    "tile": args.sr_tile or SR_SETTINGS[setting]["tile"],
                                    "tile_pad": args.sr_tile_pad, "runs": sr_runs, "peak_size": args.peak_size}
                            if config == ONNX_CONFIG:
                                spec["onnx_path"] = onnx_path
                            if mode == "whole":
                                spec["skipped"] = whole_image_skip(image["size"], args.device)
                            specs.append(spec)
    return specs


def stderr_tail(text: Any, lines: int = 25, chars: int = 4000) -> str:
    """The end of a worker's stderr: where the traceback or the option error is."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    tail = "\n".join((text or "").rstrip().splitlines()[-lines:])
    return tail[-chars:]


def identity(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The fields that name a measurement, copied into its result (also into a failed one)."""
    keys = ("kind", "tree", "model", "netG", "setting", "config", "repeat", "flags", "mode", "tile", "tile_pad",
            "image_source")
    return {k: spec[k] for k in keys if k in spec}


def run_worker(spec: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    """Run one measurement in a fresh process in the tree's root; a failure becomes a result with "error"."""
    command = [sys.executable, str(SCRIPT), "--worker", json.dumps(spec)]
    base = identity(spec)
    # The tree under test goes first on the worker's import path: PYTHONPATH's entries come before the editable
    # install's finder, so a --baseline-rev worker imports the old code (workers.check_tree verifies it).
    path = os.pathsep.join(p for p in (spec["tree_root"], os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    try:
        proc = subprocess.run(command, cwd=spec["tree_root"], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return {**base, "error": f"timed out after {timeout:g} s", "stderr_tail": stderr_tail(e.stderr)}
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if proc.returncode != 0 or not lines:
        tail = stderr_tail(proc.stderr)
        last = tail.splitlines()[-1] if tail else f"no result line (exit code {proc.returncode})"
        return {**base, "error": last, "exit_code": proc.returncode, "stderr_tail": tail}
    return {**base, **json.loads(lines[-1][len(RESULT_MARKER):])}


def describe(spec: Dict[str, Any]) -> str:
    """A measurement's name on the progress line."""
    if spec["kind"] == "train":
        return f"{spec['model']} {spec['setting']} {spec['config']} ({spec['tree']}, repeat {spec['repeat'] + 1})"
    if spec["kind"] == "export":
        return f"ONNX export of {spec['netG']} for the onnxruntime measurements"
    size = "x".join(map(str, spec["image_size"]))
    tile = f" tile {spec['tile'] or 'default'}" if spec["mode"] == "tiled" else ""
    return f"SR x{SR_SCALE} {spec['netG']} {spec['setting']} {size} {spec['mode']}{tile} {spec['config']} " \
           f"({spec['tree']}, repeat {spec['repeat'] + 1})"


def progress_line(result: Dict[str, Any]) -> str:
    """A measurement's outcome on the progress line."""
    if "error" in result:
        return f"FAILED: {result['error']}"
    if result.get("skipped"):
        return f"skipped: {result['skipped']}"
    rss = f"peak RSS {result['peak_rss_mib']:.0f} MiB"
    if result["kind"] == "export":
        return f"{result['onnx_path']} in {result['seconds']:.1f} s, {rss}"
    mfu = "n/a" if result.get("mfu") is None else f"{100 * result['mfu']:.1f}%"
    if result["kind"] == "train":
        return f"{result['step_median_s']:.4g} s/step, {result['images_per_s']:.3g} images/s, {rss}, MFU {mfu}"
    computed = "n/a" if result.get("mfu_computed") is None else f"{100 * result['mfu_computed']:.1f}%"
    return f"{result['seconds']:.4g} s, {result['output_mp_per_s']:.3g} output MP/s, {rss}, MFU {mfu} " \
           f"({computed} of the FLOPs computed, tile overlap included)"


def measure(specs: Sequence[Dict[str, Any]], timeout: float) -> List[Dict[str, Any]]:
    """Run every planned measurement, logging one progress line each; failures do not stop the others."""
    results = []
    for i, spec in enumerate(specs, 1):
        if spec.get("skipped"):
            result = {**identity(spec), "image_size": spec["image_size"], "skipped": spec["skipped"]}
        else:
            load, busy = load_average(), cpu_busy_fraction()
            mark = cpu_mark()
            result = run_worker(spec, timeout)
            result.update(load_avg_before=load, cpu_busy_before=busy, cpu_busy_others_during=others_busy_since(mark))
            if spec["kind"] == "sr":
                result.setdefault("image_size", spec["image_size"])
        logger.info("[%d/%d] %s: %s", i, len(specs), describe(spec), progress_line(result))
        if "error" in result:
            logger.error("%s failed; worker stderr (tail):\n%s", describe(spec), result.get("stderr_tail", ""))
        results.append(result)
    return results
