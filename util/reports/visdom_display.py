"""Optional live display of training images and loss curves in a visdom server.

visdom is a convenience, never a requirement: if the package is missing, the server is not running, or
the connection drops during training, this display logs ONE warning (with the command that starts a
server) and switches itself off; training carries on and the HTML page / loss log are still written.

Unlike the reference, nothing here ever starts a server or spawns a shell: starting a network service
is the user's decision.
"""
from __future__ import annotations

import contextlib
import io
import logging
import socket
import warnings
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional
from urllib.parse import urlparse

import numpy as np
import torch

from ..util import tensor2im
from .grid import effective_ncols, make_grid
from .history import LossHistory

logger = logging.getLogger(__name__)

__all__: List[str] = ["START_COMMAND", "VisdomDisplay", "start_command"]

# The flags are those of visdom 0.2.4's `visdom/server/run_server.py`: single-dash `-port` and
# `-bind_local` (listen on 127.0.0.1 only), double-dash `--hostname` (only used in the printed URL).
START_COMMAND = "python -m visdom.server -port {port} --hostname 127.0.0.1 -bind_local"


def start_command(port: int) -> str:
    """The shell command a user can run to start a local visdom server on `port`."""
    return START_COMMAND.format(port=int(port))


@contextlib.contextmanager
def _quiet_visdom() -> Iterator[io.StringIO]:
    """Silence the visdom client while it talks to the server.

    With `raise_exceptions=False` the client prints tracebacks and "waiting" lines to stdout/stderr and
    logs warnings on every failed request; we report problems ourselves, once. Captured text is logged at
    DEBUG level. Note: the redirection is process-wide for the duration of the call.
    """
    captured = io.StringIO()
    visdom_logger = logging.getLogger("visdom")
    old_disabled = visdom_logger.disabled
    visdom_logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                yield captured
    finally:
        visdom_logger.disabled = old_disabled
        text = captured.getvalue().strip()
        if text:
            logger.debug("visdom client output:\n%s", text)


class VisdomDisplay:
    """A connection to a visdom server that disables itself instead of failing.

    Window ids follow the reference so that an existing visdom layout keeps working: the loss plot goes to
    window `win_id`, the image grid to `win_id + 1`.
    """

    def __init__(
        self,
        server: str,
        port: int,
        env: str,
        ncols: int,
        winsize: int,
        *,
        title: str = "",
        win_id: int = 1,
        connect_timeout: float = 2.0,
    ) -> None:
        self.server = server if "://" in server else "http://" + server
        self.port = int(port)
        self.env = env
        self.ncols = int(ncols)
        self.winsize = int(winsize)
        self.title = title
        self.win_id = int(win_id)
        self.connect_timeout = float(connect_timeout)
        self.enabled = False
        self._warned = False
        self._vis: Any = None
        self._connect()

    # ------------------------------------------------------------------ connection

    @property
    def address(self) -> str:
        return f"{self.server}:{self.port}"

    def _disable(self, reason: str) -> None:
        """Switch the display off, telling the user once how to get it back."""
        self.enabled = False
        self._vis = None
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "visdom display disabled: %s. Training continues; losses still go to loss_log.txt and images "
            "to the HTML page. To see them live, start a server in another terminal with:  %s  "
            "(or pass --display_id 0 to turn the display off).",
            reason,
            start_command(self.port),
        )

    def _port_open(self) -> Optional[str]:
        """Probe the server with a plain TCP connect; return why it failed, or None if it answered.

        The visdom client itself has no connect timeout, so an unreachable host could block training for
        minutes; this probe bounds the wait by `connect_timeout`.
        """
        host = urlparse(self.server).hostname or "localhost"
        try:
            with socket.create_connection((host, self.port), timeout=self.connect_timeout):
                return None
        except OSError as e:
            return f"no visdom server answers at {self.address} ({e.strerror or e})"

    def _connect(self) -> None:
        try:
            import visdom  # lazy: visdom is optional and slow to import
        except ImportError:
            self._disable("the visdom package is not installed (pip install visdom)")
            return
        problem = self._port_open()
        if problem is not None:
            self._disable(problem)
            return
        try:
            with _quiet_visdom():
                vis = visdom.Visdom(
                    server=self.server,
                    port=self.port,
                    env=self.env,
                    raise_exceptions=False,
                    use_incoming_socket=False,
                )
                connected = vis.check_connection(timeout_seconds=self.connect_timeout)
        except Exception as e:  # a broken client must not stop training
            self._disable(f"the visdom client failed to connect to {self.address} ({e!r})")
            return
        if not connected:
            self._disable(f"{self.address} accepts connections but does not answer like a visdom server")
            return
        self._vis = vis
        self.enabled = True
        logger.info("visdom display at %s (env %r)", self.address, self.env)

    def _send(self, what: str, fn: Callable[[Any], Any]) -> None:
        """Run one visdom call; a failure (the client returns False) disables the display for good."""
        if not self.enabled:
            return
        try:
            with _quiet_visdom():
                result = fn(self._vis)
        except Exception as e:
            self._disable(f"sending the {what} to {self.address} failed ({e!r})")
            return
        if result is False:
            self._disable(f"lost the connection to {self.address} while sending the {what}")

    # ------------------------------------------------------------------ content

    def show_images(self, visuals: Mapping[str, torch.Tensor], epoch: int) -> None:
        """Show the first image of each visual in one grid window, `ncols` images per row.

        Images of different sizes (e.g. a low-resolution input next to its super-resolved output) are
        scaled to the largest size with nearest-neighbour resampling, so pixels stay visible as blocks.
        """
        if not self.enabled or not visuals:
            return
        labels = list(visuals.keys())
        images = [tensor2im(v) for v in visuals.values()]  # each (H, W, 3) uint8
        grid = make_grid(images, self.ncols)  # (3, Hg, Wg) uint8
        ncols = effective_ncols(self.ncols, len(images))
        tile_w = max(im.shape[1] for im in images)
        scale = self.winsize / tile_w if self.winsize > 0 else 1.0
        opts: Dict[str, Any] = {
            "title": f"{self.title} images".strip(),
            "caption": f"epoch {epoch}: " + " | ".join(labels),
            "width": int(round(grid.shape[2] * scale)),
            "height": int(round(grid.shape[1] * scale)),
        }
        logger.debug("visdom grid of %d images, %d per row", len(images), ncols)
        self._send("images", lambda vis: vis.image(grid, win=self.win_id + 1, opts=opts))

    def plot_metrics(self, history: LossHistory) -> None:
        """Validation metrics (e.g. PSNR, SSIM) per epoch in their own line window (`win_id + 2`)."""
        self._plot(history, self.win_id + 2, "validation", "metric")

    def plot_losses(self, history: LossHistory) -> None:
        """Draw every loss against fractional epochs in one line window, one curve per loss name."""
        self._plot(history, self.win_id, "loss over time", "loss")

    def _plot(self, history: LossHistory, win: int, title: str, ylabel: str) -> None:
        if not self.enabled or not history.x:
            return
        n = len(history.legend)
        x = np.stack([np.asarray(history.x, dtype=np.float64)] * n, 1)  # (T, n)
        y = np.asarray(history.y, dtype=np.float64)  # (T, n)
        opts = {"title": f"{self.title} {title}".strip(), "legend": list(history.legend), "xlabel": "epoch",
                "ylabel": ylabel}
        self._send(f"{ylabel} plot", lambda vis: vis.line(X=x, Y=y, win=win, opts=opts))

