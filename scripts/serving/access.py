"""One access-log line per request (method, route, status, bytes, time, model) and the request metrics, as a
plain ASGI middleware (it sees every answer, the errors' too, and leaves the body's streaming alone)."""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Dict, MutableMapping

from .metrics import Metrics

__all__ = ["AccessLog", "route_of"]

logger = logging.getLogger("serve.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

ROUTES = ("/v1/upscale", "/v1/models", "/healthz", "/readyz", "/metrics", "/openapi.json")


def route_of(path: str) -> str:
    """The metrics' route label: a known route, else 'page' (the static files) or 'other', so that the label's
    values stay few whatever paths clients send."""
    if path in ROUTES:
        return path
    return "page" if path == "/" or path.count("/") == 1 else "other"


class AccessLog:
    """Wraps the app: logs `METHOD ROUTE STATUS BYTES MS MODEL` after each HTTP request and counts it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        seen: Dict[str, Any] = {"status": 500, "bytes": 0, "model": "-"}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for key, value in message.get("headers", []):
                    if key.lower() == b"x-model":
                        seen["model"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            elapsed = time.monotonic() - start
            route = route_of(scope.get("path", ""))
            self.metrics.requests.labels(route, str(seen["status"])).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            logger.info("%s %s %s %d %.0fms %s", scope.get("method", "-"), route, seen["status"], seen["bytes"],
                        elapsed * 1000, seen["model"])
