"""The GPU check (`bash scripts/gpu_check.sh OUTDIR`): every CUDA code path of the toolkit, run and measured in one
command on any machine with an NVIDIA GPU.

    bash scripts/gpu_check.sh gpu_check_out                  # everything: about 6-8 minutes on one GPU
    bash scripts/gpu_check.sh gpu_check_out --no-benchmark   # the CUDA tests and probes only: 2-3 minutes

Phases, each with a time limit (--tests-timeout 180 s, --benchmark-timeout 300 s) so the whole stays within about
8 minutes; the durations above are estimates until a GPU has run it (the reports give each phase's seconds):
  1. `pytest -m cuda`: the tests marked `cuda` (tests/test_gpu_readiness.py and any other). They probe, with
     assertions: host syncs per training step of every model in bf16 and fp16 with channels_last
     (`torch.cuda.set_sync_debug_mode`; one per step, in `check_step`); torch.compile against eager mode; a
     one-process NCCL group through the toolkit's DDP path; fp16 training resumed from its state within tolerance
     (optimiser state on the GPU, loss scale kept); `max_memory_allocated` of tiled SR for 2K and 4K inputs
     against whole-image SR; test.py on images of several sizes; the data path leaving the CUDA random stream
     alone. Their figures go to OUTDIR/probes.jsonl (`record` in the test file).
  2. The benchmark's GPU rows (scripts/benchmark.py): images/s and MFU of pix2pix, cycle_gan and srgan at their
     default sizes in fp32, bf16, bf16 + channels_last and bf16 + compile.
Reports: OUTDIR/gpu_check.json and OUTDIR/gpu_check.md (the device, each check and its figures), beside pytest's
junit XML and the benchmark's own JSON and markdown. Exit code 1 when a check failed or ran out of time, 2 for bad
arguments; without CUDA one line and exit 0 (the test suite runs that path).
Copy the markdown's tables into docs/benchmarks.md once they pass.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
# Imported by the toolkit or the tests; a GPU image may lack the small pure-Python ones (pip install them, or
# carry their wheels there: `pip download dominate pypng -d wheels` and `pip install --no-index wheels/*`).
REQUIRED_MODULES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "cv2": "opencv-python-headless",
                    "PIL": "pillow", "png": "pypng", "dominate": "dominate", "tqdm": "tqdm", "pytest": "pytest"}
BENCHMARK_CONFIGS = "fp32,bf16,bf16_cl,bf16_compile"
BENCHMARK_MODELS = ("pix2pix", "cycle_gan", "srgan")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu_check.sh", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("outdir", help="folder for the reports (created)")
    parser.add_argument("--no-benchmark", action="store_true", help="skip phase 2, the benchmark's GPU rows")
    parser.add_argument("--settings", default="default", help="benchmark settings (default: default; small is quicker)")
    parser.add_argument("--steps", type=int, default=10, help="timed benchmark steps per measurement (default: 10)")
    parser.add_argument("--tests-timeout", type=float, default=180.0,
                        help="seconds for phase 1 (default: 180)")
    parser.add_argument("--benchmark-timeout", type=float, default=300.0,
                        help="seconds for phase 2, all three models together (default: 300)")
    return parser.parse_args(argv)


def device_info() -> Dict[str, Any]:
    import torch

    props = torch.cuda.get_device_properties(0)
    driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                            capture_output=True, text=True) if _has("nvidia-smi") else None
    return {"name": props.name, "count": torch.cuda.device_count(), "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1), "multiprocessors": props.multi_processor_count,
            "driver": driver.stdout.strip() if driver is not None and driver.returncode == 0 else None,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "python": sys.version.split()[0]}


def _has(program: str) -> bool:
    return any(os.access(os.path.join(d, program), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))


def _run(name: str, command: List[str], timeout: float, env: Dict[str, str]) -> Dict[str, Any]:
    """Run one phase in a process group of its own (a timeout ends its workers too), its output streamed through."""
    print(f"gpu_check: {name}: {' '.join(command[1:])}", flush=True)
    start = time.monotonic()
    tail: Deque[str] = collections.deque(maxlen=60)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            tail.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code: Optional[int] = proc.wait(timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
        print(f"gpu_check: {name}: stopped after {timeout:.0f} s", flush=True)
    reader.join(timeout=10)
    return {"check": name, "ok": code == 0, "exit_code": code, "timed_out": code is None,
            "seconds": round(time.monotonic() - start, 1), "output_tail": "".join(tail)[-3000:]}


def junit_cases(path: Path) -> List[Dict[str, Any]]:
    """One entry per test of pytest's junit XML: name, outcome, seconds and the failure message."""
    if not path.is_file():
        return []
    cases = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (found.get("message") or "")[:500]
        cases.append({"test": f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}", "outcome": outcome,
                      "seconds": round(float(case.get("time") or 0), 2), "message": message})
    return cases


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def benchmark_rows(path: Path) -> List[Dict[str, Any]]:
    if not path.is_file():
        return []
    keys = ("model", "setting", "config", "batch_size", "images_per_s", "step_median_s", "mfu", "peak_flops",
            "peak_dtype", "cuda_max_alloc_mib", "losses_finite", "speedup_vs_fp32", "error")
    return [{k: row.get(k) for k in keys if k in row} for row in json.loads(path.read_text())["summary"]["train"]]


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(report: Dict[str, Any]) -> str:
    d = report["device"]
    lines = [f"## GPU check ({report['date'][:10]}): {d['name']}", "",
             f"{d['count']} x {d['name']} (compute capability {d['capability']}, {d['memory_gib']} GiB, driver "
             f"{d['driver'] or 'n/a'}); torch {d['torch']}, CUDA {d['cuda']}, cuDNN {d['cudnn']}, Python "
             f"{d['python']}. {report['seconds']:.0f} s in all. Result: **{'passed' if report['ok'] else 'FAILED'}**.",
             "",
             "| check | result | seconds |", "|---|---|---:|"]
    for check in report["checks"]:
        result = "ok" if check["ok"] else ("timed out" if check.get("timed_out") else f"exit {check['exit_code']}")
        lines.append(f"| {check['check']} | {result} | {check['seconds']:.0f} |")
    lines += ["", "| CUDA test | outcome | seconds |", "|---|---|---:|"]
    lines += [f"| {c['test']} | {c['outcome']} | {c['seconds']:.1f} |" for c in report["tests"]]
    if report["probes"]:
        lines += ["", "Probe figures (from the tests above):", ""]
        lines += [f"- `{json.dumps(p, sort_keys=True)}`" for p in report["probes"]]
    if report["benchmark"]:
        lines += ["", "| model | config | batch | images/s | MFU | CUDA max alloc (MiB) | vs fp32 |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for r in report["benchmark"]:
            if "error" in r:
                lines.append(f"| {r['model']} | {r['config']} | failed: {str(r['error'])[:80]} | | | | |")
                continue
            mfu = None if r.get("mfu") is None else 100 * r["mfu"]
            lines.append(f"| {r['model']} | {r['config']} | {r.get('batch_size')} | "
                         f"{_fmt(r.get('images_per_s'), '.1f')} | {_fmt(mfu, '.1f')}% | "
                         f"{_fmt(r.get('cuda_max_alloc_mib'), '.0f')} | {_fmt(r.get('speedup_vs_fp32'), '.2f')} |")
    failed = [c for c in report["tests"] if c["outcome"] in ("failed", "error")]
    if failed:
        lines += ["", "Failures:", ""] + [f"- {c['test']}: {c['message']}" for c in failed]
    for check in report["checks"]:
        if not check["ok"] and check["output_tail"].strip():
            tail = "\n".join(check["output_tail"].strip().splitlines()[-15:])
            lines += ["", f"{check['check']}, last lines:", "", "```", tail, "```"]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda}): "
              f"nothing checked; run it on a machine with an NVIDIA GPU")
        return 0
    out = Path(args.outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start, date = time.monotonic(), datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    env = dict(os.environ, GPU_CHECK_OUT=str(out), PYTHONPATH=str(ROOT))
    for stale in ("probes.jsonl", "pytest_cuda.xml", *(f"benchmark_{m}.json" for m in BENCHMARK_MODELS)):
        (out / stale).unlink(missing_ok=True)
    checks: List[Dict[str, Any]] = []
    missing = [f"{module} ({package})" for module, package in REQUIRED_MODULES.items()
               if importlib.util.find_spec(module) is None]
    checks.append({"check": "python packages", "ok": not missing, "exit_code": 0 if not missing else 1,
                   "seconds": 0.0, "output_tail": "missing: " + ", ".join(missing) if missing else ""})
    if not missing:
        checks.append(_run("CUDA tests", [sys.executable, "-m", "pytest", "-m", "cuda", "tests", "-q", "-rfEs",
                                          "-p", "no:cacheprovider", "--continue-on-collection-errors",
                                          f"--junitxml={out / 'pytest_cuda.xml'}"],
                           args.tests_timeout, env))
        # One benchmark run per model, each with its own report: a phase that runs out of time keeps the others'.
        deadline = time.monotonic() + args.benchmark_timeout
        for model in [] if args.no_benchmark else BENCHMARK_MODELS:
            left = deadline - time.monotonic()
            checks.append(_run(f"benchmark {model}", [
                sys.executable, "scripts/benchmark.py", "--device", "cuda", "--models", model, "--settings",
                args.settings, "--configs", BENCHMARK_CONFIGS, "--steps", str(args.steps), "--no-sr", "--timeout",
                str(max(left, 1.0)), "--json", str(out / f"benchmark_{model}.json"), "--markdown",
                str(out / f"benchmark_{model}.md")], left, env))
    tests = junit_cases(out / "pytest_cuda.xml")
    report = {"date": date, "device": device_info(), "seconds": round(time.monotonic() - start, 1),
              "checks": checks, "tests": tests, "probes": read_jsonl(out / "probes.jsonl"),
              "benchmark": [row for m in BENCHMARK_MODELS for row in benchmark_rows(out / f"benchmark_{m}.json")]}
    report["ok"] = all(c["ok"] for c in checks) and not any(t["outcome"] in ("failed", "error") for t in tests)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))
    print(f"gpu_check: {'passed' if report['ok'] else 'FAILED'} on {report['device']['name']} in "
          f"{report['seconds']:.0f} s; reports in {out / 'gpu_check.md'} and {out / 'gpu_check.json'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
