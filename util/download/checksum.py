"""sha256 checks of fetched files, against the hash a catalogue entry carries.

A published file whose hash is known (the SR model zoo, for one) must be exactly that file before it is
installed: a mirror, a proxy's error page or a file passed with `--from-file` may be anything. The hash is
computed with the standard library's `hashlib` while the bytes stream (`Sha256Check`), or by reading a
local file once (`verify_sha256`); a mismatch is a `ChecksumError` with one line naming the file and both
hashes.
"""
from __future__ import annotations

import hashlib
import os
import string
from typing import Optional, Union

from .messages import ChecksumError, plain_reason

PathLike = Union[str, "os.PathLike[str]"]
_CHUNK = 1 << 20  # 1 MiB


def normalise_sha256(value: Optional[str]) -> Optional[str]:
    """The lower-case hex form of an expected sha256 (None: nothing to check).

    A catalogue typo must fail when the table is built, not after a long download: anything but 64 hex
    digits raises `ValueError`.
    """
    if value is None:
        return None
    text = value.strip().lower()
    if len(text) != 64 or any(c not in string.hexdigits for c in text):
        raise ValueError(f"expected a sha256 of 64 hex digits, got {value!r}")
    return text


class Sha256Check:
    """Hashes bytes as they pass (`update`) and compares the result with the expected hash (`verify`)."""

    def __init__(self, expected: str, source: str) -> None:
        self.expected = expected
        self.source = source
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def verify(self) -> None:
        got = self._hash.hexdigest()
        if got != self.expected:
            raise ChecksumError(f"{self.source} has sha256 {got}, expected {self.expected}: it is damaged or not "
                                "the published file, so it was not installed; fetch it again")


def _hash_file(path: PathLike, sink: "hashlib._Hash | Sha256Check", shown: str) -> None:
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                sink.update(chunk)
    except OSError as e:
        raise ChecksumError(f"cannot read {shown} to check its sha256: {plain_reason(e)}") from None


def file_sha256(path: PathLike, shown: Optional[str] = None) -> str:
    """The sha256 of the file at `path`, as 64 lower-case hex digits (what an installed model records)."""
    digest = hashlib.sha256()
    _hash_file(path, digest, shown or os.fspath(path))
    return digest.hexdigest()


def verify_sha256(path: PathLike, expected: Optional[str], shown: Optional[str] = None) -> None:
    """Raise `ChecksumError` unless the file at `path` has the sha256 `expected` (None: no check)."""
    expected = normalise_sha256(expected)
    if expected is None:
        return
    check = Sha256Check(expected, shown or os.fspath(path))
    _hash_file(path, check, check.source)
    check.verify()
