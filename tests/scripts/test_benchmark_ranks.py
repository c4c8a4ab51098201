"""scripts/benchmark_ranks.py: its comparison of result folders, and one tiny end-to-end run whose report must be
internally consistent (no timing is judged)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, load_script


@pytest.fixture(scope="module")
def bench():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "scripts"))  # its `benchmarking` package
        yield load_script("scripts/benchmark_ranks.py")


def test_difference_is_the_largest_8_bit_step_and_the_share_of_values_that_differ(bench, tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    one = np.zeros((4, 5, 3), np.uint8)
    other = one.copy()
    other[1, 2, 0], other[3, 4, 2] = 3, 1
    for folder, pixels in ((a, one), (b, other)):
        Image.fromarray(pixels).save(folder / "x.png")
        Image.fromarray(one).save(folder / "y.png")
    assert bench.difference(a, b) == (3, 2 / 120)
    Image.fromarray(one).save(b / "z.png")
    with pytest.raises(RuntimeError, match="different files"):
        bench.difference(a, b)


def test_two_processes_against_one_end_to_end(tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (24 + 8 * i, 32, 3), dtype=np.uint8)).save(photos / f"p{i}.jpg")
    report_path = tmp_path / "ranks.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "scripts/benchmark_ranks.py", "--photos", str(photos), "--count", "3",
                           "--downscale", "2", "--checkpoints_dir", str(tmp_path / "ck"), "--json", str(report_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["photos"].endswith("(16x12 ... 16x20)") and report["largest_difference_levels"] <= 1
    for n, row in report["processes"].items():
        (run,) = report["runs"][n]
        assert row["wall_s"] == run["run"]["seconds"] and row["fixed_s"] == run["rerun"]["seconds"]
        assert row["upscaling_s"] == pytest.approx(row["wall_s"] - row["fixed_s"], abs=0.011)
    one, two = report["processes"]["1"], report["processes"]["2"]
    assert report["speedup_wall"] == pytest.approx(one["wall_s"] / two["wall_s"], abs=0.001)
