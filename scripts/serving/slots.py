"""The bounded part: N inference slots (threads, so the event loop keeps answering /healthz while they compute)
and a queue of at most Q waiting requests, beyond which a request is refused at once with 503 + Retry-After.

A waiting request is dropped when its client goes away, and answered 504 when its time runs out. A computation
past its time cannot be stopped inside PyTorch: its client gets 504 at the deadline, and the slot is free again
when the computation ends (the busy-slots gauge shows it).
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable, Optional, TypeVar

from .errors import ApiError
from .metrics import Metrics

__all__ = ["ClientGone", "Slots"]

T = TypeVar("T")
_POLL_S = 0.2  # how often a waiting request checks that its client is still there


class ClientGone(Exception):
    """The client disconnected while its request waited: nothing is answered, nothing computed."""


class Slots:
    """`await slots.run(fn, gone, deadline)`: `fn()` in one of `slots` threads once one is free."""

    def __init__(self, slots: int, queue: int, metrics: Metrics, retry_after_s: int = 1) -> None:
        self.slots, self.queue = slots, queue
        self.metrics = metrics
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(slots, thread_name_prefix="upscale")
        self._free: Optional[asyncio.Semaphore] = None  # made in the event loop that uses it
        self.waiting = 0
        self.busy = 0

    def _semaphore(self) -> asyncio.Semaphore:
        if self._free is None:
            self._free = asyncio.Semaphore(self.slots)
        return self._free

    async def _acquire(self, gone: Callable[[], Awaitable[bool]], deadline: float) -> None:
        """Wait for a free slot; ClientGone when the client leaves, 504 at `deadline`."""
        free = self._semaphore()
        self.waiting += 1
        self.metrics.queue.set(self.waiting)
        task = asyncio.ensure_future(free.acquire())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=min(_POLL_S, max(deadline - time.monotonic(), 0)))
                if done:
                    return
                if time.monotonic() >= deadline:
                    raise ApiError(504, "timeout", "no inference slot became free within the time limit")
                if await gone():
                    raise ClientGone()
        except BaseException:
            if task.done() and not task.cancelled():
                free.release()  # acquired just as we gave up
            else:
                task.cancel()
            raise
        finally:
            self.waiting -= 1
            self.metrics.queue.set(self.waiting)

    def refuse_if_full(self) -> None:
        """503 + Retry-After when all slots are busy and `queue` requests wait already. The app asks as a request
        arrives, before reading its upload: under overload, refusing costs no upload bytes and no parsing (on a
        2-core machine, reading the uploads of the refused requests took CPU from the inference)."""
        if self._semaphore().locked() and self.waiting >= self.queue:
            raise ApiError(503, "queue_full", f"all {self.slots} inference slots are busy and {self.waiting} "
                                              f"requests wait; try again shortly",
                           headers={"Retry-After": str(self.retry_after_s)})

    async def run(self, fn: Callable[[], T], gone: Callable[[], Awaitable[bool]], deadline: float) -> T:
        """`fn()` in a slot: 503 at once when all slots are busy and `queue` requests wait already."""
        self.refuse_if_full()  # again: the queue may have filled while the upload was read
        free = self._semaphore()
        await self._acquire(gone, deadline)
        self.busy += 1
        self.metrics.busy.set(self.busy)
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn)

        def finished(_: object) -> None:  # the slot is free when the computation ends, answered or not
            self.busy -= 1
            self.metrics.busy.set(self.busy)
            free.release()

        future.add_done_callback(finished)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(deadline - time.monotonic(), 0.001))
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", "the upscaling did not finish within the time limit") from None

    def shutdown(self) -> None:
        """Wait for the computations in progress, then end the threads."""
        self._executor.shutdown(wait=True)
