"""scripts/export.py and --backend onnxruntime of scripts/upscale.py and test.py --model srgan, on the tiny runs of
tests/scripts/conftest.py (a tiny srvgg x4 and a tiny srresnet x2 with BatchNorm)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
from helpers import load_script
from PIL import Image
from upscale_runs import CPU, rgb, run

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed: pip install -e '.[onnx]'")


@pytest.fixture(scope="module")
def export_script():
    return load_script("scripts/export.py")


def levels(folder: Path) -> List[np.ndarray]:
    return [np.asarray(Image.open(p)).astype(int) for p in sorted(folder.rglob("*.png"))]


def test_onnx_export_writes_the_file_and_its_metadata(runs, export_script, capsys, tmp_path):
    checkpoints, _ = runs
    out = tmp_path / "sub" / "srvgg.onnx"
    code, _, err = run(export_script, capsys, ["-n", "tiny_srvgg", "--checkpoints_dir", checkpoints, "-o", out,
                                               "--opset", "18"])
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert (meta["netG"], meta["scale"], meta["value_range"], meta["opset"]) == ("srvgg", "4", "[0, 1]", "18")
    assert float(meta["max_difference"]) < 1e-4


def test_safetensors_export_keeps_the_weights(runs, export_script, capsys, tmp_path):
    safetensors = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    checkpoints, states = runs
    out = tmp_path / "srresnet.safetensors"
    code, _, err = run(export_script, capsys, ["-n", "tiny_srresnet", "--checkpoints_dir", checkpoints, "-o", out,
                                               "--format", "safetensors"])
    assert code == 0, err
    written = safetensors.load_file(str(out))
    assert sorted(written) == sorted(states["tiny_srresnet"])  # safetensors keeps its keys sorted
    assert all(np.array_equal(written[k].numpy(), v.float().numpy()) if v.is_floating_point()
               else np.array_equal(written[k].numpy(), v.numpy()) for k, v in states["tiny_srresnet"].items())
    assert json.loads(out.with_suffix(".json").read_text())["key_layout"] == "toolkit"


def test_onnx_flags_with_safetensors_are_refused(runs, export_script, capsys, tmp_path):
    checkpoints, _ = runs
    code, _, err = run(export_script, capsys, ["-n", "tiny_srvgg", "--checkpoints_dir", checkpoints, "--format",
                                               "safetensors", "--fp16", "-o", tmp_path / "x.safetensors"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--fp16" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["tiny_srvgg", "tiny_srresnet"])
def test_upscale_with_onnxruntime_equals_torch_and_caches_the_export(runs, script, capsys, tmp_path, name):
    checkpoints, _ = runs
    photos = tmp_path / "in"
    photos.mkdir()
    rgb(photos / "a.png", 37, 21, seed=3)
    rgb(photos / "b.png", 9, 30, seed=4)
    cache = checkpoints / name / "export"
    stamps = []
    for backend in ("torch", "onnxruntime", "onnxruntime"):
        code, _, err = run(script, capsys, ["-i", photos, "-o", tmp_path / backend, "-n", name, "--checkpoints_dir",
                                            checkpoints, "-t", "8", "--backend", backend, *CPU])
        assert code == 0, err
        stamps.append([(p.name, p.stat().st_mtime_ns, p.stat().st_ino) for p in cache.glob("*.onnx")])
    torch_levels, onnx_levels = levels(tmp_path / "torch"), levels(tmp_path / "onnxruntime")
    assert len(torch_levels) == 2 and [a.shape for a in torch_levels] == [b.shape for b in onnx_levels]
    assert max(np.abs(a - b).max() for a, b in zip(torch_levels, onnx_levels)) <= 1
    assert stamps[0] == [] and len(stamps[1]) == 1 and stamps[2] == stamps[1]  # exported once, then reused


def test_test_py_with_onnxruntime_equals_torch(runs, test_main, tmp_path):
    checkpoints, _ = runs
    photos = tmp_path / "in"
    photos.mkdir()
    rgb(photos / "a.png", 29, 18, seed=5)
    for backend in ("torch", "onnxruntime"):
        assert test_main([str(a) for a in ["--model", "srgan", "--dataroot", photos, "--name", "tiny_srresnet",
                                           "--checkpoints_dir", checkpoints, "--results_dir", tmp_path / backend,
                                           "--gpu_ids", "-1", "--amp", "none", "--tile", "8",
                                           "--backend", backend]]) == 0
    torch_levels, onnx_levels = levels(tmp_path / "torch"), levels(tmp_path / "onnxruntime")
    assert torch_levels and max(np.abs(a - b).max() for a, b in zip(torch_levels, onnx_levels)) <= 1


def test_onnxruntime_missing_is_one_line_with_the_install_command(runs, script, capsys, tmp_path, monkeypatch):
    checkpoints, _ = runs
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    code, _, err = run(script, capsys, ["-i", rgb(tmp_path / "a.png"), "-o", tmp_path / "out", "-n", "tiny_srvgg",
                                        "--checkpoints_dir", checkpoints, "--backend", "onnxruntime", *CPU])
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 2 and len(lines) == 1 and "pip install -e '.[onnx]'" in lines[0]
    assert not (tmp_path / "out").exists()
