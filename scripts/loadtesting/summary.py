"""The figures of a load run, against the issue's targets: statuses (only 200, 4xx for hostile files and 503 for
overflow), accepted images/s and output MP/s against upscale.py's, latency percentiles, how fast 503s come,
the service's peak memory, /healthz's slowest answer; and the markdown table for docs/serving.md."""
from __future__ import annotations

import collections
import statistics
from typing import Any, Dict, List, Optional, Sequence

from benchmarking.report import machine_line, markdown_table_lines

from .clients import LoadResult, Record

TARGETS = {"peak_rss_mib": 2.5 * 1024, "throughput_ratio": 0.9, "healthz_max_s": 0.1}


def percentiles(values: Sequence[float]) -> Optional[Dict[str, float]]:
    """p50, p95, p99 and max (None without values; one value is all of them)."""
    if not values:
        return None
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0], "max": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


def allowed(record: Record) -> bool:
    """200 for a photo, its documented 4xx for a hostile file, 503 for either: nothing else is acceptable."""
    return record.status in ("503", str(record.expected))


def summarize(load: LoadResult, baseline: Dict[str, Any], single_service_s: float) -> Dict[str, Any]:
    accepted = [r for r in load.records if r.status == "200"]
    overflow = [r for r in load.records if r.status == "503"]
    hostile = [r for r in load.records if r.kind != "photo"]
    elapsed = max(load.elapsed_s, 1e-9)
    images_per_s = len(accepted) / elapsed
    output_mp_per_s = sum(r.output_pixels for r in accepted) / 1e6 / elapsed
    health = [r.latency_s for r in load.health]
    ratio = output_mp_per_s / baseline["output_mp_per_s"] if baseline["output_mp_per_s"] else None
    summary = {
        "requests": len(load.records),
        "by_status": dict(sorted(collections.Counter(r.status for r in load.records).items())),
        "hostile_by_case_and_status": dict(sorted(collections.Counter(f"{r.kind}: {r.status}"
                                                                      for r in hostile).items())),
        "unexpected": [{"kind": r.kind, "expected": r.expected, "status": r.status}
                       for r in load.records if not allowed(r)],
        "elapsed_s": load.elapsed_s,
        "cut_clients": load.cut_clients,
        "accepted": {"count": len(accepted), "images_per_s": images_per_s, "output_mp_per_s": output_mp_per_s,
                     "latency_s": percentiles([r.latency_s for r in accepted])},
        "overflow_503": {"count": len(overflow), "latency_s": percentiles([r.latency_s for r in overflow])},
        "hostile_latency_s": percentiles([r.latency_s for r in hostile]),
        "healthz": {"count": len(health), "max_s": max(health) if health else None,
                    "not_200": sum(r.status != "200" for r in load.health)},
        "service_peak_rss_mib": load.rss_peak_mib,
        "upscale_py": baseline,
        "throughput_vs_upscale_py": ratio,
        "single_512x384": {"service_s": single_service_s, "upscale_py_warm_s": baseline["warm_single_s"]},
    }
    summary["targets"] = {
        "only_allowed_statuses": not summary["unexpected"],
        "peak_rss_at_most_2.5_GiB": None if load.rss_peak_mib is None else load.rss_peak_mib <= TARGETS["peak_rss_mib"],
        "throughput_at_least_90%_of_upscale_py": None if ratio is None else ratio >= TARGETS["throughput_ratio"],
        "healthz_within_100_ms": bool(health) and max(health) <= TARGETS["healthz_max_s"],
    }
    return summary


def _s(value: Optional[float], digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _p(stats: Optional[Dict[str, float]]) -> str:
    if stats is None:
        return "n/a"
    return f"{_s(stats['p50'])} / {_s(stats['p95'])} / {_s(stats['p99'])} (max {_s(stats['max'])})"


def markdown_table(report: Dict[str, Any]) -> str:
    """The run's figures as a two-column markdown table, a line on its settings above it."""
    s, settings = report["summary"], report["settings"]
    base = s["upscale_py"]
    rows: List[List[str]] = [
        ["requests by status", ", ".join(f"{k}: {v}" for k, v in s["by_status"].items())],
        ["hostile files (case: status ×count)", "; ".join(f"{k} ×{v}" for k, v in
                                                          s["hostile_by_case_and_status"].items()) or "none sent"],
        ["answers other than 200 / the documented 4xx / 503", str(len(s["unexpected"]))],
        ["accepted images/s (service / upscale.py)", f"{_s(s['accepted']['images_per_s'], 3)} / "
                                                      f"{_s(base['images_per_s'], 3)}"],
        ["output MP/s (service / upscale.py)", f"{_s(s['accepted']['output_mp_per_s'], 3)} / "
                                               f"{_s(base['output_mp_per_s'], 3)}"],
        ["throughput vs upscale.py (output MP/s)", "n/a" if s["throughput_vs_upscale_py"] is None
         else f"{100 * s['throughput_vs_upscale_py']:.0f}%"],
        ["accepted latency p50 / p95 / p99 s", _p(s["accepted"]["latency_s"])],
        ["503 latency p50 / p95 / p99 s", _p(s["overflow_503"]["latency_s"])],
        ["hostile-file latency p50 / p95 / p99 s", _p(s["hostile_latency_s"])],
        ["/healthz slowest answer s (probes, not 200)", f"{_s(s['healthz']['max_s'], 3)} ({s['healthz']['count']}, "
                                                          f"{s['healthz']['not_200']})"],
        ["service peak RSS MiB", _s(s["service_peak_rss_mib"], 0)],
        ["512x384 x4, one request s (service / upscale.py warm)", f"{_s(s['single_512x384']['service_s'])} / "
                                                                   f"{_s(s['single_512x384']['upscale_py_warm_s'])}"],
    ]
    head = (f"{settings['clients']} clients for {settings['seconds']:.0f} s ({s['elapsed_s']:.0f} s with the drain), "
            f"{100 * settings['hostile_share']:.0f}% hostile files, model {settings['model']}, "
            f"{len(settings['photos'])} photos from {settings['images']}.")
    machine = report["machine"]
    busy = machine.get("cpu_busy_at_start")
    load = (f"Before the run other work used {_s(None if busy is None else 100 * busy, 0)}% of the CPU; load average "
            f"{_s(machine.get('load_avg_at_start'))} at the start, {_s(report.get('load_avg_at_end'))} at the end.")
    table = markdown_table_lines(["figure", "value"], rows, [False, True])
    return "\n".join([head, "", machine_line(machine), load, "", *table]) + "\n"
