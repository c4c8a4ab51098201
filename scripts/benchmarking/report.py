"""What a run reports: the notes a reader needs, the markdown section (tables naming the machine), and the
report files themselves.

Everything here reads the report dict alone, so a JSON report written earlier can be rendered again.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Sequence

from .cases import (BEFORE, BUSY_WARNING, COMPILE_WARMUP, ONNX_CONFIG, SR_MFU_TARGET, SR_PHOTO_SIZE,
                    SR_RSS_TARGET_MIB, SR_SCALE)
from .inputs import RANDOM_VGG

logger = logging.getLogger("benchmark")

SCHEMA_VERSION = 1  # of the JSON report: raised when a field changes meaning or goes


def _cell(value: Any, spec: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "on" if value else "off"
    return format(value, spec) if spec else str(value)


def markdown_table_lines(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def machine_line(machine: Dict[str, Any]) -> str:
    gpu = machine.get("gpu") or "no GPU"
    memory = f", {machine['memory_gib']:.0f} GiB RAM" if machine.get("memory_gib") else ""
    return (f"Machine: {machine.get('cpu', 'unknown CPU')} ({machine.get('cores_usable', '?')} of "
            f"{machine.get('cores', '?')} cores usable{memory}), {gpu}; torch {machine.get('torch')}, Python "
            f"{machine.get('python')}; measured on {machine.get('device')} on {machine.get('date')}.")


def markdown_report(report: Dict[str, Any]) -> str:
    """The markdown section of a report: the machine, the training table, before/after, SR, notes, failures."""
    machine = report["machine"]
    run = report.get("run", {})
    trees = report.get("trees", {})
    lines = [f"## Benchmarks ({machine.get('date', '')[:10]}, {machine.get('device')})", "", machine_line(machine)]
    after = trees.get("after")
    if after:
        changes = " with uncommitted changes" if after.get("uncommitted_changes") else ""
        code = f"Code: {str(after.get('rev') or 'unknown')[:12]}{changes}"
        before = trees.get("before")
        if before:
            code += f"; `before` = {before.get('requested')} ({str(before.get('rev'))[:12]})"
        lines += ["", code + "."]
    if run.get("models"):
        lines += ["", f"Training: median of {run.get('steps')} steps after {run.get('warmup')} warm-up steps "
                      f"({COMPILE_WARMUP} under --compile), synthetic batches, {run.get('repeats')} repeat(s) "
                      f"interleaved; {run.get('threads') or 'default'} torch threads."]
    train = report.get("summary", {}).get("train", [])
    if train:
        header = ["model", "setting", "config", "amp", "channels_last", "compile", "batch", "step (s)", "images/s",
                  "vs before", "vs fp32", "peak RSS (MiB)", "CUDA max alloc (MiB)", "GFLOP/step", "MFU"]
        rows = []
        for r in train:
            if r.get("step_median_s") is None:
                rows.append([r["model"], r["setting"], r["config"], *["n/a"] * 4, "failed", *["n/a"] * 7])
                continue
            flops = _cell(r["flops_per_step"] / 1e9 if r.get("flops_per_step") else None, ".1f")
            if r.get("flops_from"):
                flops += f" (from {r['flops_from']})"
            speedups = [_cell(r.get(f"speedup_vs_{ref}"), ".2f") + ("x" if r.get(f"speedup_vs_{ref}") else "")
                        for ref in (BEFORE, "fp32")]
            rows.append([r["model"], r["setting"], r["config"], _cell(r.get("amp")), _cell(r.get("channels_last")),
                         _cell(r.get("compile")), _cell(r.get("batch_size")), _cell(r["step_median_s"], ".4g"),
                         _cell(r["images_per_s"], ".3g"), *speedups, _cell(r.get("peak_rss_mib"), ".0f"),
                         _cell(r.get("cuda_max_alloc_mib"), ".0f"), flops,
                         _cell(100 * r["mfu"] if r.get("mfu") is not None else None, ".1f")
                         + ("%" if r.get("mfu") is not None else "")])
        right = [False] * 6 + [True] * 9
        lines += ["", "### Training", "", *markdown_table_lines(header, rows, right)]
        pairs = [(r, next((d for d in train if (d["model"], d["setting"], d["config"]) ==
                           (r["model"], r["setting"], "default")), None)) for r in train if r["config"] == BEFORE]
        if pairs:
            rows = [[b["model"], b["setting"], _cell(b.get("step_median_s"), ".4g"),
                     _cell(d.get("step_median_s") if d else None, ".4g"),
                     _cell(d.get("speedup_vs_before") if d else None, ".2f")
                     + ("x" if d and d.get("speedup_vs_before") else "")] for b, d in pairs]
            lines += ["", "### Default step time, before and after", "",
                      *markdown_table_lines(["model", "setting", "before (s/step)", "after, default config (s/step)", "speed-up"],
                              rows, [False, False, True, True, True])]
    sr = report.get("summary", {}).get("sr", [])
    if sr:
        lines += ["", f"### SR x{SR_SCALE} inference", "", *sr_table(sr)]
        side_by_side = backend_table(sr)
        if side_by_side:
            lines += ["", f"### SR x{SR_SCALE}: torch against onnxruntime", "", *side_by_side]
    lines += ["", "Notes:", ""]
    lines += [f"- {note}" for note in report.get("notes", [])]
    failures = report.get("failures", [])
    if failures:
        lines += ["", "### Failures", ""]
        lines += [f"- {f['what']}: {f['error']}" for f in failures]
    return "\n".join(lines) + "\n"


def _generator_cell(row: Dict[str, Any]) -> str:
    """`rrdbnet (n_blocks 23, growth_channels 32)`: the generator and the architecture options it ran with."""
    options = {k: v for k, v in (row.get("architecture") or {}).items() if k != "ngf"}
    return f"{row.get('netG')} ({', '.join(f'{k} {v}' for k, v in options.items())})" if options else \
        str(row.get("netG"))


def _tile_cell(row: Dict[str, Any]) -> str:
    """`768` for plain tiles, `768 / head 96` for split ones (models/inference/split_tiles.py)."""
    tile, head = _cell(row.get("tile_used", row.get("tile"))), row.get("head_tile_used")
    return f"{tile} / head {head}" if head else tile


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def sr_table(sr: Sequence[Dict[str, Any]]) -> List[str]:
    """The SR inference table: time, memory, and the FLOPs (useful, overlap) and MFU of every generator."""
    header = ["generator", "setting", "LR image", "mode", "tile", "pad", "config", "amp", "channels_last",
              "time (s)", "output MP/s", "vs before", "peak RSS (MiB)", "CUDA max alloc (MiB)", "TFLOP (useful)",
              "overlap", "peak GFLOP/s", "MFU", "MFU of computed", "others' CPU"]
    rows = []
    for r in sr:
        size = "x".join(map(str, r.get("image_size") or [])) or "n/a"
        head = [_generator_cell(r), r["setting"], size, r["mode"], _tile_cell(r),
                _cell(r.get("tile_pad_used")), r["config"]]
        if r.get("seconds") is None:
            rows.append([*head, "n/a", "skipped: " + r["skipped"] if r.get("skipped") else "failed",
                         *["n/a"] * (len(header) - len(head) - 2)])
            continue
        peak = f"{r['peak_flops'] / 1e9:.0f} ({r.get('peak_dtype')})" if r.get("peak_flops") else "n/a"
        rows.append([*head, _cell(r.get("amp")), _cell(r.get("channels_last")), _cell(r["seconds"], ".4g"),
                     _cell(r["output_mp_per_s"], ".3g"),
                     _cell(r.get("speedup_vs_before"), ".2f") + ("x" if r.get("speedup_vs_before") else ""),
                     _cell(r.get("peak_rss_mib"), ".0f"), _cell(r.get("cuda_max_alloc_mib"), ".0f"),
                     _cell(r["flops_useful"] / 1e12 if r.get("flops_useful") else None, ".3g"),
                     _cell(r.get("overlap"), ".2f") + ("x" if r.get("overlap") else ""), peak,
                     _percent(r.get("mfu")), _percent(r.get("mfu_computed")), _percent(r.get("cpu_busy_others"))])
    return markdown_table_lines(header, rows, [False] * 9 + [True] * 11)


def backend_table(sr: Sequence[Dict[str, Any]]) -> List[str]:
    """Each generator and photo through torch (its default config, and fp32 where measured) and onnxruntime side
    by side: time, output MP/s, peak RSS, useful MFU, and onnxruntime's time over torch's; [] without both."""
    header = ["generator", "LR image", "mode", "backend (config)", "tile", "time (s)", "output MP/s",
              "peak RSS (MiB)", "useful MFU", "useful MFU vs fp32 peak", "overlap", "time vs torch default"]
    rows = []
    by_key = {(r["netG"], r["setting"], r["mode"], r["config"]): r for r in sr if r.get("seconds")}
    for (net, setting, mode, config), onnx in by_key.items():
        torch_default = by_key.get((net, setting, mode, "default"))
        if config != ONNX_CONFIG or torch_default is None:
            continue
        size = "x".join(map(str, onnx.get("image_size") or []))
        for label, r in (("torch (default)", torch_default), ("torch (fp32)", by_key.get((net, setting, mode, "fp32"))),
                         ("onnxruntime", onnx)):
            if r is None:
                continue
            rows.append([_generator_cell(r), size, mode, f"{label}, {r.get('peak_dtype') or 'n/a'}",
                         _tile_cell(r), _cell(r["seconds"], ".4g"), _cell(r["output_mp_per_s"], ".3g"),
                         _cell(r.get("peak_rss_mib"), ".0f"), _percent(r.get("mfu")), _percent(r.get("mfu_fp32")),
                         _cell(r.get("overlap"), ".2f") + ("x" if r.get("overlap") else ""),
                         f"{r['seconds'] / torch_default['seconds']:.2f}x"])
    return markdown_table_lines(header, rows, [False] * 5 + [True] * 7) if rows else []


def sr_notes(report: Dict[str, Any]) -> List[str]:
    """What the SR table's columns mean, and each 1920x1080 CPU row against the targets."""
    sr = report.get("summary", {}).get("sr", [])
    if not sr:
        return []
    sources = sorted({r.get("image_source") for r in report.get("measurements", {}).get("sr", [])
                      if r.get("image_source")})
    notes = [f"SR: every upscaling generator of the registry that makes x{SR_SCALE}, in --model srgan as test.py "
             f"builds it, at its architecture's default size, with random weights: timing only. Output MP/s = "
             f"output pixels ({SR_SCALE**2} x the input pixels) / seconds / 10^6. Image: "
             + ("; ".join(sources) if sources else "n/a") + ".",
             "SR FLOPs: the convolution FLOPs of the network (torch.utils.flop_counter on a meta-device copy). "
             "Useful = one pass over the whole image; computed = the passes over the tiles with their context "
             "(pad); overlap = computed / useful. MFU = useful FLOPs / time / the matmul peak of the dtype the "
             "network computed in (measured in the same process after the run); MFU of computed = computed FLOPs / "
             "time / peak: how fast the kernels ran, the overlap left out (judged by its own column)."]
    on_cpu = report["machine"].get("device") == "cpu"
    for r in sr:
        if r.get("image_size") != list(SR_PHOTO_SIZE) or r["mode"] != "tiled" or not r.get("seconds"):
            continue
        targets = ""
        if on_cpu:
            rss_met = "met" if r["peak_rss_mib"] <= SR_RSS_TARGET_MIB else "NOT met"
            mfu_met = "n/a" if r.get("mfu_computed") is None else \
                ("met" if r["mfu_computed"] >= SR_MFU_TARGET else "NOT met")
            targets = (f" (CPU targets: peak RSS <= {SR_RSS_TARGET_MIB:.0f} MiB {rss_met}; >= "
                       f"{100 * SR_MFU_TARGET:.0f}% of the peak on the FLOPs computed {mfu_met})")
        notes.append(f"SR x{SR_SCALE} of a {SR_PHOTO_SIZE[0]}x{SR_PHOTO_SIZE[1]} photo by {_generator_cell(r)}, tile "
                     f"{r.get('tile_used')} + {r.get('tile_pad_used')}, config {r['config']}: {r['seconds']:.1f} s, "
                     f"peak RSS {r['peak_rss_mib']:.0f} MiB, MFU {_percent(r.get('mfu'))}, "
                     f"{_percent(r.get('mfu_computed'))} of the FLOPs computed, overlap "
                     f"{_cell(r.get('overlap'), '.2f')}x{targets}.")
    return notes


def report_notes(report: Dict[str, Any]) -> List[str]:
    """What a reader must know to read the numbers right, derived from what was actually measured."""
    train = report.get("summary", {}).get("train", [])
    notes = ["Peak RSS is the measuring process's high-water mark (Linux VmHWM; it includes torch itself); every "
             "measurement runs in a process of its own."]
    if train:
        notes += ["Step = set_input + optimize_parameters on a synthetic batch (no data loading); images/s = batch / "
                  "median step time.",
                  "MFU = matmul/convolution FLOPs of one training step (forward and backward, counted by "
                  "torch.utils.flop_counter) / median step time / peak FLOP/s, the peak being the median speed of "
                  "square matmuls in the config's compute dtype, measured in the same process on the same device."]
    random_vgg = list(dict.fromkeys(r["model"] for r in train if r.get("vgg_weights") == RANDOM_VGG))
    if random_vgg:
        notes.append(f"{', '.join(random_vgg)}: the VGG19 ImageNet weights are not on this machine, so "
                     f"{'its' if len(random_vgg) == 1 else 'their'} perceptual loss ran with random VGG19 weights "
                     f"of the same shapes: timing only (the work per step is the same).")
    if any(r.get("flops_from") for r in train):
        notes.append("Under torch.compile the FLOP counter cannot see the compiled kernels; those rows take the "
                     "FLOPs of an eager config of the same model and setting ('from ...').")
    measured = [r for kind in ("train", "sr") for r in report.get("measurements", {}).get(kind, [])]
    busy = [r["cpu_busy_before"] for r in measured if r.get("cpu_busy_before") is not None]
    busy_at_start = report["machine"].get("cpu_busy_at_start")
    if busy_at_start is not None:
        busy.append(busy_at_start)
    if busy and max(busy) > BUSY_WARNING:
        notes.append(f"WARNING: other work used up to {100 * max(busy):.0f}% of the CPU time just before "
                     f"measurements (between them, while none ran); it slows the measurements unevenly. The "
                     f"share before each measurement is in the JSON (cpu_busy_before).")
    during = [r["cpu_busy_others_during"] for r in measured if r.get("cpu_busy_others_during") is not None]
    if during and max(during) > BUSY_WARNING:
        notes.append(f"WARNING: processes other than the benchmark used up to {100 * max(during):.0f}% of the "
                     f"machine's CPU time while measurements ran (cpu_busy_others_during in the JSON): those times "
                     f"are upper bounds on what the machine alone takes, and their MFU lower bounds.")
    diverged = [f"{r['model']} {r['setting']} {r['config']}" for r in train if r.get("losses_finite") is False]
    if diverged:
        notes.append(f"WARNING: losses were NaN or infinite after the timed steps of {', '.join(diverged)}: "
                     f"that config does not train as measured.")
    high = [f"{r['model']} {r['setting']} {r['config']}" for r in train if (r.get("mfu") or 0) > 1]
    if high:
        notes.append(f"MFU above 100% ({', '.join(high)}): the step's kernels ran faster than the square matmul "
                     f"that defines the peak. Either they are genuinely faster (on some CPUs oneDNN's convolutions "
                     f"beat the BLAS matmul) or the machine's load changed between the steps and the peak "
                     f"measurement; the load averages before each measurement are in the JSON.")
    return notes + sr_notes(report)



def failures_of(results: Sequence[Dict[str, Any]]) -> List[Dict[str, str]]:
    """The report's list of failed measurements: what each was and its error."""
    return [{"what": f"{r.get('model') or 'SR ' + r.get('netG', '') + ' ' + r.get('mode', '')} {r.get('setting', '')} "
                     f"{r['config']} "
                     f"({r['tree']}, repeat {r.get('repeat', 0) + 1})", "error": r["error"]}
            for r in results if "error" in r]


def write_text(path: str, text: str) -> None:
    """Write through a temporary file and a rename (util.fileio), so an interrupted run leaves no half-written
    report."""
    # Imported here, not at the top: workers import this package too, and must take util from the tree under test.
    from util.fileio import atomic_write_text

    Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    logger.info("wrote %s", path)
