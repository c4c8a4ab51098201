"""The service under load: a loopback URL (the load run never leaves this machine), or scripts/serve.py started
here on a free loopback port, stopped with SIGTERM at the end; and the memory of its processes."""
from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import httpx

from benchmarking.machine import proc_status_mib
from util.errors import OptionError

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


def loopback_url(url: str) -> str:
    """`url` with a trailing slash, or an OptionError where its host is not this machine's loopback."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback:
        raise OptionError(f"--url {url}: the load run only targets this machine's loopback (http://127.0.0.1:PORT/ "
                          f"or http://localhost:PORT/)")
    return url if url.endswith("/") else url + "/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_ready(url: str, server: Optional[subprocess.Popen], timeout: float, log: Optional[Path] = None) -> None:
    """Poll GET /readyz until it answers 200; an OptionError naming the log when the process ends or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "readyz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        ended = server is not None and server.poll() is not None
        if ended or time.monotonic() > deadline:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log and log.is_file() else []
            what = f"ended with code {server.returncode}" if ended else f"was not ready in {timeout:.0f} s"
            raise OptionError(f"the service at {url} {what}" + (f"; its log ends: {tail[0]} ({log})" if tail else ""))
        time.sleep(0.3)


@contextlib.contextmanager
def started_service(args: Sequence[str], log: Path, timeout: float = 300,
                    script: str = "serve.py") -> Iterator[Tuple[str, int]]:
    """`python scripts/SCRIPT ARGS --host 127.0.0.1 --port <free>` (serve.py, or serve_ray.py) until the block
    ends, then SIGTERM: (its URL, its pid)."""
    port = _free_port()
    command = [sys.executable, str(ROOT / "scripts" / script), *args, "--host", LOOPBACK, "--port", str(port)]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://{LOOPBACK}:{port}/"
    try:
        wait_ready(url, server, timeout, log)
        yield url, server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)




def process_tree(pid: int) -> List[int]:
    """`pid` and its descendants (serve.py --workers N runs N worker processes), from /proc's parent links."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def tree_rss_mib(pid: int) -> Optional[float]:
    """Resident memory of `pid` and its descendants now, MiB; None once the process is gone."""
    values = [proc_status_mib("VmRSS", str(p)) for p in process_tree(pid)]
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def tree_peak_mib(pid: int) -> Optional[float]:
    """Sum of the high-water marks (VmHWM) of `pid` and its descendants: an upper bound of their peak together."""
    values = [proc_status_mib("VmHWM", str(p)) for p in process_tree(pid)]
    values = [v for v in values if v is not None]
    return sum(values) if values else None
