"""Video in and out, one frame at a time, through PyAV (FFmpeg's libraries in its wheels: no `ffmpeg` binary).

`transcode_frames` decodes a clip frame by frame, hands each frame to a function (scripts/upscale_video.py: the
Upscaler) and encodes what it returns, while the audio stream's packets are copied into the output unchanged
(no re-encoding, so the sound is bit for bit the source's). Memory holds one decoded frame and one result at a
time, never the clip. The output is written under a temporary name in the destination's folder and renamed
into place at the end, so an interrupted run never leaves a half-written file under the final name; the
temporary file is removed on any failure. A phone's rotation (the display matrix its frames carry) is copied
too: frames are upscaled as they are coded and the result is shown turned as the source is.

Encoders: `libx264` (H.264, yuv420p, the default, as Real-ESRGAN's video script writes; its 4:2:0 chroma needs
even sides, so an odd result loses its last row or column) and `ffv1` (lossless, bgr0: what the tests compare
exactly against single-image upscaling). `--crf` is x264's quality (0 lossless .. 51; 18 is visually near
lossless). PyAV is an optional extra: `pip install -e .[video]`.
"""
from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Optional, Tuple

import numpy as np

from util.errors import DataError, OptionError

logger = logging.getLogger(__name__)

# codec -> (pixel format, container options); the pixel formats are the ones each encoder takes from RGB.
CODECS = {"libx264": "yuv420p", "ffv1": "bgr0"}
INSTALL_HINT = "video needs PyAV: pip install -e .[video] (or pip install av)"


def import_av() -> Any:
    """The `av` module, or an OptionError with the install command."""
    try:
        import av
    except ImportError:
        raise OptionError(INSTALL_HINT) from None
    return av


@dataclass(frozen=True)
class ClipInfo:
    """What the output keeps of the source: frame rate, frame count (0 when the container does not say), size."""

    fps: Fraction
    frames: int
    width: int
    height: int
    has_audio: bool
    display_matrix: Optional[Tuple[int, ...]] = None  # FFmpeg's 9 int32 (rotation, flips); None: shown as coded
    rotation: int = 0  # degrees counter-clockwise that players turn the frames by


def probe(path: str) -> ClipInfo:
    """The clip's video stream: frame rate, frames, size; DataError naming `path` for a file that is not a video."""
    av = import_av()
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream", path=path)
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            first = next(container.decode(stream), None)  # the display matrix travels with the frames
            side = first.side_data.get("DISPLAYMATRIX") if first is not None else None
            return ClipInfo(Fraction(rate), int(stream.frames or 0), stream.codec_context.width,
                            stream.codec_context.height, bool(container.streams.audio),
                            struct.unpack("=9i", bytes(side)) if side is not None else None,
                            int(first.rotation) if first is not None else 0)
    except (av.error.FFmpegError, OSError) as e:
        raise DataError(f"cannot read video {path}: {e}", path=path) from None


def transcode_frames(source: str, destination: str, convert: Callable[[np.ndarray], np.ndarray],
                     size: Tuple[int, int], codec: str = "libx264", crf: int = 18, fps: Optional[Fraction] = None,
                     on_frame: Optional[Callable[[], None]] = None) -> int:
    """Write `destination`: each video frame of `source` (an (H, W, 3) uint8 RGB array) through `convert`, which
    returns the output frame as an (H', W', 3) uint8 RGB array, `size` = (W', H') for every frame; the first audio
    stream copied unchanged. `fps`: the output frame rate (default: the source's frame times, kept one by one;
    every frame is kept, so another rate plays the clip faster or slower). Returns the number of frames written.

    Why `size` is given rather than read from the first result: the output's header is written, and its
    encoders opened, by the first packet muxed, and in most real clips (H.264 with AAC) audio packets come
    before the first decoded video frame, so the video encoder must be sized before the first packet."""
    av = import_av()
    if codec not in CODECS:
        raise OptionError(f"--codec {codec}: choose one of {', '.join(CODECS)}")
    folder = os.path.dirname(os.path.abspath(destination))
    stem, ext = os.path.splitext(os.path.basename(destination))
    partial = os.path.join(folder, f".{stem}.partial{ext}")
    written = 0
    try:
        with av.open(source) as src, av.open(partial, "w") as out:
            video = src.streams.video[0]
            audio = src.streams.audio[0] if src.streams.audio else None
            rate = fps or Fraction(video.average_rate or video.guessed_rate or 25)
            encoder = out.add_stream(codec, rate=rate)
            encoder.pix_fmt = CODECS[codec]
            if codec == "libx264":
                encoder.options = {"crf": str(crf)}
            _size_encoder(encoder, size, codec)
            encoder.set_display_matrix(probe(source).display_matrix)
            clock = video.time_base if fps is None else None  # keep the source's frame times on its own clock
            if clock is not None:
                encoder.codec_context.time_base = clock
            step = max(1, round(1 / (rate * clock))) if clock is not None else 1  # one frame, in clock ticks
            previous: Optional[int] = None
            copied = out.add_stream_from_template(audio) if audio is not None else None
            streams = [video] + ([audio] if audio is not None else [])
            for packet in src.demux(*streams):
                if packet.stream is audio:
                    if packet.dts is not None:  # the demuxer's flush packet carries no data
                        packet.stream = copied
                        out.mux(packet)
                    continue
                for frame in packet.decode():
                    result = convert(frame.to_ndarray(format="rgb24"))  # (H', W', 3) uint8
                    if result.shape[:2] != size[::-1]:
                        raise DataError(f"{source}: frame {written + 1} became {result.shape[1]}x{result.shape[0]}"
                                        f", not {size[0]}x{size[1]} (a clip whose frames change size is not "
                                        f"supported)", path=source)
                    h, w = encoder.height, encoder.width
                    out_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(result[:h, :w]), format="rgb24")
                    out_frame.pts = previous = written if clock is None else _kept_pts(frame.pts, previous, step)
                    out_frame.time_base = clock if clock is not None else 1 / rate
                    out.mux(encoder.encode(out_frame))
                    written += 1
                    if on_frame is not None:
                        on_frame()
            out.mux(encoder.encode(None))  # flush the encoder's delayed frames
        if written == 0:
            raise DataError(f"{source}: no video frame could be decoded", path=source)
        os.replace(partial, destination)
    except BaseException:
        if os.path.lexists(partial):
            os.unlink(partial)
        raise
    return written


def _kept_pts(source_pts: Optional[int], previous: Optional[int], step: int) -> int:
    """The output frame's time in the source's clock ticks (no --fps): the source frame's own time, so a variable
    frame rate (phones lower it in dim light) and the picture's offset from the sound stay as they were; a frame
    with no time, or one not after the previous frame, one `step` after the previous."""
    if source_pts is not None and (previous is None or source_pts > previous):
        return source_pts
    return 0 if previous is None else previous + step


def _size_encoder(encoder: Any, size: Tuple[int, int], codec: str) -> None:
    """Size the encoder for frames of `size` = (W, H); 4:2:0 chroma (libx264's yuv420p) needs even sides."""
    w, h = size
    if CODECS[codec] == "yuv420p" and (h % 2 or w % 2):
        logger.warning("%s's yuv420p needs even sides: the %dx%d frames lose their last %s", codec, w, h,
                       "row and column" if h % 2 and w % 2 else "row" if h % 2 else "column")
        h, w = h - h % 2, w - w % 2
    encoder.width, encoder.height = w, h
