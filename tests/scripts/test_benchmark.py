"""scripts/benchmark.py runs end to end on tiny cases and reports consistent numbers.

The benchmark's own numbers are never judged here (no timing thresholds): the tests check that every
measurement is present, named and internally consistent (images/s = batch / median step time, MFU = FLOPs /
time / peak, output MP/s = 16 x the input pixels / time, SR overlap = FLOPs computed / FLOPs useful), that SR
covers every upscaling generator of the registry, that failures are reported without stopping the run, and
that bad names are usage errors.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT

SCRIPT = ROOT / "scripts" / "benchmark.py"
# One thread in the measuring processes: two OpenMP threads spinning against each other on 2 shared cores make
# a tiny run many times slower.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = ["--threads", "1", "--peak-size", "256"]


@pytest.fixture(scope="module")
def benchmark() -> Iterator[ModuleType]:
    """The benchmark's package, scripts/benchmarking (scripts/ is not a package: its folder joins sys.path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "scripts"))
        yield importlib.import_module("benchmarking")


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def test_training_measurement_end_to_end(tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = run("--models", "pix2pix", "--settings", "small", "--configs", "default", "--steps", "3", "--warmup", "1",
               "--no-sr", "--json", str(out), "--markdown", str(md), *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["machine"]["device"] == "cpu" and report["machine"]["cpu"] and report["machine"]["torch"]
    assert report["failures"] == [] and report["measurements"]["sr"] == []
    [m] = report["measurements"]["train"]
    assert (m["model"], m["setting"], m["config"], m["tree"]) == ("pix2pix", "small", "default", "after")
    assert (m["netG"], m["crop_size"], m["ngf"], m["batch_size"]) == ("unet_128", 128, 16, 1)
    assert {"amp", "channels_last", "compile"} <= set(m)  # the resolved speed settings it ran with
    assert m["threads"] == 1 and m["steps"] == 3 and len(m["step_times_s"]) == 3
    assert all(t > 0 for t in m["step_times_s"])
    assert m["step_median_s"] == pytest.approx(statistics.median(m["step_times_s"]))
    assert m["step_p10_s"] <= m["step_median_s"] <= m["step_p90_s"]
    assert m["images_per_s"] == pytest.approx(m["batch_size"] / m["step_median_s"])
    assert m["flops_per_step"] > 0 and m["peak_flops"] > 0 and m["peak_matmul_n"] <= 256
    assert 0 < m["mfu"] and m["mfu"] == pytest.approx(m["flops_per_step"] / m["step_median_s"] / m["peak_flops"])
    assert m["peak_rss_mib"] > 0 and m["cuda_max_alloc_mib"] is None and m["losses_finite"] is True
    [row] = report["summary"]["train"]
    assert row["step_median_s"] == pytest.approx(m["step_median_s"]) and row["mfu"] == pytest.approx(m["mfu"])
    text = md.read_text(encoding="utf-8")
    assert "Machine: " in text and report["machine"]["cpu"] in text
    assert "| pix2pix | small | default |" in text


def test_sr_measurement_end_to_end(tmp_path: Path) -> None:
    image = tmp_path / "lr.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((24, 40, 3)) * 255).astype(np.uint8)).save(image)  # 40x24 LR
    out = tmp_path / "sr.json"
    # Two of the generators (rrdbnet's 23 blocks would take a while even on 40x24); all of them by default.
    # The fp32 config: `default` computes in bf16 on a CPU with native bf16 (AVX512-BF16, AMX).
    proc = run("--no-train", "--sr", "--sr-image", str(image), "--sr-tile", "16", "--sr-tile-pad", "4",
               "--sr-nets", "srresnet,srvgg", "--settings", "default", "--configs", "fp32", "--json", str(out),
               "--sr-backends", "torch", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["measurements"]["train"] == [] and report["run"]["sr_nets"] == ["srresnet", "srvgg"]
    by_key = {(m["netG"], m["mode"]): m for m in report["measurements"]["sr"]}
    assert set(by_key) == {(net, mode) for net in ("srresnet", "srvgg") for mode in ("tiled", "whole")}
    for (net, mode), m in by_key.items():
        assert "error" not in m, m
        assert m["input_size"] == [40, 24] and m["output_size"] == [160, 96]
        assert (m["tile_used"], m["tile_pad_used"]) == ((16, 4) if mode == "tiled" else (0, 0))
        assert m["seconds"] > 0 and m["peak_rss_mib"] > 0
        assert m["output_mp_per_s"] == pytest.approx(160 * 96 / 1e6 / m["seconds"])
        assert m["input_mp_per_s"] == pytest.approx(m["output_mp_per_s"] / 16)
        assert m["generator_params"] > 500_000  # the 16-block SRResNet, the 32-convolution SRVGGNetCompact
        assert m["architecture"] == ({"ngf": 64, "n_blocks": 16} if net == "srresnet" else {"ngf": 64, "n_conv": 32})
        # FLOPs: useful = one pass over 40x24; tiles of 16 with 4 of context compute more; the MFUs follow.
        assert m["flops_useful"] > 0 and m["peak_flops"] > 0 and m["peak_dtype"] == "float32"
        assert m["overlap"] == pytest.approx(m["flops_computed"] / m["flops_useful"])
        assert m["overlap"] == 1 if mode == "whole" else m["overlap"] > 1.5
        assert m["mfu"] == pytest.approx(m["flops_useful"] / m["seconds"] / m["peak_flops"])
        assert m["mfu_computed"] == pytest.approx(m["mfu"] * m["overlap"])
        assert m["mfu_fp32"] == pytest.approx(m["mfu"]) and m["backend"] == "torch"  # fp32: one peak
        assert 0 <= m["cpu_busy_others_during"] <= 1
    # srresnet's useful FLOPs, by hand: per LR pixel 2 x (9x9x3x64 + 33 x 3x3x64x64 + 3x3x64x256) at the LR
    # size, 2 x 3x3x64x256 at 2x (4 pixels), 2 x 9x9x64x3 at 4x (16 pixels).
    per_pixel = 2 * (81 * 3 * 64 + 33 * 9 * 64 * 64 + 9 * 64 * 256) + 4 * 2 * 9 * 64 * 256 + 16 * 2 * 81 * 64 * 3
    assert by_key[("srresnet", "whole")]["flops_useful"] == 40 * 24 * per_pixel


def test_torch_and_onnxruntime_side_by_side(tmp_path: Path) -> None:
    """--sr-backends torch,onnxruntime: the generator exported once by a process of its own, then measured through
    the same tiles code by both backends; the same tiles, so the same FLOPs; a table of the two side by side."""
    pytest.importorskip("onnxruntime", reason="the onnxruntime backend is an optional extra: pip install -e '.[onnx]'")
    image = tmp_path / "lr.png"
    Image.fromarray((np.random.default_rng(1).random((20, 36, 3)) * 255).astype(np.uint8)).save(image)
    out, md = tmp_path / "sr.json", tmp_path / "sr.md"
    proc = run("--no-train", "--sr-image", str(image), "--sr-tile", "16", "--sr-tile-pad", "4", "--sr-nets", "srvgg",
               "--settings", "upload", "--configs", "default,fp32", "--sr-modes", "tiled", "--sr-backends",
               "torch,onnxruntime", "--json", str(out), "--markdown", str(md), *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    by_config = {m["config"]: m for m in report["measurements"]["sr"]}
    assert set(by_config) == {"default", "fp32", "onnxruntime"}
    onnx, fp32 = by_config["onnxruntime"], by_config["fp32"]
    assert onnx["backend"] == "onnxruntime" and onnx["peak_dtype"] == "float32" and onnx["amp"] == "none"
    assert onnx["input_size"] == [36, 20] and onnx["output_size"] == [144, 80]  # upload: the image, whole
    assert (onnx["tile_used"], onnx["tile_pad_used"]) == (16, 4)
    assert onnx["flops_computed"] == fp32["flops_computed"] and onnx["flops_useful"] == fp32["flops_useful"]
    assert onnx["overlap"] > 1.5 and onnx["mfu_fp32"] == pytest.approx(onnx["mfu"])
    default = by_config["default"]
    if default["peak_dtype"] != "float32":  # bf16: its MFU against its own peak and against fp32's
        assert default["mfu_fp32"] == pytest.approx(default["flops_useful"] / default["seconds"] /
                                                    default["peak_flops_fp32"])
    text = md.read_text(encoding="utf-8")
    assert "### SR x4: torch against onnxruntime" in text
    section = text.split("### SR x4: torch against onnxruntime", 1)[1]
    assert "| srvgg (n_conv 32) | 36x20 | tiled | onnxruntime, float32 | 16 |" in section
    assert "torch (default)" in section and "torch (fp32), float32" in section


def test_sr_covers_every_upscaling_generator(benchmark: Any, tmp_path: Path) -> None:
    """No list of generators in the benchmark: the plan takes every registered one that makes x4."""
    from models import networks

    inputs = importlib.import_module("benchmarking.inputs")
    expected = [n for n in networks.GENERATORS.names() if networks.upscales(n) and 4 in networks.generator_scales(n)]
    assert list(inputs.sr_generators()) == expected
    assert {"srresnet", "msrresnet", "srvgg", "rrdbnet"} <= set(expected)
    args = SimpleNamespace(device="cpu", configs=["default"], threads=None, train=False, sr=True, sr_runs=None,
                           sr_nets=expected, settings=["default"], repeats=1, sr_tile=None, sr_tile_pad=None,
                           peak_size=None, sr_backends=["torch"])
    image = {"path": "x.png", "size": [1920, 1080], "source": "test"}
    specs = benchmark.plan(args, {"after": ROOT}, (None, "unused"), {"default": image})
    assert [s["netG"] for s in specs if s["mode"] == "tiled"] == expected
    assert all(s["tile"] is None and s["tile_pad"] is None for s in specs)  # test.py's, per generator
    proc = run("--no-train", "--sr-nets", "srresnet,stylegan")
    assert proc.returncode == 2 and "stylegan" in proc.stderr and "rrdbnet" in proc.stderr


def test_unknown_names_are_usage_errors() -> None:
    for flag, value in (("--configs", "default,warp9"), ("--models", "stylegan"), ("--settings", "huge")):
        proc = run(flag, value)
        assert proc.returncode == 2, (flag, proc.stderr)
        assert value.split(",")[-1] in proc.stderr and "choose from" in proc.stderr


def test_failed_worker_is_reported_not_raised(benchmark: Any) -> None:
    spec = {"kind": "train", "tree": "after", "tree_root": str(ROOT), "model": "pix2pix", "setting": "small",
            "config": "broken", "repeat": 0, "flags": ["--no_such_flag"], "device": "cpu", "threads": 1,
            "steps": 1, "warmup": 0, "peak_size": 256, "vgg_label": None}
    result = benchmark.run_worker(spec, timeout=300)
    assert result["config"] == "broken" and result["model"] == "pix2pix"
    assert "no_such_flag" in result["error"] and result["exit_code"] != 0
    assert "unrecognized arguments" in result["stderr_tail"]
    rows = benchmark.summarize_train([result])
    assert rows[0]["error"] == result["error"] and rows[0]["measured"] == 0


def train_result(config: str, step: float, tree: str = "after", flops: Any = 2e9, **extra: Any) -> Dict[str, Any]:
    return {"kind": "train", "tree": tree, "model": "srgan", "setting": "default", "config": config, "repeat": 0,
            "amp": extra.pop("amp", None), "channels_last": None, "compile": extra.pop("compile", None),
            "batch_size": 16, "step_median_s": step, "images_per_s": 16 / step, "peak_rss_mib": 1000.0,
            "cuda_max_alloc_mib": None, "flops_per_step": flops, "peak_flops": 1e11, "peak_dtype": "float32",
            "losses_finite": True, "vgg_weights": "random (timing only)", **extra}


def test_summary_speedups_and_markdown(benchmark: Any) -> None:
    results: List[Dict[str, Any]] = [
        train_result("before", 2.0, tree="before"), train_result("default", 1.0, amp="bf16"),
        train_result("fp32", 1.6, amp="none"), train_result("before", 2.2, tree="before", repeat=1),
        train_result("default", 1.0, amp="bf16", repeat=1), train_result("fp32", 1.6, amp="none", repeat=1),
        train_result("bf16_compile", 0.5, amp="bf16", compile=True, flops=None),
        {"kind": "train", "tree": "after", "model": "srgan", "setting": "small", "config": "fp32", "repeat": 0,
         "error": "RuntimeError: boom", "stderr_tail": "Traceback...\nRuntimeError: boom"},
    ]
    rows = {(r["setting"], r["config"]): r for r in benchmark.summarize_train(results)}
    before, default = rows[("default", "before")], rows[("default", "default")]
    assert before["step_median_s"] == pytest.approx(2.1) and before["measured"] == 2  # median over repeats
    assert default["speedup_vs_before"] == pytest.approx(2.1) and default["speedup_vs_fp32"] == pytest.approx(1.6)
    assert default["mfu"] == pytest.approx(2e9 / 1.0 / 1e11)
    compiled = rows[("default", "bf16_compile")]
    assert compiled["flops_from"] == "default" and compiled["mfu"] == pytest.approx(2e9 / 0.5 / 1e11)
    assert rows[("small", "fp32")]["error"] == "RuntimeError: boom"

    sr = [{"kind": "sr", "tree": "after", "netG": "srresnet", "setting": "default", "mode": "tiled",
           "config": "default", "repeat": 0, "tile": None, "tile_used": 512, "tile_pad_used": 40,
           "image_size": [1920, 1080], "input_size": [1920, 1080], "seconds": 100.0, "peak_rss_mib": 1500.0,
           "cuda_max_alloc_mib": None, "amp": "bf16", "channels_last": True, "image_source": "a mosaic",
           "architecture": {"ngf": 64, "n_blocks": 16}, "flops_useful": 9e12, "flops_computed": 1.8e13,
           "overlap": 2.0, "peak_flops": 2e11, "peak_dtype": "bfloat16", "cpu_busy_others_during": 0.1},
          {"kind": "sr", "tree": "after", "netG": "srresnet", "setting": "default", "mode": "whole",
           "config": "default", "repeat": 0, "tile": None, "image_size": [1920, 1080],
           "skipped": "needs about 16 GiB"}]
    sr_rows = benchmark.summarize_sr(sr)
    assert sr_rows[0]["output_mp_per_s"] == pytest.approx(1920 * 1080 * 16 / 1e6 / 100.0)
    assert sr_rows[0]["mfu"] == pytest.approx(9e12 / 100.0 / 2e11)
    assert sr_rows[0]["mfu_computed"] == pytest.approx(1.8e13 / 100.0 / 2e11)
    report = {"machine": {"cpu": "Test CPU 9000", "cores": 8, "cores_usable": 4, "memory_gib": 32.0, "gpu": None,
                          "torch": "2.x", "python": "3.11", "device": "cpu", "date": "2025-01-02T03:04:05Z"},
              "trees": {"after": {"rev": "abcdef1234567890", "uncommitted_changes": False},
                        "before": {"rev": "0123456789abcdef", "requested": "bead187"}},
              "run": {"steps": 10, "warmup": 3, "repeats": 2, "threads": None},
              "measurements": {"train": results, "sr": sr},
              "summary": {"train": list(rows.values()), "sr": sr_rows},
              "failures": [{"what": "srgan small fp32 (after, repeat 1)", "error": "RuntimeError: boom"}]}
    report["notes"] = benchmark.report_notes(report)
    text = benchmark.markdown_report(report)
    assert "Test CPU 9000 (4 of 8 cores usable, 32 GiB RAM), no GPU" in text
    assert "`before` = bead187 (0123456789ab)" in text
    assert "| srgan | default | default | bf16 | n/a | n/a | 16 | 1 | 16 | 2.10x | 1.60x | 1000 | n/a | 2.0 | 2.0% |" \
        in text
    assert "| srgan | default | 2.1 | 1 | 2.10x |" in text  # the before/after table
    assert "2.0 (from default)" in text
    assert ("| srresnet (n_blocks 16) | default | 1920x1080 | tiled | 512 | 40 | default | bf16 | on | 100 | 0.332 | "
            "n/a | 1500 | n/a | 9 | 2.00x | 200 (bfloat16) | 45.0% | 90.0% | 10.0% |") in text
    assert "skipped: needs about 16 GiB" in text
    assert ("peak RSS 1500 MiB, MFU 45.0%, 90.0% of the FLOPs computed, overlap 2.00x (CPU targets: peak RSS <= "
            "2048 MiB met; >= 50% of the peak on the FLOPs computed met)") in text
    assert "random VGG19 weights" in text and "timing only" in text
    assert "- srgan small fp32 (after, repeat 1): RuntimeError: boom" in text
    assert "WARNING" not in text
    busy = {**report, "machine": {**report["machine"], "cpu_busy_at_start": 0.6}}
    assert "WARNING: other work used up to 60% of the CPU time" in \
        benchmark.markdown_report({**busy, "notes": benchmark.report_notes(busy)})
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.count("|") in (16, 21, 6), line  # every row has its table's number of cells
    assert not any(isinstance(v, float) and math.isnan(v) for r in rows.values() for v in r.values())


def test_baseline_revision_is_measured_from_its_own_tree(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: --baseline-rev needs git")
    out = tmp_path / "bench.json"
    proc = run("--baseline-rev", "HEAD", "--models", "pix2pix", "--settings", "small", "--configs", "default",
               "--steps", "1", "--warmup", "0", "--no-sr", "--json", str(out), *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    before, after = report["measurements"]["train"]  # interleaved: before first, then the configs
    assert (before["config"], before["tree"], after["config"], after["tree"]) == \
        ("before", "before", "default", "after")
    assert before["flags"] == after["flags"]  # same setting; 'before' gets no config flags, 'default' has none
    assert Path(after["code"]) == ROOT and Path(before["code"]) != ROOT  # each tree imported its own code
    assert not Path(before["code"]).exists()  # the temporary worktree is gone
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    assert before["code"] not in worktrees
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert report["trees"]["before"]["rev"] == head and report["trees"]["before"]["requested"] == "HEAD"
    [row] = [r for r in report["summary"]["train"] if r["config"] == "default"]
    assert row["speedup_vs_before"] == pytest.approx(before["step_median_s"] / after["step_median_s"])
