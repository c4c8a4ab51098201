"""Small helpers several test modules share (fixtures live in conftest.py)."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Facts about public files that the suite cannot do without, kept in the project (a clone has no ../shared):
# the reference's and the published SR weights' state_dict keys and shapes, the reference's options table, the
# files of visdom 0.2.4's static folder. Copies of ../shared/reference; tests/test_fixtures.py checks that they
# still equal it where it is present.
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
# Real images (SR train and eval sets, pix2pix and CycleGAN samples): never copied into the project, so the
# tests that read them skip with the reason where ../shared/data is absent.
SHARED_DATA = ROOT.parent / "shared" / "data"


def load_script(relative_path: str) -> ModuleType:
    """Import a script of the repository by path: `train.py`, `scripts/download.py`, ...

    (`import test` could find the standard library's `test` package, and scripts/ is not a package.)
    """
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOOPBACK = "127.0.0.1"
PROXY_VARS = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY",
              "ALL_PROXY")


def refuse_non_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection that is not to 127.0.0.1 (and any proxy that would carry it elsewhere)."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    real = socket.create_connection

    def guarded(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        if address[0] != LOOPBACK:
            raise AssertionError(f"test tried to connect to {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


def require_or_skip(condition: bool, reason: str) -> None:
    """Skip with `reason` where a tool is missing (a laptop); fail under CI, where .ci/run installs it."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required in CI: .ci/run installs it)")
    pytest.skip(reason)


# Another process that owns a folder (util/locks.py) until its stdin closes; it prints "held" once it does.
_HOLDER = (
    "import sys; sys.path.insert(0, sys.argv[1]); from util.locks import FolderLock\n"
    "with FolderLock(sys.argv[2], sys.argv[3], 'wait'):\n"
    "    print('held', flush=True); sys.stdin.read()\n"
)


@contextlib.contextmanager
def folder_held(folder: Path, purpose: str = "holder.py") -> Iterator[subprocess.Popen]:
    """While inside, another process (yielded) holds the lock of `folder` as `purpose`: a run writing it."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(ROOT), str(folder), purpose], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)
