"""The table of scripts/benchmark_layouts.sh: per model, ISA (native or capped at AVX2) and dtype, the training
step in NCHW and NHWC, and what `auto` resolved to.

    python scripts/benchmark_layouts_table.py OUTDIR        # markdown on stdout

Why a table of its own: benchmark.py's report compares configs of one run, while the layout rule
(models/training/acceleration.py) is decided across runs under different ISAs. Each row keeps the load that
ran beside it (others' CPU share, the matmul peak of the same process), since on a shared machine a slower
step can be a busier minute rather than a slower layout; with several repeats the median step is shown.
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Tuple

Key = Tuple[str, str, str, str, str]  # model, isa, config, amp, channels_last


def collect(folder: Path) -> Dict[Key, List[Dict[str, Any]]]:
    """Every successful training measurement of the folder's reports (MODEL.ISA.REPEAT.json), grouped."""
    rows: Dict[Key, List[Dict[str, Any]]] = defaultdict(list)
    for path in sorted(folder.glob("*.json")):
        isa = path.name.split(".")[1]
        for m in json.loads(path.read_text())["measurements"]["train"]:
            if "error" not in m:
                rows[(m["model"], isa, m["config"], m["amp"], m["channels_last"])].append(m)
    return rows


def table(rows: Dict[Key, List[Dict[str, Any]]]) -> str:
    """Markdown: one row per (model, ISA, config), median over repeats, the runs' load beside it."""
    lines = ["| model | ISA | config | dtype | layout | s/step (median) | runs | peak GFLOP/s | others' CPU |",
             "|---|---|---|---|---|---:|---:|---:|---:|"]
    for (model, isa, config, amp, layout), ms in rows.items():
        step = statistics.median(m["step_median_s"] for m in ms)
        peak = statistics.median(m["peak_flops"] for m in ms) / 1e9
        others = statistics.median(m.get("cpu_busy_others_during") or 0.0 for m in ms)
        dtype = "fp32" if amp == "none" else amp
        shape = "NHWC" if layout == "on" else "NCHW"
        lines.append(f"| {model} | {isa} | {config} | {dtype} | {shape} | {step:.3f} | {len(ms)} | {peak:.0f} | "
                     f"{100 * others:.0f}% |")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(table(collect(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
