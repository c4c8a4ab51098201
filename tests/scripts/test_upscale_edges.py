"""scripts/upscale.py and the zoo install at their edges (issue 22, items 2, 3, 5, 7, 9, 10, 12, 14): special files
in an input folder and as -i / --from-file, weights that are not numbers, degenerate --outscale, -o that is not
a folder, the count of results a full disk leaves, the one-line refusal of a code-carrying pickle, tiles.

The special files are real (a named pipe, a dangling link, a link loop, a link to /dev/zero, a folder called
x.png), and the commands that meet them run as real processes with a time limit: reading a pipe or /dev/zero
would hang or never end, which only a real process shows.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch
from helpers import ROOT
from PIL import Image
from upscale_runs import CPU, TINY_SRVGG, rgb, run

from models.inference.published_weights import to_toolkit_state_dict
from models.training.checkpoints import load_into, weights_problem
from models import networks
from options import upscale_options
from util.download import SR_MODELS
from util.errors import CheckpointError, OptionError

UPSCALE = ROOT / "scripts" / "upscale.py"
DOWNLOAD = ROOT / "scripts" / "download.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def process(script_path: Path, *args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python SCRIPT ARGS` in a process of its own; a hang (a pipe being read) fails the test at `timeout`."""
    return subprocess.run([sys.executable, str(script_path), *map(str, args)], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def special_files(folder: Path) -> List[str]:
    """Entries with image names that are not image files, made for real; their names, sorted."""
    folder.mkdir(exist_ok=True)
    os.mkfifo(folder / "pipe.png")
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "dir.png").mkdir()
    return sorted(["pipe.png", "dangling.png", "loop.png", "zero.png", "dir.png"])


# ---- item 3: a folder's unreadable entries are named and counted ------------------------------------------------


def test_special_entries_of_a_folder_are_named_counted_and_exit_2(runs, tmp_path):
    checkpoints, _ = runs
    photos = tmp_path / "photos"
    specials = special_files(photos)
    rgb(photos / "good.png")
    (photos / "clip.gif").write_bytes(b"GIF89a")  # not an image name here: ignored, and named in the log
    proc = process(UPSCALE, "-i", photos, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--checkpoints_dir",
                   checkpoints, *CPU)
    assert proc.returncode == 2, proc.stderr
    assert os.listdir(tmp_path / "out") == ["good_out.png"]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {len(specials)} of {len(specials) + 1} inputs could not be read")
    for name, what in zip(specials, ["symbolic link to", "folder", "symbolic link loop", "named pipe",
                                     "character device (/dev/zero)"]):
        assert str(photos / name) in last
        assert any(str(photos / name) in line and what in line for line in proc.stdout.splitlines()), proc.stdout
    assert "ignoring 1 file(s) whose names are not image names: clip.gif" in proc.stdout


# ---- item 10: -i and --from-file say what a special path is -----------------------------------------------------


def test_input_and_from_file_name_what_a_special_path_is(runs, tmp_path):
    checkpoints, _ = runs
    special_files(tmp_path)
    for name, what in [("pipe.png", "is a named pipe (FIFO), not a file"),
                       ("zero.png", "is a character device (/dev/zero), not a file"),
                       ("loop.png", "is a symbolic link loop")]:
        proc = process(UPSCALE, "-i", tmp_path / name, "-o", tmp_path / "out", "-n", "tiny_srvgg",
                       "--checkpoints_dir", checkpoints, *CPU)
        assert proc.returncode == 2 and proc.stderr.strip() == f"error: -i {tmp_path / name}: it {what}; give an " \
                                                               f"image file or a folder of images", proc.stderr
    for name, what in [("dir.png", "is a folder, not a file"), ("pipe.png", "is a named pipe (FIFO), not a file"),
                       ("zero.png", "is a character device (/dev/zero), not a file")]:
        proc = process(DOWNLOAD, "model", "sr", "gan-translate-x4", "--checkpoints_dir", tmp_path / "zoo",
                       "--from-file", tmp_path / name)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == f"error: --from-file {tmp_path / name}: it {what}; give the " \
                                                       f"downloaded file itself"
    assert not (tmp_path / "out").exists() and not (tmp_path / "zoo" / "gan-translate-x4").exists()


# ---- item 12: a code-carrying pickle gets one line, no torch warning before it -----------------------------------


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo payload ran",))


def test_a_code_pickle_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "x4.pth"
    with open(bad, "wb") as f:
        pickle.dump(_Payload(), f, protocol=4)  # protocol 4: torch warns about it before refusing
    proc = process(DOWNLOAD, "model", "sr", "gan-translate-x4", "--checkpoints_dir", tmp_path / "zoo",
                   "--from-file", bad)
    assert proc.returncode == 2 and "payload ran" not in proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {bad} is not a network state_dict that can be loaded safely")


# ---- item 2: weights that are not finite floats -----------------------------------------------------------------


def _zoo_state() -> dict:
    state = torch.load(ROOT / "models" / "zoo" / "gan-translate-x4.pth", weights_only=True)
    return state.get("params", state)


@pytest.mark.parametrize("kind, message", [("nan", "tensor conv_first.weight holds NaN values"),
                                           ("inf", "tensor conv_first.weight holds infinite values"),
                                           ("int32", "tensor conv_first.weight is int32, not floating point")])
def test_weights_that_are_not_finite_floats_are_refused(tmp_path, kind, message):
    state = _zoo_state()
    if kind == "int32":
        bad = {k: torch.zeros(v.shape, dtype=torch.int32) for k, v in state.items()}
    else:
        bad = {k: torch.full_like(v, float(kind)) for k, v in state.items()}
    path = tmp_path / f"{kind}.pth"
    torch.save(bad, path)
    proc = process(DOWNLOAD, "model", "sr", "gan-translate-x4", "--checkpoints_dir", tmp_path / "zoo",
                   "--from-file", path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {path}: {message}: not usable weights of " \
                                                           f"gan-translate-x4 (a damaged file?)", proc.stderr
    assert not (tmp_path / "zoo" / "gan-translate-x4" / "latest_net_G.pth").exists()
    with pytest.raises(CheckpointError, match=message):  # the converter alone, as --pretrained_G meets it too
        to_toolkit_state_dict(bad, SR_MODELS.get("gan-translate-x4"), str(path))


def test_a_run_with_nan_weights_is_refused_by_upscale_and_load_into(runs, tmp_path):
    checkpoints, states = runs
    run_dir = tmp_path / "ck" / "diverged"
    run_dir.mkdir(parents=True)
    (run_dir / "train_opt.json").write_text(json.dumps({**TINY_SRVGG, "name": "diverged", "input_nc": 3,
                                                        "output_nc": 3}))
    nan = {k: v.clone() for k, v in states["tiny_srvgg"].items()}
    key = list(nan)[-1]
    nan[key][0] = float("nan")
    torch.save(nan, run_dir / "latest_net_G.pth")
    photo = rgb(tmp_path / "photo.png")
    proc = process(UPSCALE, "-i", photo, "-o", tmp_path / "out", "-n", "diverged", "--checkpoints_dir",
                   tmp_path / "ck", *CPU)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (f"error: {run_dir / 'latest_net_G.pth'}: tensor {key} holds NaN "
                                                    f"values: the file is damaged or its training diverged; use "
                                                    f"another checkpoint")
    net = networks.define_G(3, 3, 8, "srvgg", "none", n_conv=1, scale=4)
    with pytest.raises(CheckpointError, match=f"tensor {key} holds NaN values"):
        load_into(net, nan, "nan.pth")
    assert weights_problem(states["tiny_srvgg"]) is None


# ---- item 5: degenerate output sizes, animated inputs -----------------------------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("outscale, message", [("1e-9", "makes the 13x10 image 0x0: under one pixel"),
                                               ("0.01", "makes the 13x10 image 0x0: under one pixel"),
                                               ("1e6", "would become 13000000x10000000 (130,000,000,000,000 "
                                                       "pixels), over the limit of 268,435,456 pixels")])
def test_an_outscale_out_of_bounds_is_refused_before_any_work(script, runs, capsys, tmp_path, monkeypatch,
                                                              outscale, message):
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png")
    monkeypatch.setattr(script, "load_upscaler", lambda *a, **k: pytest.fail("the network was loaded"))
    code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", "tiny_srvgg", "-s", outscale,
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("one_torch_thread")
def test_max_output_pixels_is_the_limit(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png")  # 13x10 -> 52x40 = 2080 pixels
    args = ["-i", photo, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints, *CPU]
    code, _, err = run(script, capsys, [*args, "--max_output_pixels", "2079"])
    assert code == 2 and "over the limit of 2,079 pixels" in err
    code, _, err = run(script, capsys, [*args, "--max_output_pixels", "2080"])
    assert code == 0, err


@pytest.mark.usefixtures("one_torch_thread")
def test_an_animated_gif_says_only_its_first_frame_is_used(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    frames = [Image.new("RGB", (12, 10), colour) for colour in ("red", "green", "blue")]
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    code, out, err = run(script, capsys, ["-i", gif, "-o", tmp_path / "out", "-n", "tiny_srvgg",
                                          "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    assert f"{gif} is animated (3 frames): only its first frame is upscaled" in out + err


# ---- items 7 and 9: -o that is not a folder, and what a full disk leaves -----------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
def test_output_that_is_a_file_or_cannot_be_made_is_one_line(script, runs, capsys, tmp_path, monkeypatch):
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png")
    taken = tmp_path / "taken"
    taken.write_text("mine")
    args = ["-i", photo, "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints, *CPU]
    code, _, err = run(script, capsys, [*args, "-o", taken])
    assert (code, err.strip()) == (2, f"error: -o {taken}: it is a file, not a folder: choose a folder for the "
                                      f"results")
    assert taken.read_text() == "mine"

    def read_only(path, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(script.os, "makedirs", read_only)
    code, _, err = run(script, capsys, [*args, "-o", tmp_path / "ro" / "out"])
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: -o {tmp_path / 'ro' / 'out'}: cannot create the folder (Read-only file system)")


@pytest.mark.usefixtures("one_torch_thread")
def test_a_full_disk_counts_the_results_written_before_it(script, runs, capsys, tmp_path, monkeypatch):
    checkpoints, _ = runs
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        rgb(photos / name)
    real_save, calls = script.save_image, []

    def fill_the_disk_at_the_fourth(path, image, quality):
        calls.append(path)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, image, quality)

    monkeypatch.setattr(script, "save_image", fill_the_disk_at_the_fourth)
    code, _, err = run(script, capsys, ["-i", photos, "-o", tmp_path / "out", "-n", "tiny_srvgg",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 1 and "the 3 results written before it are intact" in err, err
    assert sorted(os.listdir(tmp_path / "out")) == ["a_out.png", "b_out.png", "c_out.png"]


# ---- item 14: tiles ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
def test_tiny_tiles_are_refused_and_short_context_warns(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png", w=24, h=20)
    args = ["-i", photo, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints, *CPU]
    code, _, err = run(script, capsys, [*args, "--tile", "1"])
    assert code == 2 and err.startswith("error: --tile 1 is below 8 LR pixels") and "--tile 8 or more" in err
    code, out, err = run(script, capsys, [*args, "--tile", "8", "--tile_pad", "0"])
    assert code == 0, err
    assert "--tile_pad 0 is below the 3 LR pixels of context srvgg needs for exact tiles" in out + err
    code, out, err = run(script, capsys, [*args, "--tile", "8", "--tile_pad", "3"])
    assert code == 0 and "below the" not in out + err and "times the useful pixels" not in out + err
    code, out, err = run(script, capsys, [*args, "--tile", "8", "--tile_pad", "8"])
    assert code == 0 and "--tile 8 with 8 pixels of context computes up to 9 times the useful pixels" in out + err
    with pytest.raises(OptionError, match="--tile 2 is below 8 LR pixels"):  # test.py's --tile, same rule
        upscale_options("tiny_srvgg", str(checkpoints), args=["--gpu_ids", "-1", "--tile", "2"])
