"""Taking a request in: the body read with a byte cap as it streams, multipart parsed from memory, the fields
checked, and the image's header checked before anything is decoded.

Starlette's own form parsing spools a file part to a temporary file with no size limit, so the body is read
here: refused with 413 as soon as it passes --max_upload_mb (or at once from its Content-Length), with 408 when
it does not arrive within the time left, and parsed in memory with python-multipart's streaming parser, so no
request writes anything to disk.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from util.errors import DataError
from util.images import peek_bytes
from util.images.reading import bomb_pixels

from .config import MIN_INPUT_SIDE, ServeConfig
from .errors import ApiError

__all__ = ["FIELDS", "Upload", "check_header", "read_body", "take_upload"]

FIELDS = ("model", "outscale", "format", "denoise")
FORMATS = ("auto", "png", "jpg", "webp")
_RAW_TYPES = ("image/", "application/octet-stream")
_MAX_FIELD_BYTES = 64


@dataclass
class Upload:
    """An image as it came: its bytes and the request's fields (query and form, as text)."""

    data: bytes
    fields: Dict[str, str] = field(default_factory=dict)


async def read_body(request: Request, limit: int, deadline: float) -> bytes:
    """The whole body, at most `limit` bytes (413 past it, before reading more), by `deadline` (time.monotonic;
    408 past it: a client sending a byte a second is cut off there)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"declares {int(declared):,} bytes", limit)
    chunks: List[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        left = deadline - time.monotonic()
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout=max(left, 0.001))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise ApiError(408, "upload_timeout", f"the upload did not arrive within the time limit "
                                                  f"({size} bytes received)") from None
        size += len(chunk)
        if size > limit:
            raise _too_large(f"passed {limit:,} bytes", limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(413, "upload_too_large", f"the upload {what}, over the limit of {limit:,} bytes (--max_upload_mb)")


def _multipart(body: bytes, content_type: str, max_parts: int) -> Dict[str, bytes]:
    """The parts of a multipart/form-data body by name, parsed in memory (python-multipart's parser)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_multipart", "multipart/form-data without a boundary")
    parts: Dict[str, bytes] = {}
    state: Dict[str, object] = {}

    def begin() -> None:
        if len(parts) + 1 > max_parts:
            raise ApiError(400, "too_many_parts", f"the form has more than {max_parts} parts")
        state.update(headers={}, data=[], header_field=b"", header_value=b"")

    def header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] = bytes(state["header_field"]) + data[start:end]  # type: ignore[arg-type]

    def header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] = bytes(state["header_value"]) + data[start:end]  # type: ignore[arg-type]

    def header_end() -> None:
        state["headers"][bytes(state["header_field"]).lower()] = state["header_value"]  # type: ignore[index]
        state.update(header_field=b"", header_value=b"")

    def data(chunk: bytes, start: int, end: int) -> None:
        state["data"].append(chunk[start:end])  # type: ignore[attr-defined]

    def end() -> None:
        disposition = state["headers"].get(b"content-disposition", b"")  # type: ignore[attr-defined]
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise ApiError(400, "bad_multipart", "a form part has no name")
        if name in parts:
            raise ApiError(400, "bad_field", f"the field {name!r} is given twice")
        parts[name] = b"".join(state["data"])  # type: ignore[arg-type]

    callbacks = {"on_part_begin": begin, "on_header_field": header_field, "on_header_value": header_value,
                 "on_header_end": header_end, "on_part_data": data, "on_part_end": end}
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except ApiError:
        raise
    except Exception as e:  # python-multipart's MultipartParseError and the like: the client's malformed form
        raise ApiError(400, "bad_multipart", f"the multipart form cannot be parsed ({e})") from None
    return parts


async def take_upload(request: Request, config: ServeConfig, deadline: float) -> Upload:
    """The image and fields of a POST: a multipart field `file` or the raw body (image/* or
    application/octet-stream), fields from the query string and the form (one place each)."""
    content_type = request.headers.get("content-type", "application/octet-stream")
    kind = content_type.split(";")[0].strip().lower()
    if kind not in ("multipart/form-data",) and not kind.startswith(_RAW_TYPES):
        raise ApiError(415, "unsupported_media_type", f"send the image as multipart/form-data (field 'file') or as "
                                                      f"the raw body (image/* or application/octet-stream), not {kind}")
    fields: Dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        _add_field(fields, name, value)
    body = await read_body(request, config.max_upload_bytes, deadline)
    if kind != "multipart/form-data":
        return Upload(body, fields)
    parts = _multipart(body, content_type, config.max_parts)
    if "file" not in parts:
        raise ApiError(400, "missing_file", "the form has no field 'file' with the image")
    for name, value in parts.items():
        if name != "file":
            if len(value) > _MAX_FIELD_BYTES:
                raise ApiError(400, "bad_field", f"the field {name!r} is longer than {_MAX_FIELD_BYTES} bytes")
            _add_field(fields, name, value.decode("utf-8", "replace"))
    return Upload(parts["file"], fields)


def _add_field(fields: Dict[str, str], name: str, value: str) -> None:
    if name not in FIELDS:
        raise ApiError(400, "bad_field", f"unknown field {name[:40]!r}; the fields are {', '.join(FIELDS)}")
    if name in fields:
        raise ApiError(400, "bad_field", f"the field {name!r} is given twice")
    fields[name] = value


def parse_number(fields: Dict[str, str], name: str, low: float, high: float = math.inf,
                 above_low: bool = False) -> Optional[float]:
    """The field `name` as a number in [low, high] ((low, high] with `above_low`), None when absent; 400 else."""
    text = fields.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, "bad_field", f"{name} must be a number, got {text[:40]!r}") from None
    if not ((low < value if above_low else low <= value) and value <= high):  # NaN fails both
        bound = f"over {low:g}" if above_low else f"in [{low:g}, {high:g}]"
        raise ApiError(400, "bad_field", f"{name} must be a number {bound}, got {text[:40]}")
    return value


def parse_format(fields: Dict[str, str]) -> str:
    """The `format` field: auto (the default), png, jpg (or jpeg) or webp; 400 else."""
    fmt = (fields.get("format") or "auto").lower()
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in FORMATS:
        raise ApiError(400, "bad_field", f"format must be one of {', '.join(FORMATS)}, got {fmt[:40]!r}")
    return fmt


def check_header(data: bytes, config: ServeConfig) -> Tuple[Tuple[int, int], str]:
    """(W, H) upright and the format name from the image's header, nothing decoded: 415 for what is not an image
    we read, 413 over --max_input_pixels, 422 for an animated image or one under MIN_INPUT_SIDE pixels a side."""
    if not data:
        raise ApiError(415, "not_an_image", "the upload is empty (0 bytes)")
    try:
        header = peek_bytes(data)
    except DataError as e:  # over twice PIL's limit: PIL refuses to give the size, only the pixels
        count = bomb_pixels(e.__cause__)
        pixels = f"{count:,}" if count is not None else "too many"
        raise ApiError(413, "too_many_pixels", f"the image has {pixels} pixels, over the limit of "
                                               f"{config.max_input_pixels:,} pixels") from None
    if header is None:
        raise ApiError(415, "not_an_image", f"not an image format this service reads (it starts with {data[:8]!r})")
    (w, h), frames, fmt = header
    if w * h > config.max_input_pixels:
        raise ApiError(413, "too_many_pixels", f"the image is {w}x{h} ({w * h:,} pixels), over the limit of "
                                               f"{config.max_input_pixels:,} pixels")
    if frames > 1:
        raise ApiError(422, "animated", f"the image is animated ({frames} frames); send one frame as a still image")
    if min(w, h) < MIN_INPUT_SIDE:
        raise ApiError(422, "too_small", f"the image is {w}x{h}; a side under {MIN_INPUT_SIDE} pixels is not "
                                         f"upscaled")
    return (w, h), fmt
