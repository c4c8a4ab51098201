"""scripts/upscale.py: one-command photo upscaling with a trained run or an SR zoo model.

The models are tiny networks saved as checkpoint folders (tests/scripts/upscale_runs.py, fixtures in
tests/scripts/conftest.py), as train.py and `download.py model sr` leave them, so every run takes a second or two. Runs are in-process
through `run_cli(main, argv)` (exit code, stdout, stderr as a user sees them); one real subprocess checks the
exit status of a run that skips an unreadable image.
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np
import pytest
import torch
from helpers import REFERENCE, ROOT, folder_held, require_or_skip
from PIL import Image
from upscale_runs import CPU, GENERAL, TINY_SRRESNET, TINY_SRVGG, WDN, net_of, rgb, run, save_run

from models import networks
from models.inference import load_upscaler
from models.inference.resolve import super_resolve
from models.inference.upscaler import Upscaler, interpolate_state_dicts, output_size
from options import upscale_options
from util import download
from util.images import output_stems, read_image


# ---- a file, a folder ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("name, options", [("tiny_srvgg", TINY_SRVGG), ("tiny_srresnet", TINY_SRRESNET)])
def test_a_file_is_upscaled_as_the_network_computes_it(script, runs, capsys, tmp_path, name, options):
    checkpoints, states = runs
    photo = rgb(tmp_path / "photo.png")
    code, out, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", name,
                                          "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    result = read_image(str(tmp_path / "out" / "photo_out.png"))
    scale = options["scale"]
    assert result.size == (13 * scale, 10 * scale)
    with torch.no_grad():
        expected = super_resolve(net_of(states[name], options), read_image(str(photo)), scale)
    assert torch.equal(result.pixels, expected.pixels)
    assert "1 of 1 images upscaled" in out and err == ""


@pytest.mark.usefixtures("one_torch_thread")
def test_a_folder_keeps_formats_and_names_never_collide(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("photo.jpg", "photo.png", "beach.webp", "scan.bmp"):
        rgb(photos / name)
    (photos / "notes.txt").write_text("not an image")
    (photos / "sub").mkdir()
    rgb(photos / "sub" / "inner.png")  # subfolders are not read
    code, _, err = run(script, capsys, ["-i", photos, "-o", tmp_path / "auto", "-n", "tiny_srvgg",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "auto")) == ["beach_out.webp", "photo_jpg_out.jpg", "photo_png_out.png",
                                                     "scan_out.png"]
    code, _, err = run(script, capsys, ["-i", photos, "-o", tmp_path / "png", "-n", "tiny_srvgg", "--ext", "png",
                                        "--suffix", "", "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "png")) == ["beach.png", "photo_jpg.png", "photo_png.png", "scan.png"]
    for name in os.listdir(tmp_path / "png"):
        assert read_image(str(tmp_path / "png" / name)).size == (52, 40)
    auto = tmp_path / "auto"
    with Image.open(auto / "photo_jpg_out.jpg") as jpg, Image.open(auto / "beach_out.webp") as webp:
        assert (jpg.format, webp.format) == ("JPEG", "WEBP")


def test_output_names_are_unique_ignoring_case():
    assert output_stems(["a/photo.jpg", "b/Photo.PNG", "c/photo_jpg.png", "d/x.png"], "out") == [
        "photo_jpg_out", "Photo_PNG_out", "photo_jpg_out-2", "x_out"]
    assert output_stems(["photo.jpg"], "") == ["photo"]


@pytest.mark.usefixtures("one_torch_thread")
def test_a_result_never_replaces_an_input(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    rgb(tmp_path / "photo.png")
    code, _, err = run(script, capsys, ["-i", tmp_path, "-o", tmp_path, "--suffix", "", "-n", "tiny_srvgg",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 2 and "would replace that input" in err and len(err.strip().splitlines()) == 1
    assert read_image(str(tmp_path / "photo.png")).size == (13, 10)


# ---- --outscale ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("outscale", [3.5, 1.5, 4, 0.3])
def test_outscale_gives_round_w_times_s(script, runs, capsys, tmp_path, outscale):
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png", w=15, h=11)
    code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--outscale",
                                        outscale, "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    with Image.open(tmp_path / "out" / "photo_out.png") as result:
        assert result.size == (round(15 * outscale), round(11 * outscale))
    assert output_size((15, 11), 4, outscale) == (round(15 * outscale), round(11 * outscale))


@pytest.mark.usefixtures("one_torch_thread")
def test_outscale_resizes_the_network_output_with_lanczos(script, runs, capsys, tmp_path):
    """x2 by an x4 network is the x4 output, downscaled by PIL's Lanczos (not a bicubic upscale of the input)."""
    checkpoints, states = runs
    photo = rgb(tmp_path / "photo.png", w=16, h=12)
    code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", "tiny_srvgg", "-s", "2",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    with torch.no_grad():
        x4 = super_resolve(net_of(states["tiny_srvgg"], TINY_SRVGG), read_image(str(photo)), 4, size=(64, 48))
    planes = [Image.fromarray(p.numpy()).resize((32, 24), Image.Resampling.LANCZOS) for p in x4.pixels]
    expected = np.clip(np.stack([np.asarray(p) for p in planes]), 0, 1)  # (3, 24, 32)
    got = read_image(str(tmp_path / "out" / "photo_out.png")).pixels.numpy()
    assert np.abs(got - expected).max() <= 1.5 / 255  # the x4 output was rounded to 8 bit before this resize


# ---- --denoise ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strength", [0.3, 0.0, 1.0])
def test_denoise_interpolates_the_weights_as_real_esrgan(script, runs, strength):
    """The network --denoise runs holds dn * realesr-general-x4v3 + (1 - dn) * realesr-general-wdn-x4v3."""
    checkpoints, states = runs
    upscaler = load_upscaler(upscale_options(GENERAL, str(checkpoints), args=["--gpu_ids", "-1", "--amp", "none"]),
                             strength)
    loaded = networks.unwrap(upscaler.net).state_dict()
    assert list(loaded) == list(states[GENERAL])
    for key, general in states[GENERAL].items():
        expected = strength * general + (1 - strength) * states[WDN][key]
        torch.testing.assert_close(loaded[key], expected, rtol=0, atol=1e-6, msg=key)
    mixed = interpolate_state_dicts(states[GENERAL], states[WDN], strength)
    assert all(torch.equal(mixed[k], loaded[k]) for k in mixed)


@pytest.mark.usefixtures("one_torch_thread")
def test_denoise_runs_and_is_refused_for_a_model_without_a_twin(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png")
    code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", GENERAL, "--denoise", "0.5",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    assert read_image(str(tmp_path / "out" / "photo_out.png")).size == (52, 40)
    code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out2", "-n", "tiny_srvgg", "-dn", "0.5",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "tiny_srvgg has none" in err and GENERAL in err
    assert not (tmp_path / "out2").exists()


# ---- kinds of image -----------------------------------------------------------------------------------------


def kinds(folder: Path) -> Dict[str, Tuple[int, bool, int]]:
    """Inputs of every kind -> (colour channels, has alpha, bit depth) they hold."""
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8), "L").save(folder / "grey.png")
    Image.fromarray(rng.integers(0, 256, (10, 12, 2), dtype=np.uint8), "LA").save(folder / "grey_alpha.png")
    Image.fromarray(rng.integers(0, 256, (10, 12, 4), dtype=np.uint8), "RGBA").save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 65536, (10, 12), dtype=np.uint16)).save(folder / "grey16.png")
    cv2.imwrite(str(folder / "rgb16.png"), rng.integers(0, 65536, (10, 12, 3), dtype=np.uint16))
    cv2.imwrite(str(folder / "rgba16.png"), rng.integers(0, 65536, (10, 12, 4), dtype=np.uint16))
    return {"grey": (1, False, 8), "grey_alpha": (1, True, 8), "rgba": (3, True, 8), "grey16": (1, False, 16),
            "rgb16": (3, False, 16), "rgba16": (3, True, 16)}


@pytest.mark.usefixtures("one_torch_thread")
def test_alpha_grey_and_16_bit_keep_their_kind(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    photos = tmp_path / "photos"
    photos.mkdir()
    expected = kinds(photos)
    code, _, err = run(script, capsys, ["-i", photos, "-o", tmp_path / "out", "-n", "tiny_srvgg", "-s", "2.5",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    for stem, (channels, alpha, depth) in expected.items():
        source = read_image(str(photos / f"{stem}.png"))
        assert (source.channels, source.alpha is not None, source.bit_depth) == (channels, alpha, depth), stem
        result = read_image(str(tmp_path / "out" / f"{stem}_out.png"))
        assert (result.channels, result.alpha is not None, result.bit_depth) == (channels, alpha, depth), stem
        assert result.size == (30, 25), stem


@pytest.mark.usefixtures("one_torch_thread")
def test_a_format_that_cannot_hold_the_kind_falls_back_to_png(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    photos = tmp_path / "photos"
    photos.mkdir()
    kinds(photos)
    rgb(photos / "plain.png")
    code, out, err = run(script, capsys, ["-i", photos, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--ext", "jpg",
                                          "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    written = sorted(os.listdir(tmp_path / "out"))
    assert written == ["grey16_out.png", "grey_alpha_out.png", "grey_out.jpg", "plain_out.jpg", "rgb16_out.png",
                       "rgba16_out.png", "rgba_out.png"]
    assert "JPEG has no alpha channel; written as PNG" in out
    with Image.open(tmp_path / "out" / "grey_out.jpg") as grey:
        assert grey.mode == "L"


# ---- failures -----------------------------------------------------------------------------------------------


def broken_inputs(photos: Path) -> None:
    rgb(photos / "a_good.png", seed=1)
    good_jpeg = photos / "b_truncated.jpg"
    rgb(good_jpeg, w=64, h=64, seed=2)
    good_jpeg.write_bytes(good_jpeg.read_bytes()[:200])
    (photos / "c_empty.png").write_bytes(b"")
    rgb(photos / "d_good.jpg", seed=3)


@pytest.mark.usefixtures("one_torch_thread")
def test_unreadable_inputs_are_named_skipped_and_counted(script, runs, capsys, tmp_path):
    checkpoints, _ = runs
    photos = tmp_path / "photos"
    photos.mkdir()
    broken_inputs(photos)
    code, out, err = run(script, capsys, ["-i", photos, "-o", tmp_path / "out", "-n", "tiny_srvgg",
                                          "--checkpoints_dir", checkpoints, *CPU])
    assert code == 2
    assert sorted(os.listdir(tmp_path / "out")) == ["a_good_out.png", "d_good_out.jpg"]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 2 of 4 inputs could not be read")
    assert "b_truncated.jpg" in lines[0] and "c_empty.png" in lines[0]
    assert "c_empty.png: the file is empty" in out and "2 of 4 images upscaled" in out


def test_the_exit_status_of_a_run_with_an_unreadable_input(runs, tmp_path):
    checkpoints, _ = runs
    photos = tmp_path / "photos"
    photos.mkdir()
    broken_inputs(photos)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "upscale.py"), "-i", str(photos), "-o",
                           str(tmp_path / "out"), "-n", "tiny_srvgg", "--checkpoints_dir", str(checkpoints), *CPU],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "b_truncated.jpg" in done.stderr
    assert len(os.listdir(tmp_path / "out")) == 2


@pytest.mark.usefixtures("one_torch_thread")
def test_a_failed_write_keeps_what_was_written(script, runs, capsys, tmp_path, monkeypatch):
    checkpoints, _ = runs
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        rgb(photos / name)
    real_save, calls = script.save_image, []

    def save_then_fill_the_disk(path, image, quality):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, f"cannot write {path}: No space left on device")
        real_save(path, image, quality)

    monkeypatch.setattr(script, "save_image", save_then_fill_the_disk)
    code, _, err = run(script, capsys, ["-i", photos, "-o", tmp_path / "out", "-n", "tiny_srvgg",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 1 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert os.listdir(tmp_path / "out") == ["a_out.png"]
    assert read_image(str(tmp_path / "out" / "a_out.png")).size == (52, 40)


@pytest.mark.parametrize("flags, message", [
    (["--outscale", "0"], "--outscale: must be a positive number"),
    (["--outscale", "-2"], "--outscale: must be a positive number"),
    (["--outscale", "nan"], "--outscale: must be a positive number"),
    (["--denoise", "1.5"], "--denoise 1.5: the strength must be in [0, 1]"),
    (["--tile", "-1"], "--tile: must be >= 0"),
    (["--quality", "101"], "--quality must be in 1..100"),
    (["--ext", "gif"], "--ext: invalid choice"),
])
def test_bad_options_exit_2_with_one_line(script, runs, capsys, tmp_path, flags, message):
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png")
    code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", "tiny_srvgg",
                                        "--checkpoints_dir", checkpoints, *CPU, *flags])
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, message", [
    ("no_such_model", "-n no_such_model: no model"),
    ("facades_pix2pix", "is a --model pix2pix run, which does not upscale"),
])
def test_a_model_that_does_not_exist_or_does_not_upscale(script, runs, capsys, tmp_path, name, message):
    checkpoints, _ = runs
    code, _, err = run(script, capsys, ["-i", rgb(tmp_path / "photo.png"), "-o", tmp_path / "out", "-n", name,
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err
    if name == "no_such_model":
        assert "zoo: " in err and "tiny_srvgg" in err  # what could have been meant
    assert not (tmp_path / "out").exists()


def test_a_missing_zoo_model_offline_says_how_to_install_it(script, capsys, tmp_path, forbid_network):
    code, _, err = run(script, capsys, ["-i", rgb(tmp_path / "photo.png"), "-o", tmp_path / "out",
                                        "-n", "realesrgan-x4plus", "--checkpoints_dir", tmp_path / "empty", *CPU])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "RealESRGAN_x4plus.pth" in err
    assert "python scripts/download.py model sr realesrgan-x4plus --from-file PATH" in err
    assert forbid_network, "the zoo model should have been fetched from the network"
    assert not (tmp_path / "empty" / "realesrgan-x4plus").exists()


@pytest.mark.usefixtures("one_torch_thread")
def test_tiles_give_the_whole_image_result(script, runs, capsys, tmp_path):
    """tile_pad 4 covers the tiny srvgg's receptive field (3 convolutions): tiles change nothing but rounding."""
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png", w=21, h=17)
    results = []
    for tile in ("0", "8"):  # 8: the smallest tile (models/inference/tiles.MIN_TILE); 3 x 3 tiles here
        out = tmp_path / f"tile{tile}"
        code, _, err = run(script, capsys, ["-i", photo, "-o", out, "-n", "tiny_srvgg", "--tile", tile,
                                            "--tile_pad", "4", "--checkpoints_dir", checkpoints, *CPU])
        assert code == 0, err
        results.append(read_image(str(out / "photo_out.png")).pixels)
    assert (results[0] - results[1]).abs().max() <= 1 / 255 + 1e-6


# ---- installing a zoo model, precision ------------------------------------------------------------------------


PUBLISHED = REFERENCE / "sr_published_weights.json"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def zoo_server(tmp_path, monkeypatch):
    """realesr-animevideov3 published as its publisher's file (random weights, published keys and wrapper),
    served on 127.0.0.1 at the address the catalogue entry is given here; yields its state_dict."""
    require_or_skip(PUBLISHED.is_file(), f"{PUBLISHED} (the published layouts) is absent")
    spec = json.loads(PUBLISHED.read_text())["realesr_animevideov3"]
    torch.manual_seed(4)
    state = {key: torch.randn(shape) * 0.05 for key, shape in spec["state_dict"].items()}
    www = tmp_path / "www"
    www.mkdir()
    torch.save({spec["wrapper_key"]: state}, www / spec["file"])
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    entry = download.SR_MODELS.get("realesr-animevideov3")
    url = f"http://127.0.0.1:{server.server_address[1]}/{spec['file']}"
    monkeypatch.setitem(download.SR_MODELS._items, entry.name, dataclasses.replace(entry, url=url))
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_missing_zoo_model_is_installed_then_used(script, capsys, tmp_path, zoo_server):
    checkpoints = tmp_path / "checkpoints"
    photo = rgb(tmp_path / "photo.png")
    code, out, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", "realesr-animevideov3",
                                          "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    assert "installing the zoo model realesr-animevideov3" in out
    assert read_image(str(tmp_path / "out" / "photo_out.png")).size == (52, 40)
    installed = torch.load(checkpoints / "realesr-animevideov3" / "latest_net_G.pth", weights_only=True)
    assert list(installed) == list(zoo_server)
    assert all(torch.equal(installed[k], zoo_server[k]) for k in zoo_server)


def test_bf16_stays_within_a_few_levels_of_fp32(runs):
    """The bf16 path (what --amp auto picks on a bf16-native CPU or GPU) runs and stays close to fp32."""
    checkpoints, states = runs
    net = net_of(states["tiny_srvgg"], TINY_SRVGG)
    photo = read_image(str(rgb(checkpoints.parent / "bf16.png", w=24, h=20)))
    fp32 = Upscaler(net, 4, amp="none")(photo)
    bf16 = Upscaler(net_of(states["tiny_srvgg"], TINY_SRVGG), 4, amp="bf16")(photo)
    assert Upscaler(net, 4, amp="bf16").precision == "bf16" and fp32.size == bf16.size == (96, 80)
    assert (fp32.pixels - bf16.pixels).abs().mean() < 2 / 255


def test_an_output_folder_in_use_is_refused_with_the_holder_s_pid(script, runs, capsys, tmp_path):
    """Issue 22, item 1: two upscale.py into one -o would interleave their results. While another process writes
    the folder, upscale.py exits 2 in one line naming the folder and that process, and writes nothing there."""
    checkpoints, _ = runs
    photo = rgb(tmp_path / "photo.png")
    out = tmp_path / "out"
    argv = ["-i", photo, "-o", out, "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints, *CPU]
    with folder_held(out, "upscale.py") as holder:
        code, _, err = run(script, capsys, argv)
        assert os.listdir(out) == [".lock"]  # the holder's, and nothing else
    assert code == 2 and err.strip() == (f"error: {out} is in use by upscale.py (PID {holder.pid}): wait for it to "
                                         f"end, or choose another -o"), err
    code, _, err = run(script, capsys, argv)
    assert code == 0 and os.listdir(out) == ["photo_out.png"], err


def test_options_that_do_not_fit_the_weights_are_refused_before_the_network_is_built(script, capsys, tmp_path,
                                                                                     generator_devices):
    """Issue 22, item 11: a hand-edited `n_blocks` in train_opt.json is refused from the meta device's network,
    before the real one is built (which for thousands of blocks took minutes and gigabytes)."""
    checkpoints = tmp_path / "checkpoints"
    save_run(checkpoints, "edited", TINY_SRRESNET, 0)
    options = json.loads((checkpoints / "edited" / "train_opt.json").read_text())
    (checkpoints / "edited" / "train_opt.json").write_text(json.dumps({**options, "n_blocks": 300}))
    generator_devices.clear()  # save_run built the run's own generator
    code, _, err = run(script, capsys, ["-i", rgb(tmp_path / "photo.png"), "-o", tmp_path / "out", "-n", "edited",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 2 and "latest_net_G.pth does not fit the network" in err and "--n_blocks" in err, err
    assert generator_devices == ["meta"]
    assert not (tmp_path / "out").exists()
