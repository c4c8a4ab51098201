"""Copy one file from an address (http(s), ftp, `file://`, a plain path) to a destination, all or nothing.

The reference pipes `wget` into `tar`: an interrupted transfer leaves a truncated file. Here the bytes go
to a temporary file next to the target (`util.fileio.atomic_write`) that replaces it only when every byte
the server announced has arrived and, when the caller knows it, the sha256 matches. `timeout` bounds the
connection and every read, so a dead network fails instead of hanging, and every failure is one line that
says how to go on without internet (`--from-file`).

Why not `torch.hub.download_url_to_file` (already a dependency) or pooch: torch.hub takes no timeout (a
silent server hangs the command), accepts a connection closed early as a complete file when no hash is
known (the reference's files have none) and reads no plain paths; pooch needs `requests` (not a
dependency) and fetches neither `file://` nor plain paths, which the offline path (`--from-file`, local
mirrors) is made of. Both would still need this module's error translation, so the standard library's
`urllib` and `hashlib` (`checksum.py`) do the work here.
"""
from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Callable, Dict, Optional, Tuple, Union

from tqdm import tqdm

from ..fileio import atomic_write
from .checksum import Sha256Check, normalise_sha256
from .messages import OFFLINE_HINT, DownloadError, one_line, plain_reason

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
_CHUNK = 1 << 20  # 1 MiB: few system calls, little memory


def _network_error(url: str, error: BaseException) -> DownloadError:
    if isinstance(error, urllib.error.HTTPError) and error.code == 404:
        return DownloadError(f"not found at {url} (HTTP 404): check the name or the mirror given with --url. "
                             f"{OFFLINE_HINT}")
    if isinstance(error, urllib.error.HTTPError):
        return DownloadError(f"cannot download {url}: HTTP {error.code} {one_line(error.reason)}. {OFFLINE_HINT}")
    return DownloadError(f"cannot download {url}: {plain_reason(error)}. {OFFLINE_HINT}")


def _open_remote(url: str, timeout: float) -> Tuple[IO[bytes], Optional[int]]:
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (scheme checked by _OPENERS)
    except urllib.error.HTTPError as e:
        e.close()
        raise _network_error(url, e) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise _network_error(url, e) from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def _open_local(path: str) -> Tuple[IO[bytes], Optional[int]]:
    try:
        fh = open(path, "rb")
        return fh, os.fstat(fh.fileno()).st_size
    except OSError as e:
        raise DownloadError(f"cannot read {path}: {plain_reason(e)}") from None


def _local_path_of_file_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(f"cannot read {url}: file:// URLs must name a file on this machine (file:///path)")
    return urllib.request.url2pathname(parts.path)


# URL scheme -> how to open it (returns the stream and its length when known). "" is a plain path.
_OPENERS: Dict[str, Callable[[str, float], Tuple[IO[bytes], Optional[int]]]] = {
    "http": _open_remote,
    "https": _open_remote,
    "ftp": _open_remote,
    "file": lambda url, timeout: _open_local(_local_path_of_file_url(url)),
    "": lambda path, timeout: _open_local(path),
}


def _scheme(source: str) -> str:
    if os.path.exists(source):  # a local file whose name merely looks like `scheme:...`
        return ""
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    # `C:\data\x.zip` parses with scheme "c": a Windows drive letter, i.e. a plain path.
    return "" if len(scheme) == 1 else scheme


def download_file(url: str, dest: PathLike, *, timeout: float = 60, progress: bool = True,
                  sha256: Optional[str] = None) -> str:
    """Fetch `url` (http(s)/ftp, `file://`, or a plain local path) to `dest`; return `dest`.

    The bytes go to a temporary file in `dest`'s folder that replaces `dest` only once complete (the
    length announced by the server is checked: a server that closes early does not produce a short file)
    and, if `sha256` is given, only once its hash matches (else `ChecksumError`, and `dest` is untouched).
    `timeout` bounds the connection and every read. Failures raise `DownloadError` with one line that says
    how to proceed without internet.
    """
    dest = os.fspath(dest)
    expected = normalise_sha256(sha256)  # a malformed hash fails before any transfer
    scheme = _scheme(url)
    opener = _OPENERS.get(scheme)
    if opener is None:
        raise DownloadError(f"cannot download {url}: unsupported URL scheme {scheme!r} "
                            f"(use one of {', '.join(s for s in _OPENERS if s)} or a local path)")
    parent = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the folder {parent} for {dest}: {plain_reason(e)}") from None
    logger.info("fetching %s -> %s", url, dest)
    stream, total = opener(url, timeout)
    is_remote = scheme not in ("", "file")
    check = Sha256Check(expected, url) if expected else None

    def copy(out: IO[bytes]) -> None:
        received = 0
        label = os.path.basename(urllib.parse.urlsplit(url).path) or url
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                  disable=None if progress else True, leave=False) as bar:
            while True:
                try:
                    chunk = stream.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:  # timeouts and resets are OSErrors
                    raise (_network_error(url, e) if is_remote
                           else DownloadError(f"cannot read {url}: {plain_reason(e)}")) from None
                if not chunk:
                    break
                out.write(chunk)
                if check is not None:
                    check.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(f"cannot download {url}: the connection closed after {received} of {total} "
                                f"bytes. {OFFLINE_HINT}")
        if check is not None:
            check.verify()  # inside atomic_write: a mismatch removes the temporary file, `dest` is untouched

    try:
        atomic_write(dest, copy)
    except OSError as e:  # writing failed (disk full, permissions); atomic_write names `dest`
        raise DownloadError(one_line(e)) from None
    finally:
        stream.close()
    return dest
