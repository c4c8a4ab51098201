"""scripts/benchmark_layouts.sh and its table: the script parses, and the table groups the reports' training
measurements per model, ISA and config (median over repeats) with the load beside them. No timing is judged."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import ROOT, load_script


def _report(path: Path, steps: list) -> None:
    train = [{"model": "pix2pix", "config": config, "amp": amp, "channels_last": layout, "step_median_s": step,
              "peak_flops": 1e11, "cpu_busy_others_during": 0.5} for config, amp, layout, step in steps]
    train.append({"model": "pix2pix", "config": "bf16", "error": "timed out"})
    path.write_text(json.dumps({"measurements": {"train": train}}))


def test_table_groups_by_isa_and_takes_the_median(tmp_path) -> None:
    table = load_script("scripts/benchmark_layouts_table.py")
    _report(tmp_path / "pix2pix.native.1.json", [("fp32", "none", "off", 1.0), ("fp32_cl", "none", "on", 0.9)])
    _report(tmp_path / "pix2pix.native.2.json", [("fp32", "none", "off", 3.0), ("fp32_cl", "none", "on", 0.7)])
    _report(tmp_path / "pix2pix.avx2.1.json", [("fp32", "none", "off", 2.0)])
    lines = table.table(table.collect(tmp_path)).splitlines()
    assert len(lines) == 2 + 3  # header, rule, one row per (model, ISA, config); the failed one left out
    assert "| pix2pix | native | fp32 | fp32 | NCHW | 2.000 | 2 | 100 | 50% |" in lines
    assert "| pix2pix | native | fp32_cl | fp32 | NHWC | 0.800 | 2 |" in "\n".join(lines)
    assert "| pix2pix | avx2 | fp32 | fp32 | NCHW | 2.000 | 1 |" in "\n".join(lines)


def test_script_parses_and_needs_an_outdir() -> None:
    script = ROOT / "scripts" / "benchmark_layouts.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert proc.returncode != 0 and "usage" in proc.stderr
