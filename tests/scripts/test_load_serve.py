"""scripts/load_serve.py: a few seconds of load on a tiny model (the service started by the script itself), the
report's structure and its statuses; and the refusal of a URL that is not this machine's loopback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, load_script
from upscale_runs import rgb

from util.cli import run_cli

SUMMARY_KEYS = {"requests", "by_status", "hostile_by_case_and_status", "unexpected", "elapsed_s", "cut_clients",
                "accepted", "overflow_503", "hostile_latency_s", "healthz", "service_peak_rss_mib", "upscale_py",
                "throughput_vs_upscale_py", "single_512x384", "targets"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two photos of about 0.1 MP (uploaded) and one too small (listed as skipped), in a folder and a subfolder."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "more").mkdir()
    rgb(folder / "a.png", 330, 310, seed=1)
    rgb(folder / "more" / "b.jpg", 320, 320, seed=2)
    rgb(folder / "small.png", 40, 30, seed=3)
    return folder


def test_a_short_load_run_reports_every_figure(runs, photos, tmp_path) -> None:
    checkpoints, _ = runs
    report_json, report_md = tmp_path / "load.json", tmp_path / "load.md"
    command = [sys.executable, "scripts/load_serve.py", "-c", "3", "-t", "2", "--drain_s", "60",
               "--hostile_share", "0.5", "--images", str(photos), "-n", "tiny_srvgg", "--checkpoints_dir",
               str(checkpoints), "--serve_args", "-g -1 --fp32 --num_threads 1", "--upscale_args", "-g -1 --fp32",
               "--json", str(report_json), "--markdown", str(report_md)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads(report_json.read_text())
    summary, settings = report["summary"], report["settings"]
    assert set(summary) == SUMMARY_KEYS
    assert sorted(Path(p).name for p in settings["photos"]) == ["a.png", "b.jpg"]
    assert [Path(s["path"]).name for s in settings["skipped"]] == ["small.png"]
    # Only 200, a documented 4xx for a hostile file, or 503: no 5xx, no transport error.
    assert summary["unexpected"] == []
    assert summary["by_status"] and all(s in ("200", "503") or 400 <= int(s) < 500 for s in summary["by_status"])
    assert sum(summary["by_status"].values()) == summary["requests"]
    assert summary["accepted"]["count"] == summary["by_status"].get("200", 0) > 0
    assert summary["accepted"]["output_mp_per_s"] > 0 and summary["accepted"]["latency_s"]["p99"] > 0
    assert summary["hostile_by_case_and_status"], "half the uploads were meant to be hostile"
    assert summary["healthz"]["count"] > 0 and summary["healthz"]["not_200"] == 0
    assert summary["service_peak_rss_mib"] > 0
    assert summary["upscale_py"]["photos"] == 2 and summary["upscale_py"]["images_per_s"] > 0
    assert summary["single_512x384"]["service_s"] > 0 and summary["single_512x384"]["upscale_py_warm_s"] > 0
    assert summary["targets"]["only_allowed_statuses"] is True
    table = report_md.read_text()
    assert "| requests by status |" in table and "| service peak RSS MiB |" in table
    assert table in done.stdout


@pytest.mark.parametrize("url", ["http://192.0.2.7:8000/", "http://example.com/", "ftp://127.0.0.1/"])
def test_a_url_off_this_machine_is_refused(url, photos, capsys, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # its packages (scripts/ is not a package)
    script = load_script("scripts/load_serve.py")
    capsys.readouterr()
    assert run_cli(script.main, ["--url", url, "--images", str(photos)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loopback" in err[0], err
