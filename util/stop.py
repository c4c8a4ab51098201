"""Graceful stop on SIGINT (Ctrl-C) and SIGTERM (schedulers, `kill`): finish the step, save, exit.

Inside `with GracefulStop() as stop:` the first signal only sets `stop.requested`; the training loop checks
it between steps. A second Ctrl-C interrupts at once (KeyboardInterrupt), for a user who cannot wait.
"""
from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any, Dict, Optional

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130 SIGINT, 143 SIGTERM)."""
        return 128 + int(self.signum or 0)

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        logger.warning("received %s: finishing the current step, then saving (Ctrl-C again stops at once)",
                       signal.Signals(signum).name)

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def ignore_stop_signals(worker_id: int = 0) -> None:
    """DataLoader `worker_init_fn`: workers leave SIGINT/SIGTERM to the main process, which stops cleanly
    (a worker killed by Ctrl-C would make the main process fail on its next batch)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
