"""The service's Prometheus metrics, in a registry of its own per app (two apps in one process, as in the tests,
count apart): requests by route and status, latency, queue length, busy slots, input megapixels, rejections."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_MEGAPIXEL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16)


class Metrics:
    """One app's metrics; `text()` is the /metrics page."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("serve_requests", "Requests answered, by route and status", ["route", "status"],
                                registry=r)
        self.latency = Histogram("serve_request_seconds", "Time from the request's start to its answer, by route",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("serve_queue_length", "Requests waiting for an inference slot", registry=r)
        self.busy = Gauge("serve_busy_slots", "Inference slots computing now", registry=r)
        self.input_megapixels = Histogram("serve_input_megapixels", "Megapixels of the images accepted for upscaling",
                                          buckets=_MEGAPIXEL_BUCKETS, registry=r)
        self.rejected = Counter("serve_rejected", "Requests refused, by reason (the error code)", ["reason"],
                                registry=r)

    def text(self) -> bytes:
        return generate_latest(self.registry)
