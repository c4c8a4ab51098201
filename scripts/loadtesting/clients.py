"""The load itself: N concurrent clients for a bounded time, each uploading a real photo or (with a given
share) a hostile file, one request after another; a prober timing GET /healthz; a poller of the service's
memory. Everything is recorded, nothing is judged here (summary.py does that).

A client that gets 503 waits what Retry-After says (at most `retry_cap` seconds) before its next upload, as a
well-behaved client would; without it 32 clients would spin on 503s and take the CPU the service works with.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import httpx

from .inputs import Upload
from .service import tree_rss_mib

HEALTH_EVERY_S = 0.25
MEMORY_EVERY_S = 0.25


@dataclass
class Record:
    """One request: what was sent, the status it must get (or 503), its status (or the transport error's name)."""
    kind: str  # "photo", a hostile case's name, or "healthz"
    expected: int
    status: str
    latency_s: float
    output_pixels: int = 0


@dataclass
class LoadResult:
    records: List[Record] = field(default_factory=list)
    health: List[Record] = field(default_factory=list)
    rss_peak_mib: Optional[float] = None
    elapsed_s: float = 0.0
    cut_clients: int = 0  # clients still waiting for an answer when the drain time ran out


def _pixels(size: Optional[str]) -> int:
    try:
        width, height = (int(v) for v in (size or "").lower().split("x"))
    except ValueError:
        return 0
    return width * height


async def _client(client: httpx.AsyncClient, url: str, photos: Sequence[Upload], hostile: Sequence[Upload],
                  share: float, fields: Dict[str, str], deadline: float, seed: int, retry_cap: float,
                  out: LoadResult) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        upload = rng.choice(hostile) if hostile and rng.random() < share else rng.choice(photos)
        started = time.monotonic()
        try:
            answer = await client.post(url + "v1/upscale", params=fields, content=upload.body,
                                       headers={"Content-Type": upload.content_type})
        except httpx.HTTPError as e:
            out.records.append(Record(upload.kind, upload.expected, f"error:{type(e).__name__}",
                                      time.monotonic() - started))
            continue
        out.records.append(Record(upload.kind, upload.expected, str(answer.status_code), time.monotonic() - started,
                                  _pixels(answer.headers.get("X-Output-Size")) if answer.status_code == 200 else 0))
        if answer.status_code == 503:
            try:
                wait = float(answer.headers.get("Retry-After", "1"))
            except ValueError:
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.0), retry_cap, max(deadline - time.monotonic(), 0.0)))


async def _health(url: str, stop: asyncio.Event, out: LoadResult) -> None:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = str((await client.get(url + "healthz")).status_code)
            except httpx.HTTPError as e:
                status = f"error:{type(e).__name__}"
            out.health.append(Record("healthz", 200, status, time.monotonic() - started))
            await asyncio.sleep(HEALTH_EVERY_S)


async def _memory(pid: int, stop: asyncio.Event, out: LoadResult) -> None:
    while not stop.is_set():
        rss = tree_rss_mib(pid)
        if rss is not None:
            out.rss_peak_mib = max(out.rss_peak_mib or 0.0, rss)
        await asyncio.sleep(MEMORY_EVERY_S)


async def _run(url: str, photos: Sequence[Upload], hostile: Sequence[Upload], options: Dict[str, Any],
               pid: Optional[int]) -> LoadResult:
    out = LoadResult()
    stop = asyncio.Event()
    watchers = [asyncio.create_task(_health(url, stop, out))]
    if pid is not None:
        watchers.append(asyncio.create_task(_memory(pid, stop, out)))
    limits = httpx.Limits(max_connections=options["clients"] + 4, max_keepalive_connections=options["clients"])
    started = time.monotonic()
    deadline = started + options["seconds"]
    async with httpx.AsyncClient(timeout=options["request_timeout"], limits=limits, trust_env=False) as client:
        tasks = [asyncio.create_task(_client(client, url, photos, hostile, options["hostile_share"],
                                             options["fields"], deadline, options["seed"] + i, options["retry_cap"],
                                             out))
                 for i in range(options["clients"])]
        # Requests in flight at the deadline may finish within the drain time; any later one is cut and counted.
        done, pending = await asyncio.wait(tasks, timeout=options["seconds"] + options["drain_s"])
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a bug in a client surfaces here instead of vanishing
        out.cut_clients = len(pending)
    out.elapsed_s = time.monotonic() - started
    stop.set()
    await asyncio.gather(*watchers)
    return out


def run_load(url: str, photos: Sequence[Upload], hostile: Sequence[Upload], options: Dict[str, Any],
             pid: Optional[int] = None) -> LoadResult:
    """Upload for options["seconds"] with options["clients"] clients (see the module's docstring); `pid`: the
    service's process, whose memory (with its children's) is polled."""
    return asyncio.run(_run(url, photos, hostile, options, pid))


def single_latency(url: str, upload: Upload, fields: Dict[str, str], timeout: float) -> float:
    """Seconds for one upload on an otherwise idle (warm) service; a RuntimeError unless it answers 200."""
    started = time.monotonic()
    answer = httpx.post(url + "v1/upscale", params=fields, content=upload.body,
                        headers={"Content-Type": upload.content_type}, timeout=timeout, trust_env=False)
    elapsed = time.monotonic() - started
    if answer.status_code != 200:
        raise RuntimeError(f"single request: {answer.status_code} {answer.text[:200]}")
    return elapsed
