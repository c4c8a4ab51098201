"""What a failed fetch says: the errors of this package and the one-line texts they carry.

The command line prints an error's message as one line (`util.cli.run_cli`), and the person reading it is
often on a machine without internet: every message names the file and says how to go on, and reasons
coming from sockets, archives or pickles are cut down to their first line here, in one place.
"""
from __future__ import annotations

from ..errors import ToolkitError

OFFLINE_HINT = "Without internet: fetch it on another machine and pass the file with --from-file PATH"


class DownloadError(ToolkitError):
    """A file cannot be fetched (network down, wrong address, dropped connection, missing local file)."""


class ChecksumError(DownloadError):
    """A fetched file is not the one the catalogue describes (its sha256 differs); it was not installed."""


def one_line(text: object, limit: int = 300) -> str:
    """Error reasons from sockets and pickles may span lines; the CLI shows exactly one."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def plain_reason(error: BaseException) -> str:
    """`[Errno 111] Connection refused` -> `connection refused`: what a person needs, without codes."""
    inner = getattr(error, "reason", error)
    text = getattr(inner, "strerror", None) or str(inner) or inner.__class__.__name__
    text = one_line(text)
    return text[:1].lower() + text[1:]
