"""`--use_wandb`: a real train.py run in wandb's offline mode (WANDB_MODE=offline, nothing leaves the machine),
checked through what the run directory holds: the run's records (the `.wandb` file, read here with a small reader
of its log format) must carry the run's name, project and options, the losses of loss_log.txt, an image grid of
the visuals whose file exists, the validation metrics of metrics_log.txt, and a clean exit. Also: the one-line
errors without the package and at test time.
"""
from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, require_or_skip

try:
    import wandb  # noqa: F401
    HAVE_WANDB = True
except ImportError:
    HAVE_WANDB = False

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _records(path: Path) -> List[Any]:
    """The protobuf records of a `.wandb` file: a 7-byte header (':W&B', magic, version), then LevelDB's log
    format: 32 KiB blocks of chunks, each (crc32c u32, length u16, type u8: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw = path.read_bytes()
    assert raw[:4] == b":W&B", raw[:7]
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        chunk, pos = raw[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def _history(records: List[Any]) -> List[Dict[str, Any]]:
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]


def _write_images(folder: Path, n: int, side: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def _log_rows(path: Path, key: str) -> List[float]:
    return [float(m.group(1)) for m in re.finditer(rf"\b{key}: ([-\d.]+)", path.read_text(encoding="utf-8"))]


def test_offline_run_records_losses_images_and_metrics(tmp_path) -> None:
    require_or_skip(HAVE_WANDB, "the wandb package is not installed (pip install -e .[wandb])")
    _write_images(tmp_path / "hr", 2, 48)
    _write_images(tmp_path / "val", 1, 32)
    ck = tmp_path / "ck"
    proc = subprocess.run(
        [sys.executable, "train.py", "--model", "srgan", "--dataroot", tmp_path / "hr", "--val_dataroot",
         tmp_path / "val", "--name", "wb", "--checkpoints_dir", ck, "--ngf", "8", "--ndf", "8", "--n_blocks", "1",
         "--netD_head", "conv", "--crop_size", "32", "--batch_size", "1", "--lambda_perceptual", "0",
         "--pretrain_epochs", "1", "--n_epochs", "2", "--n_epochs_decay", "0", "--print_freq", "1", "--display_freq",
         "2", "--display_id", "0", "--gpu_ids", "-1", "--num_threads", "0", "--seed", "0", "--use_wandb",
         "--wandb_project_name", "wb-test"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**ENV, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONFIG_DIR": str(tmp_path / "cfg"),
             "WANDB_CACHE_DIR": str(tmp_path / "cache"), "WANDB_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = ck / "wb"
    runs = sorted((exp / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, sorted(p.name for p in (exp / "wandb").iterdir())
    (log_file,) = runs[0].glob("run-*.wandb")
    records = _records(log_file)
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert (run.display_name, run.project) == ("wb", "wb-test")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert (config["model"], config["n_blocks"], config["use_wandb"]) == ("srgan", 1, True)

    history = _history(records)
    losses = [row for row in history if "loss/G_pixel" in row]
    # 2 images x 2 epochs, a line each (--print_freq 1): the same values as loss_log.txt, at images 1..4
    assert [row["images"] for row in losses] == [1, 2, 3, 4]
    logged = _log_rows(exp / "loss_log.txt", "G_pixel")
    assert [round(row["loss/G_pixel"], 3) for row in losses] == pytest.approx(logged, abs=1e-3)
    assert losses[-1]["loss/G_GAN"] > 0 and losses[0]["loss/G_GAN"] == 0  # adversarial in epoch 2 only

    visuals = [row for row in history if "visuals/path" in row]
    assert [row["images"] for row in visuals] == [2, 4]
    assert visuals[0]["visuals/caption"] == "real_A_up | fake_B | real_B"
    with Image.open(runs[0] / "files" / visuals[0]["visuals/path"]) as grid:
        assert grid.size == (visuals[0]["visuals/width"], visuals[0]["visuals/height"]) == (3 * 34 + 2, 36)

    metrics = [row for row in history if "val/psnr" in row]
    assert [row["epoch"] for row in metrics] == [1, 2]
    assert [row["val/psnr"] for row in metrics] == pytest.approx(_log_rows(exp / "metrics_log.txt", "psnr"),
                                                                 abs=1e-4)
    assert all(0 < row["val/ssim"] <= 1 for row in metrics)
    (exit_record,) = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == 0


def _usage_error(options: Any, args: List[str], capsys: Any) -> str:
    """The one line an option error prints (exit code 2)."""
    with pytest.raises(SystemExit) as info:
        options.parse(args)
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_without_the_package_the_flag_is_one_line_with_the_install_command(tmp_path, monkeypatch, capsys) -> None:
    """Option parsing refuses --use_wandb with exit 2 and the install command where wandb cannot be found."""
    import importlib.util

    from options import TrainOptions

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "wandb" else real_find_spec(name, *args))
    line = _usage_error(TrainOptions(), ["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"),
                                         "--gpu_ids", "-1", "--use_wandb"], capsys)
    assert "--use_wandb needs the wandb package: pip install wandb (or pip install -e .[wandb])" in line, line


def test_use_wandb_at_test_time_is_refused(tmp_path, capsys) -> None:
    from options import TestOptions

    line = _usage_error(TestOptions(), ["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"),
                                        "--gpu_ids", "-1", "--use_wandb"], capsys)
    assert "--use_wandb logs training runs (train.py)" in line, line


def test_display_without_the_package_names_the_install_command(monkeypatch) -> None:
    from util.reports.wandb_display import WandbDisplay

    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(RuntimeError, match=r"pip install wandb"):
        WandbDisplay("p", "n", {}, "/nonexistent", 4)
