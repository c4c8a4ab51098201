"""The load run behind `python scripts/load_serve.py`, one concern a module:

    service   the service under load: loopback-only URLs, starting and stopping scripts/serve.py, its memory
    inputs    what is uploaded: real photos of 0.1 to 2 MP from a folder, the service's hostile corpus
    clients   the concurrent clients, the /healthz prober and the memory poller, for a bounded time
    baseline  scripts/upscale.py on the same photos in the same run: images/s and a warm single latency
    summary   the figures (statuses, throughput, percentiles) and the markdown table
"""
from .baseline import upscale_py_baseline
from .clients import run_load, single_latency
from .inputs import hostile_uploads, photo_of_size, photo_uploads, pick_photos
from .service import loopback_url, started_service
from .summary import markdown_table, summarize

__all__ = ["hostile_uploads", "loopback_url", "markdown_table", "photo_of_size", "photo_uploads", "pick_photos",
           "run_load", "single_latency", "started_service", "summarize", "upscale_py_baseline"]
