"""scripts/upscale_video.py (issue 24, item 2): a short clip the test makes, with a sound track, upscaled by a tiny
network in a real process: frame count, frame rate, size and sound kept; each frame equal to scripts/upscale.py's
result for that frame on the lossless codec; nothing under the final name after a failure."""
from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image
from upscale_runs import CPU

av = pytest.importorskip("av", reason="PyAV is not installed (pip install -e .[video])")

from util.errors import DataError  # noqa: E402
from util.video import probe, transcode_frames  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FPS, FRAMES, W, H = 10, 6, 20, 14


def make_clip(path: Path, audio: bool = True, phone: bool = False, rotation: int = 0,
              times_ms: Optional[List[int]] = None) -> Path:
    """FRAMES random frames of W x H at FPS on a lossless codec, and 0.6 s of a 440 Hz tone as PCM; `phone`: as
    phones record instead, H.264 (whose decoder holds frames back) with AAC, shown turned by `rotation` degrees;
    `times_ms`: each frame's time in milliseconds instead of a constant rate."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264" if phone else "ffv1", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p" if phone else "bgr0"
        if times_ms is not None:
            video.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac" if phone else "pcm_s16le", rate=8000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = (i, Fraction(1, FPS)) if times_ms is None else (times_ms[i], Fraction(1, 1000))
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            n = 8000 * FRAMES // FPS
            tone = np.sin(np.arange(n) * 2 * np.pi * 440 / 8000)[None]  # (1, n) in [-1, 1]
            chunk = (av.AudioFrame.from_ndarray(tone.astype(np.float32) / 4, format="fltp", layout="mono") if phone
                     else av.AudioFrame.from_ndarray((tone * 8000).astype(np.int16), format="s16", layout="mono"))
            chunk.sample_rate, chunk.pts = 8000, 0
            out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def decoded(path: Path):
    """(video frames as RGB arrays, frame rate, the sound's samples or None) of a clip."""
    with av.open(str(path)) as clip:
        rate = clip.streams.video[0].average_rate
        frames = [f.to_ndarray(format="rgb24") for f in clip.decode(video=0)]
    with av.open(str(path)) as clip:
        sound = (np.concatenate([f.to_ndarray() for f in clip.decode(audio=0)], axis=1)
                 if clip.streams.audio else None)
    return frames, rate, sound


def run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "upscale_video.py"), *map(str, args)], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=600)


def test_a_clip_keeps_its_frames_rate_and_sound_and_each_frame_is_upscale_pys(runs, tmp_path):
    checkpoints, _ = runs
    clip = make_clip(tmp_path / "clip.mkv")
    proc = run("-i", clip, "-o", tmp_path / "out" / "clip_x4.mkv", "-n", "tiny_srvgg", "--checkpoints_dir",
               checkpoints, "--codec", "ffv1", *CPU)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    source, rate, sound = decoded(clip)
    result, out_rate, out_sound = decoded(tmp_path / "out" / "clip_x4.mkv")
    assert len(result) == FRAMES and out_rate == rate == FPS
    assert all(frame.shape == (H * 4, W * 4, 3) for frame in result)
    assert out_sound is not None and np.array_equal(out_sound, sound)  # copied, not re-encoded
    # A frame of the video equals scripts/upscale.py's result for that frame (ffv1 in RGB: no codec loss).
    Image.fromarray(source[3]).save(tmp_path / "frame3.png")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "upscale.py"), "-i", str(tmp_path / "frame3.png"),
                           "-o", str(tmp_path / "still"), "-n", "tiny_srvgg", "--checkpoints_dir", str(checkpoints),
                           *CPU], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    still = np.asarray(Image.open(tmp_path / "still" / "frame3_out.png"))
    assert np.array_equal(result[3], still)


def test_h264_by_default_with_an_odd_size_cropped_to_even(runs, tmp_path):
    checkpoints, _ = runs
    clip = make_clip(tmp_path / "clip.mkv", audio=False)
    proc = run("-i", clip, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints,
               "--outscale", "1.5", "--fps", "25", *CPU)  # 20x14 * 1.5 = 30x21: odd height
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lose their last row" in proc.stdout + proc.stderr
    with av.open(str(tmp_path / "out" / "clip_out.mp4")) as out:
        stream = out.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.codec_context.width, stream.codec_context.height) \
            == (30, 20) and stream.average_rate == 25
        assert sum(1 for _ in out.decode(video=0)) == FRAMES


@pytest.mark.parametrize("rotation", [0, 90])
def test_a_phone_clip_whose_sound_comes_before_its_first_decoded_frame(runs, tmp_path, rotation):
    """H.264 with AAC in MP4: the decoder holds the first frames back, so sound packets are copied before the
    first frame is upscaled, and the video encoder must be sized before them (it was sized from the first
    result, after the output's header had been written: 'Cannot change width after codec is open'). A phone
    held upright records its frames turned: the result is shown turned the same way."""
    checkpoints, _ = runs
    clip = make_clip(tmp_path / "phone.mp4", phone=True, rotation=rotation)
    with av.open(str(clip)) as source:  # the case itself: a sound packet before the first decoded frame
        first_kinds = []
        for packet in source.demux():
            first_kinds.append(packet.stream.type)
            if packet.stream.type == "video" and packet.decode():
                break
        assert "audio" in first_kinds, first_kinds
    proc = run("-i", clip, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints, *CPU)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, rate, sound = decoded(clip)
    result, out_rate, out_sound = decoded(tmp_path / "out" / "phone_out.mp4")
    assert len(result) == FRAMES and out_rate == rate == FPS
    assert all(frame.shape == (H * 4, W * 4, 3) for frame in result)  # as coded
    assert out_sound is not None and np.array_equal(out_sound, sound)
    with av.open(str(tmp_path / "out" / "phone_out.mp4")) as out:
        assert next(out.decode(video=0)).rotation == rotation == probe(str(clip)).rotation


def test_frame_times_of_a_variable_rate_clip_are_kept_and_fps_makes_them_constant(runs, tmp_path):
    """Phones lower the frame rate in dim light: each frame keeps its time (its sound stays in step); --fps F puts
    every frame on a constant rate instead."""
    checkpoints, _ = runs
    times = [0, 100, 300, 350, 600, 700]  # ms: FRAMES frames at a variable rate
    clip = make_clip(tmp_path / "vfr.mkv", times_ms=times)
    for name, extra, expected in (("kept.mkv", [], times), ("constant.mkv", ["--fps", "25"],
                                                              [40 * i for i in range(FRAMES)])):
        proc = run("-i", clip, "-o", tmp_path / name, "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints,
                   "--codec", "ffv1", *extra, *CPU)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with av.open(str(tmp_path / name)) as out:
            assert [round(frame.time * 1000) for frame in out.decode(video=0)] == expected, name


def test_an_outscale_under_one_pixel_is_one_line_before_any_work(runs, tmp_path):
    checkpoints, _ = runs
    clip = make_clip(tmp_path / "clip.mkv", audio=False)
    proc = run("-i", clip, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints,
               "--outscale", "0.01", *CPU)  # 20x14 -> 0x0
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {clip}: outscale 0.01 makes the 20x14 image 0x0: under one pixel")
    assert not (tmp_path / "out").exists()


def test_a_failure_leaves_nothing_under_the_final_name(tmp_path):
    clip = make_clip(tmp_path / "clip.mkv")
    calls = []

    def fail_at_the_third(rgb: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory")
        return np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)

    with pytest.raises(RuntimeError, match="out of memory"):
        transcode_frames(str(clip), str(tmp_path / "out.mkv"), fail_at_the_third, (2 * W, 2 * H), codec="ffv1")
    assert sorted(os.listdir(tmp_path)) == ["clip.mkv"]  # no result, no partial file


def test_a_file_that_is_not_a_video_is_one_line(runs, tmp_path):
    checkpoints, _ = runs
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    proc = run("-i", text, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--checkpoints_dir", checkpoints, *CPU)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith(f"error: cannot read video {text}")
    assert not (tmp_path / "out").exists()  # refused before anything is made
    with pytest.raises(DataError, match="cannot read video"):
        probe(str(text))
