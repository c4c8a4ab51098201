"""Send the hostile-upload corpus (scripts/serving/hostile.py) to a running service and print, per upload, the
status, error code and time taken, and how fast /healthz answered after it, then a client sending a byte a
second (it takes the service's --timeout_s): docs/serving.md's table.

    python scripts/serve.py &                         # then
    python scripts/serve_hostile.py --url http://127.0.0.1:8000

Loopback or a URL you give; the corpus is built for the limits the service lists at /v1/models. Exit code 1
when an upload got another status than the corpus expects.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import time
import urllib.parse
import urllib.request
from typing import Optional, Sequence, Tuple

from serving.hostile import hostile_corpus
from util.cli import OptionParser, run_cli


def post(url: str, body: bytes, content_type: str, key: Optional[str]) -> Tuple[int, str]:
    """(status, error code or '') of one POST /v1/upscale. The service answers an upload that declares too many
    bytes before reading it and closes the connection: the answer is read even when sending the rest failed
    (urllib would report the closed connection instead)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
    conn.putrequest("POST", "/v1/upscale")
    for name, value in {"Content-Type": content_type, "Content-Length": str(len(body)),
                        **({"Authorization": f"Bearer {key}"} if key else {})}.items():
        conn.putheader(name, value)
    conn.endheaders()
    with contextlib.suppress(OSError):
        conn.send(body)
    try:
        answer = conn.getresponse()
        data = answer.read()
    except OSError:
        return 0, "connection closed"
    finally:
        conn.close()
    return answer.status, "" if answer.status == 200 else json.loads(data or b"{}").get("error", "")


def slow_client(url: str) -> Tuple[int, str]:
    """(status, error code) for a client that declares 1000 bytes and sends a byte a second: the service must
    cut it off at its time limit (408) rather than hold a connection open for 1000 seconds."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1) as sock:
        sock.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: service\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        answer = b""
        for _ in range(1000):
            with contextlib.suppress(OSError):
                sock.sendall(b"\0")
            with contextlib.suppress(socket.timeout):
                chunk = sock.recv(65536)
                answer += chunk
                if not chunk or _complete(answer):
                    break
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
    return status, json.loads(body).get("error", "") if body.startswith(b"{") else ""


def _complete(answer: bytes) -> bool:
    """Whether `answer` holds a whole HTTP response: its head and Content-Length bytes of body."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return len(body) >= length


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = OptionParser(prog="serve_hostile.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the service (default: %(default)s)")
    p.add_argument("--api_key", default=None, help="the service's --api_key, when it has one")
    args = p.parse_args(argv)
    url = args.url.rstrip("/")
    with urllib.request.urlopen(f"{url}/v1/models", timeout=30) as answer:
        listing = json.load(answer)
    print(f"model {listing['models'][0]['name']}, limits {json.dumps(listing['limits'])}\n")
    print("| upload | status | error | expected | time (ms) | /healthz after (ms) |")
    print("|---|---|---|---|---|---|")
    wrong = 0
    for case in hostile_corpus(listing["limits"]["max_upload_bytes"]):
        start = time.monotonic()
        status, error = post(url, case.body, case.content_type, args.api_key)
        took = (time.monotonic() - start) * 1000
        start = time.monotonic()
        with urllib.request.urlopen(f"{url}/healthz", timeout=30) as health:
            healthy = health.status == 200
        health_ms = (time.monotonic() - start) * 1000
        expected = f"{case.status} {case.error}".strip()
        wrong += status != case.status or error != case.error or not healthy
        print(f"| {case.name} | {status} | {error or '-'} | {expected} | {took:.0f} | "
              f"{health_ms:.0f}{'' if healthy else ' FAILED'} |")
    start = time.monotonic()
    status, error = slow_client(url)
    wrong += (status, error) != (408, "upload_timeout")
    print(f"| a byte a second (declares 1000 bytes) | {status} | {error or '-'} | 408 upload_timeout | "
          f"{(time.monotonic() - start) * 1000:.0f} | - |")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
