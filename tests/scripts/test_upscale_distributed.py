"""scripts/upscale.py over several processes (util/sharding.py): torchrun with 2 gloo ranks on the CPU, two "nodes"
on loopback, and `--gpu_ids 0,1` starting its own processes.

The claims: every input is upscaled by exactly one rank, and the union of the ranks' results equals a single
process's byte for byte; a rerun keeps what is there and does only what is missing (a temporary file left by a
killed write does not count); rank 0 owns -o (a run already writing it refuses the whole job) and prints the one
summary. Every process computes with one thread (--num_threads 1): oneDNN's fp32 sums depend on the thread
count in the last bit, so byte equality needs equal counts.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Set

import pytest
from helpers import ROOT, folder_held, free_port
from upscale_runs import CPU, rgb

from util.cli import run_cli

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--tee", "3"]
# Rank r's lines read "[default<r>]:..."; with --verbose each rank logs "<input> -> <result> (WxH)" per image.
WROTE = re.compile(r"^\[default(\d+)\]:(\S+) -> (\S+) \(\d+x\d+\)$", re.M)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Eight photos of different sizes, so a split by pixels differs from a split by count."""
    folder = tmp_path_factory.mktemp("photos")
    for i, (w, h) in enumerate([(40, 30), (9, 7), (12, 10), (33, 21), (8, 8), (17, 25), (10, 11), (26, 14)]):
        rgb(folder / f"photo{i}.png", w, h, seed=i)
    return folder


def _env() -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _upscale_args(photos: Path, out: Path, checkpoints: Path) -> List[str]:
    return ["scripts/upscale.py", "-i", str(photos), "-o", str(out), "-n", "tiny_srvgg", "--checkpoints_dir",
            str(checkpoints), "--verbose", "--num_threads", "1", *CPU]


def _torchrun(launch: List[str], args: List[str]) -> subprocess.Popen:
    return subprocess.Popen([*TORCHRUN, *launch, *args], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-4000:]
    return out


def _done_by(output: str) -> Counter:
    """How many times each input was upscaled, and by which ranks."""
    return Counter((Path(src).name, int(rank)) for rank, src, _ in WROTE.findall(output))


def _exit_codes(output: str) -> Set[int]:
    """The exit codes of the ranks that exited with one, from torchrun's closing table ("  exitcode  : 2 (pid:
    ...)"). A rank still running when torchrun saw the first failure is terminated by it instead, and is
    listed with a negative code or not at all, so only rank 0's is sure to be there."""
    return {int(code) for code in re.findall(r"^\s+exitcode\s+: (\d+) ", output, re.M)}


def _files(folder: Path) -> Dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def single(runs, photos, tmp_path_factory, script, one_torch_thread) -> Dict[str, bytes]:
    """The results of one process (in-process run), to compare the ranks' union with."""
    checkpoints, _ = runs
    out = tmp_path_factory.mktemp("single") / "out"
    assert run_cli(script.main, ["-i", str(photos), "-o", str(out), "-n", "tiny_srvgg", "--checkpoints_dir",
                                 str(checkpoints), "--num_threads", "1", *CPU]) == 0
    return _files(out)


def test_two_ranks_do_each_file_once_equal_one_process_and_rerun_only_what_is_missing(
        runs, photos, single, tmp_path) -> None:
    checkpoints, _ = runs
    out = tmp_path / "out"
    args = _upscale_args(photos, out, checkpoints)
    output = _finish(_torchrun(["--standalone", "--nproc_per_node", "2"], args))
    done = _done_by(output)
    assert sorted(name for name, _ in done) == sorted(p.name for p in photos.iterdir())  # each input once
    assert set(done.values()) == {1} and {rank for _, rank in done} == {0, 1}  # by one rank each, both ranks
    assert _files(out) == single  # byte for byte
    assert output.count("images upscaled into") == 1 and "8 of 8 images upscaled" in output \
        and "by 2 processes" in output

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    output = _finish(_torchrun(["--standalone", "--nproc_per_node", "2"], args))
    assert not _done_by(output) and "0 of 8 images upscaled" in output and "8 already there, kept" in output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

    (out / "photo3_out.png").unlink()
    # A write killed before its rename: a hidden temporary file that must neither count as the result nor stay.
    (out / ".photo5_out.png.x1y2.tmp").write_bytes(b"\x89PNG half")
    (out / "photo5_out.png").unlink()
    output = _finish(_torchrun(["--standalone", "--nproc_per_node", "2"], args))
    assert sorted(name for name, _ in _done_by(output)) == ["photo3.png", "photo5.png"]
    assert "2 of 8 images upscaled" in output and "6 already there, kept" in output
    assert _files(out) == single  # the temporary file is gone, the two results are back


def test_two_nodes_on_loopback_split_the_folder(runs, photos, single, tmp_path) -> None:
    """Two torchrun invocations, one per "node", rendezvous on 127.0.0.1 and write one folder."""
    checkpoints, _ = runs
    out = tmp_path / "out"
    port = str(free_port())
    nodes = [_torchrun(["--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank), "--master_addr",
                        "127.0.0.1", "--master_port", port], _upscale_args(photos, out, checkpoints))
             for rank in (0, 1)]
    outputs = [_finish(node) for node in nodes]
    # torchrun numbers the local ranks: each node's only process is [default0]; its rank comes from the node.
    per_node = [{name for name, _ in _done_by(output)} for output in outputs]
    assert per_node[0] and per_node[1] and not per_node[0] & per_node[1]
    assert sorted(per_node[0] | per_node[1]) == sorted(p.name for p in photos.iterdir())
    assert _files(out) == single
    assert "8 of 8 images upscaled" in outputs[0] and "images upscaled" not in outputs[1]


def test_an_unreadable_photo_on_any_rank_is_named_in_rank_0_s_one_summary(runs, photos, tmp_path) -> None:
    checkpoints, _ = runs
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos.iterdir():
        (folder / photo.name).write_bytes(photo.read_bytes())
    (folder / "broken.png").write_bytes(b"")  # 0 pixels: the split gives it to the rank with the least work
    proc = _torchrun(["--standalone", "--nproc_per_node", "2"], _upscale_args(folder, tmp_path / "out", checkpoints))
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert len(_done_by(output)) == 8 and "8 of 9 images upscaled" in output
    summary = [line for line in output.splitlines() if "inputs could not be read" in line]
    assert len(summary) == 1 and summary[0].startswith("[default0]:error: 1 of 9 inputs") \
        and summary[0].endswith("broken.png")
    assert output.count("broken.png: the file is empty") == 1  # named by the rank that met it
    assert _exit_codes(output) == {2}


def test_a_rank_that_cannot_write_stops_without_stopping_the_others(runs, photos, tmp_path) -> None:
    """A result path that cannot be written (here a folder in its place) stops the rank that meets it; the
    other finishes its share, and rank 0's summary names the stopped rank: nobody waits for it."""
    checkpoints, _ = runs
    out = tmp_path / "out"
    (out / "photo0_out.png").mkdir(parents=True)
    proc = _torchrun(["--standalone", "--nproc_per_node", "2"], _upscale_args(photos, out, checkpoints))
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    stopped = [line for line in output.splitlines() if "processes stopped early" in line]
    assert len(stopped) == 1 and stopped[0].startswith("[default0]:error: 1 of 2 processes stopped early")
    rank = int(re.search(r"\(process (\d)", stopped[0]).group(1))
    done = _done_by(output)
    assert {r for _, r in done} == {1 - rank}  # the other rank did all of its share...
    assert len([p for p in out.iterdir() if p.is_file()]) == len(done)  # ...and wrote it
    assert _exit_codes(output) == {1}


def test_a_run_already_writing_the_folder_refuses_every_rank(runs, photos, tmp_path) -> None:
    checkpoints, _ = runs
    out = tmp_path / "out"
    out.mkdir()
    with folder_held(out, "upscale.py") as holder:
        proc = _torchrun(["--standalone", "--nproc_per_node", "2"], _upscale_args(photos, out, checkpoints))
        output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    refusals = [line for line in output.splitlines() if f"is in use by upscale.py (PID {holder.pid})" in line]
    assert len(refusals) == 1 and refusals[0].startswith("[default0]:error:")  # rank 0 says it, once
    assert _exit_codes(output) == {2}
    assert list(out.iterdir()) == []


def test_gpu_ids_start_one_process_each_under_the_launcher_s_lock(runs, photos, single, tmp_path, script,
                                                                   monkeypatch, capfd) -> None:
    """`-g 0,1` outside torchrun starts two ranks (util/launcher.py) that split the folder. No GPUs here: the
    machine is made to report GPUs 0 and 1, and the workers run on the CPU (`-g -1` in their arguments); which
    GPU each rank takes (util/device.rank_gpu_ids) is tested with training's (tests/test_distributed.py)."""
    from util import launcher

    checkpoints, _ = runs
    out = tmp_path / "out"
    started = []
    real = launcher.relaunch

    def relaunch(path, argv, nproc, **inherit):
        started.append((Path(path).name, nproc, sorted(inherit["env"])))
        argv = [("-1" if a == "0,1" else a) for a in argv]
        return real(path, argv, nproc, **inherit)

    monkeypatch.setattr(script, "available_gpu_ids", lambda ids: tuple(ids))
    monkeypatch.setattr(launcher, "relaunch", relaunch)
    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    argv = ["-i", str(photos), "-o", str(out), "-n", "tiny_srvgg", "--checkpoints_dir", str(checkpoints),
            "--fp32", "--num_threads", "1", "-g", "0,1"]
    assert run_cli(script.main, argv) == 0
    assert started == [("upscale.py", 2, ["IMAGE_TOOLKIT_HELD_LOCK"])]  # the launcher's lock, passed down
    captured = capfd.readouterr()
    assert "8 of 8 images upscaled" in captured.out and _files(out) == single
    assert "starting one upscaling process each" in captured.out  # the launcher says what its processes do
