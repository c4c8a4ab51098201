"""The application: `create_app(load, config)` gives the FastAPI app scripts/serve.py runs under uvicorn.

Routes: POST /v1/upscale, GET /v1/models, /healthz, /readyz, /metrics, and the page's files at / (static/).
Models load in a thread when the app starts (`load()`), before the server accepts connections, so every
request a process takes finds them (/readyz says 503 only for an app run without its lifespan). The request's
body is read by intake.py, never by the framework's form parser (see why there).
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from typing import Any, AsyncIterator, Callable, Dict, Optional

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles

from models.inference import output_size

from .access import AccessLog
from .catalog import CONTENT_TYPES, ServedModel
from .config import ServeConfig
from .errors import ApiError, error_response
from .intake import check_header, parse_format, parse_number, take_upload
from .metrics import Metrics
from .slots import ClientGone, Slots

__all__ = ["STATIC_DIR", "create_app"]

logger = logging.getLogger("serve")

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

_UPSCALE_DOC = {
    "requestBody": {"content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}, "model": {"type": "string"},
            "outscale": {"type": "number"}, "format": {"type": "string", "enum": ["auto", "png", "jpg", "webp"]},
            "denoise": {"type": "number"}}}},
        "image/*": {"schema": {"type": "string", "format": "binary"}}}},
    "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": t}}
                   for n, t in (("model", "string"), ("outscale", "number"), ("format", "string"),
                                ("denoise", "number"))],
    "responses": {"200": {"description": "the upscaled image, with X-Model, X-Scale, X-Input-Size, X-Output-Size "
                                         "and X-Time-Ms", "content": {"image/png": {}, "image/jpeg": {},
                                                                      "image/webp": {}}}},
}


def create_app(load: Callable[[], Dict[str, ServedModel]], config: ServeConfig,
               static_dir: str = STATIC_DIR) -> FastAPI:
    """The service: `load()` gives the served models (the first is the default), called once at start, in a
    thread."""
    metrics = Metrics()
    slots = Slots(config.slots, config.queue, metrics)
    state: Dict[str, Any] = {"models": None}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Loaded before the server accepts a connection: with --workers, the processes share one listening
        # socket, and a worker still loading would otherwise take requests it can only refuse.
        state["models"] = await asyncio.to_thread(load)
        yield
        slots.shutdown()  # the computations in progress end before the process does

    # No /docs or /redoc: FastAPI's pages load Swagger UI / ReDoc from a CDN, and the service works offline.
    app = FastAPI(title="gan-translate super-resolution", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None, summary="Upscale images with the toolkit's super-resolution models")
    app.state.metrics = metrics
    app.state.slots = slots

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        metrics.rejected.labels(e.code).inc()
        return error_response(e.status, e.code, e.detail, e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return error_response(e.status_code, code, str(e.detail), dict(e.headers or {}))

    def models() -> Dict[str, ServedModel]:
        if state["models"] is None:  # an app run without its lifespan (uvicorn --lifespan off)
            raise ApiError(503, "not_ready", "the models are not loaded", headers={"Retry-After": "5"})
        return state["models"]

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> Dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The models are loaded")
    async def readyz() -> Dict[str, Any]:
        return {"status": "ready", "models": list(models())}

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics_page() -> Response:
        return Response(metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models", summary="The served models and the limits")
    async def list_models() -> Dict[str, Any]:
        return {"models": [m.describe() for m in models().values()], "limits": config.limits()}

    @app.post("/v1/upscale", summary="Upscale one image", openapi_extra=_UPSCALE_DOC)
    async def upscale(request: Request) -> Response:
        start = time.monotonic()
        deadline = start + config.timeout_s
        check_key(request, config.api_key)
        slots.refuse_if_full()
        served = models()
        upload = await take_upload(request, config, deadline)
        name = upload.fields.get("model") or next(iter(served))
        if name not in served:
            raise ApiError(400, "bad_field", f"model {name[:60]!r} is not served; served: {', '.join(served)}")
        model = served[name]
        outscale = parse_number(upload.fields, "outscale", 0.0, above_low=True)
        denoise = parse_number(upload.fields, "denoise", 0.0, 1.0)
        fmt = parse_format(upload.fields)
        if denoise is not None and model.denoise is None:
            raise ApiError(400, "bad_field", f"the model {name} takes no denoise")
        size, image_format = check_header(upload.data, config)
        try:
            output_size(size, model.scale, outscale, config.max_output_pixels)
        except ValueError as e:
            status, code = (413, "output_too_large") if "limit" in str(e) else (400, "bad_field")
            raise ApiError(status, code, str(e)) from None
        metrics.input_megapixels.observe(size[0] * size[1] / 1e6)
        try:
            result = await slots.run(lambda: model.upscale(upload.data, image_format, outscale, fmt, denoise),
                                     request.is_disconnected, deadline)
        except ClientGone:
            logger.info("client left while its request waited: dropped")
            return Response(status_code=499)
        headers = {"X-Model": name, "X-Scale": f"{outscale if outscale is not None else model.scale:g}",
                   "X-Input-Size": "%dx%d" % result.input_size, "X-Output-Size": "%dx%d" % result.output_size,
                   "X-Time-Ms": f"{(time.monotonic() - start) * 1000:.0f}"}
        if result.note:
            headers["X-Format-Note"] = f"written as PNG: {result.note}"
        return Response(result.data, media_type=CONTENT_TYPES[result.fmt], headers=headers)

    app.mount("/", StaticFiles(directory=static_dir, html=True), name="page")
    app.add_middleware(AccessLog, metrics=metrics)
    return app


def check_key(request: Request, api_key: Optional[str]) -> None:
    """401 unless the request carries `api_key` (Authorization: Bearer KEY, or X-API-Key: KEY), when one is set."""
    if api_key is None:
        return
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not hmac.compare_digest(given.encode(), api_key.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong API key (send Authorization: Bearer KEY)",
                       headers={"WWW-Authenticate": "Bearer"})
