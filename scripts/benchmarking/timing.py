"""Statistics over the measurements: percentiles of step times, and the summary rows (medians over the
repeats, speed-ups, MFU).

Medians, not means: one step slowed by other work on a shared machine must not move the figure.
"""
from __future__ import annotations

import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .cases import BEFORE, SR_SCALE


def percentile_summary(times: Sequence[float]) -> Dict[str, float]:
    """Median, p10 and p90 of step times (p10/p90 fall back to min/max for fewer than 2 samples)."""
    median = statistics.median(times)
    if len(times) >= 2:
        cuts = statistics.quantiles(times, n=10, method="inclusive")
        p10, p90 = cuts[0], cuts[-1]
    else:
        p10 = p90 = times[0]
    return {"median": median, "p10": p10, "p90": p90}


def _median_of(rows: Sequence[Dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def _max_of(rows: Sequence[Dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in rows if r.get(key) is not None]
    return max(values) if values else None


def _ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    return numerator / denominator if numerator and denominator else None


def _grouped(results: Sequence[Dict[str, Any]], keys: Sequence[str]) -> Dict[Tuple[Any, ...], List[Dict[str, Any]]]:
    groups: Dict[Tuple[Any, ...], List[Dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(tuple(result.get(k) for k in keys), []).append(result)
    return groups


def summarize_train(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per model, setting and config: medians over the repeats, speed-ups against `before` and
    `fp32` of the same model and setting, and the MFU from the FLOPs and the measured peak."""
    rows: List[Dict[str, Any]] = []
    for (model, setting, config), group in _grouped(results, ("model", "setting", "config")).items():
        ok = [r for r in group if "error" not in r]
        row: Dict[str, Any] = {"model": model, "setting": setting, "config": config, "tree": group[0].get("tree"),
                               "measured": len(ok), "failed": len(group) - len(ok)}
        if not ok:
            row["error"] = group[0]["error"]
            rows.append(row)
            continue
        first = ok[0]
        step = _median_of(ok, "step_median_s")
        row.update({k: first.get(k) for k in ("amp", "channels_last", "compile", "batch_size", "vgg_weights")
                    if k in first})
        row.update(step_median_s=step, images_per_s=first["batch_size"] / step,
                   peak_rss_mib=_max_of(ok, "peak_rss_mib"), cuda_max_alloc_mib=_max_of(ok, "cuda_max_alloc_mib"),
                   flops_per_step=first.get("flops_per_step"), peak_flops=_median_of(ok, "peak_flops"),
                   peak_dtype=first.get("peak_dtype"), losses_finite=all(r.get("losses_finite") is not False
                                                                          for r in ok))
        rows.append(row)
    by_key = {(r["model"], r["setting"], r["config"]): r for r in rows}
    for row in rows:
        if row.get("step_median_s") is None:
            continue
        if row.get("compile") or row["flops_per_step"] is None:
            # The counter cannot see inside compiled kernels (it counts none or only the parts left eager); the
            # model's FLOPs are the same in eager mode, so an eager config of the same model supplies them.
            donor = next((r for r in rows if (r["model"], r["setting"], r["tree"]) == (row["model"], row["setting"],
                          row["tree"]) and r.get("flops_per_step") and not r.get("compile")), None)
            if donor is not None:
                row.update(flops_per_step=donor["flops_per_step"], flops_from=donor["config"])
        row["mfu"] = (row["flops_per_step"] / row["step_median_s"] / row["peak_flops"]
                      if row["flops_per_step"] and row["peak_flops"] else None)
        for reference in (BEFORE, "fp32"):
            other = by_key.get((row["model"], row["setting"], reference))
            if other is not None and other is not row:
                row[f"speedup_vs_{reference}"] = _ratio(other.get("step_median_s"), row["step_median_s"])
    return rows


def summarize_sr(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per SR generator, setting, mode and config: median seconds over repeats, MP/s, peak memory, the
    FLOPs (useful, and computed with the tiles' overlap), MFU against the measured peak, speed-up."""
    rows: List[Dict[str, Any]] = []
    for (net, setting, mode, config), group in _grouped(results, ("netG", "setting", "mode", "config")).items():
        first = group[0]
        row: Dict[str, Any] = {"netG": net, "setting": setting, "mode": mode, "config": config,
                               "tree": first.get("tree"), "image_size": first.get("image_size"),
                               "tile": first.get("tile") if mode == "tiled" else 0}
        if first.get("skipped"):
            row["skipped"] = first["skipped"]
            rows.append(row)
            continue
        ok = [r for r in group if "error" not in r]
        row.update(measured=len(ok), failed=len(group) - len(ok))
        if not ok:
            row["error"] = first["error"]
            rows.append(row)
            continue
        seconds = _median_of(ok, "seconds")
        w, h = ok[0]["input_size"]
        keep = ("amp", "channels_last", "compile", "backend", "inference", "architecture", "tile_used", "head_tile_used", "tile_pad_used",
                "flops_useful", "flops_computed", "overlap", "peak_dtype")
        row.update({k: ok[0].get(k) for k in keep})
        peak, fp32_peak = _median_of(ok, "peak_flops"), _median_of(ok, "peak_flops_fp32")
        useful, computed = ok[0].get("flops_useful"), ok[0].get("flops_computed")
        row.update(seconds=seconds, input_mp_per_s=w * h / 1e6 / seconds,
                   output_mp_per_s=w * h * SR_SCALE**2 / 1e6 / seconds, peak_rss_mib=_max_of(ok, "peak_rss_mib"),
                   cuda_max_alloc_mib=_max_of(ok, "cuda_max_alloc_mib"), peak_flops=peak,
                   mfu=useful / seconds / peak if useful and peak else None,
                   mfu_computed=computed / seconds / peak if computed and peak else None,
                   peak_flops_fp32=fp32_peak, mfu_fp32=useful / seconds / fp32_peak if useful and fp32_peak else None,
                   cpu_busy_others=_max_of(ok, "cpu_busy_others_during"))
        rows.append(row)
    by_key = {(r["netG"], r["setting"], r["mode"], r["config"]): r for r in rows}
    for row in rows:
        before = by_key.get((row["netG"], row["setting"], row["mode"], BEFORE))
        if before is not None and before is not row and row.get("seconds"):
            row["speedup_vs_before"] = _ratio(before.get("seconds"), row["seconds"])
    return rows
