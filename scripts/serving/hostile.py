"""A corpus of hostile and awkward uploads and the answer each must get (docs/serving.md has the table): what the
tests send (tests/scripts/test_serve_hostile.py) and what a load run can mix in. Everything is made in memory.

The slow client (a byte a second) is not here: it needs a real socket (tests/scripts/test_serve_process.py).
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

__all__ = ["HostileCase", "hostile_corpus", "multipart"]

_BOUNDARY = "hostile-boundary-7MA4YWxkTrZu0gW"


@dataclass(frozen=True)
class HostileCase:
    """One upload: its raw body and Content-Type, and the status and error code it must get (None: 200)."""

    name: str
    body: bytes
    content_type: str
    status: int
    error: str = ""


def multipart(parts: Sequence[Tuple[str, str, bytes]]) -> Tuple[bytes, str]:
    """A multipart/form-data body of (field name, file name or '', value) parts, and its Content-Type."""
    out = io.BytesIO()
    for name, filename, value in parts:
        out.write(f"--{_BOUNDARY}\r\n".encode())
        file_part = f'; filename="{filename}"' if filename else ""
        out.write(f'Content-Disposition: form-data; name="{name}"{file_part}\r\n'.encode())
        if filename:
            out.write(b"Content-Type: application/octet-stream\r\n")
        out.write(b"\r\n" + value + b"\r\n")
    out.write(f"--{_BOUNDARY}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={_BOUNDARY}"


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def _photo(w: int = 24, h: int = 16, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(w: int, h: int) -> bytes:
    """A PNG whose header says w x h RGB but whose data holds a few bytes: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: upright it is 16 x 24
    return _encode(_photo(), "JPEG", exif=exif.tobytes())


def _palette_with_transparency() -> bytes:
    img = _photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(img, "PNG", transparency=0)


def _animated_gif() -> bytes:
    frames = [_photo(seed=s).convert("P") for s in range(3)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def hostile_corpus(max_upload_bytes: int) -> List[HostileCase]:
    """Every case, for a service whose upload limit is `max_upload_bytes` (the too-large one is one byte over)."""
    png = _encode(_photo(), "PNG")
    jpeg = _encode(_photo(), "JPEG")
    sixteen = Image.fromarray(np.arange(24 * 16, dtype=np.uint16).reshape(16, 24) * 170)  # 'I;16'

    def form(data: bytes, filename: str = "photo.png") -> Tuple[bytes, str]:
        return multipart([("file", filename, data)])

    cases = [
        HostileCase("0-byte file", *form(b""), 415, "not_an_image"),
        HostileCase("truncated PNG", *form(png[: len(png) // 2]), 415, "not_an_image"),
        HostileCase("truncated JPEG", *form(jpeg[: len(jpeg) // 2], "photo.jpg"), 415, "not_an_image"),
        HostileCase("text named .png", *form(b"just some text, not an image\n" * 4), 415, "not_an_image"),
        HostileCase("PNG header claiming 60000x60000", *form(png_claiming(60000, 60000)), 413, "too_many_pixels"),
        HostileCase("upload one byte over the limit", *form(b"\0" * max_upload_bytes), 413, "upload_too_large"),
        HostileCase("JSON content type", b'{"image": "x"}', "application/json", 415, "unsupported_media_type"),
        HostileCase("text/plain content type", png, "text/plain", 415, "unsupported_media_type"),
        HostileCase("multipart with 200 parts", *multipart([("file", "a.png", png)] + [(f"f{i}", "", b"x")
                                                                                      for i in range(199)]),
                    400, "too_many_parts"),
        HostileCase("multipart without a file field", *multipart([("model", "", b"x")]), 400, "missing_file"),
        HostileCase("multipart without a boundary", png, "multipart/form-data", 400, "bad_multipart"),
        HostileCase("file name ../../etc/passwd", *form(png, "../../etc/passwd"), 200),
        HostileCase("CMYK JPEG", *form(_encode(_photo().convert("CMYK"), "JPEG"), "cmyk.jpg"), 200),
        HostileCase("16-bit grey PNG", *form(_encode(sixteen, "PNG")), 200),
        HostileCase("palette PNG with transparency", *form(_palette_with_transparency()), 200),
        HostileCase("EXIF-rotated JPEG", *form(_exif_rotated_jpeg(), "rotated.jpg"), 200),
        HostileCase("animated GIF", *form(_animated_gif(), "anim.gif"), 422, "animated"),
        HostileCase("1x1 image", *form(_encode(_photo(1, 1), "PNG")), 422, "too_small"),
        HostileCase("raw body", png, "image/png", 200),
    ]
    return cases
