"""util/locks.py with real processes: one owner per folder, refused at once with the holder's PID, released
however the holder ends (a SIGKILLed holder's forked children included), passed from a launcher to its workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from util.errors import FolderBusyError
from util.locks import LOCK_FILE, FolderLock

from helpers import ROOT

# Takes the lock on argv[1], optionally forks a child that sleeps (and writes its PID), says "held" and waits for
# its stdin to close. With "adopt" it is a launcher's worker: it enters the lock, says "adopted" and exits.
HOLDER = r"""
import os, sys, time
sys.path.insert(0, {root!r})
from util.locks import FolderLock
folder, mode = sys.argv[1], sys.argv[2]
with FolderLock(folder, "holder.py", "wait for it") as lock:
    if mode == "fork":
        ready, say_ready = os.pipe()
        child = os.fork()
        if child == 0:  # past the fork handlers: whatever they close is closed once it writes
            os.write(say_ready, b"x")
            time.sleep(600)
            os._exit(0)
        os.read(ready, 1)
        print(child, flush=True)
    if mode == "adopt":
        print("adopted", flush=True)
        sys.exit(0)
    print("held", flush=True)
    sys.stdin.read()
"""


def _holder(tmp_path: Path, folder: Path, mode: str = "plain", **popen) -> subprocess.Popen:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER.format(root=str(ROOT)))
    return subprocess.Popen([sys.executable, str(script), str(folder), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, **popen)


def _refusal(folder: Path) -> str:
    with pytest.raises(FolderBusyError) as info:
        with FolderLock(str(folder), "test", "try later"):
            pass
    assert info.value.exit_code == 2
    return str(info.value)


def _free(folder: Path) -> bool:
    try:
        with FolderLock(str(folder), "test", "try later"):
            return True
    except FolderBusyError:
        return False


@pytest.fixture
def reaped() -> List[int]:
    """PIDs to SIGKILL at the end of the test, whatever happened."""
    pids: List[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_second_owner_is_refused_at_once_with_the_holder_s_pid(tmp_path, reaped) -> None:
    folder = tmp_path / "run"
    holder = _holder(tmp_path, folder)
    reaped.append(holder.pid)
    assert holder.stdout.readline().strip() == "held"
    message = _refusal(folder)
    assert message == f"{folder} is in use by holder.py (PID {holder.pid}): try later"
    holder.stdin.close()
    assert holder.wait(timeout=60) == 0
    assert _free(folder)


def test_a_clean_release_leaves_no_lock_file_and_no_folder_it_created(tmp_path) -> None:
    created, kept = tmp_path / "new", tmp_path / "old"
    kept.mkdir()
    with FolderLock(str(created), "test", "later"), FolderLock(str(kept), "test", "later"):
        assert (created / LOCK_FILE).read_text() == f"{os.getpid()}\ntest\n"
    assert not created.exists() and os.listdir(kept) == []
    with FolderLock(str(created), "test", "later"):
        (created / "result.png").write_bytes(b"x")
    assert os.listdir(created) == ["result.png"]  # a folder with results stays


def test_a_sigkilled_holder_leaves_the_folder_free(tmp_path, reaped) -> None:
    folder = tmp_path / "run"
    holder = _holder(tmp_path, folder)
    reaped.append(holder.pid)
    assert holder.stdout.readline().strip() == "held"
    assert not _free(folder)
    holder.kill()
    holder.wait(timeout=60)
    assert (folder / LOCK_FILE).is_file()  # left behind, but held by no one
    assert _free(folder)


def test_the_forked_children_of_a_sigkilled_holder_do_not_keep_the_lock(tmp_path, reaped) -> None:
    """DataLoader workers are forked from the holder: they must not hold its folder once it is killed."""
    folder = tmp_path / "run"
    holder = _holder(tmp_path, folder, "fork")
    reaped.append(holder.pid)
    child = int(holder.stdout.readline())
    reaped.append(child)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(timeout=60)
    os.kill(child, 0)  # the forked child still runs
    assert _free(folder)


def test_a_launcher_s_workers_adopt_its_lock_and_others_stay_refused(tmp_path) -> None:
    folder = tmp_path / "run"
    with FolderLock(str(folder), "launcher", "wait") as lock:
        inherited = lock.for_children()
        worker = _holder(tmp_path, folder, "adopt", env={**os.environ, **inherited["env"]},
                         pass_fds=inherited["pass_fds"])
        assert worker.communicate(timeout=60)[0].strip() == "adopted"
        assert worker.returncode == 0
        # The worker's exit released nothing: the folder is still the launcher's.
        assert f"in use by launcher (PID {os.getpid()})" in _refusal(folder)
        plain = _holder(tmp_path, folder, "adopt", stderr=subprocess.PIPE)  # not started by the launcher: refused
        out, err = plain.communicate(timeout=60)
        assert out == "" and plain.returncode == 1 and "FolderBusyError" in err
    assert _free(folder)


def test_a_holder_that_is_gone_before_writing_its_pid_is_still_refused_in_one_line(tmp_path, monkeypatch) -> None:
    import util.locks as locks

    monkeypatch.setattr(locks, "_READ_TRIES", 1)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    folder = tmp_path / "run"
    folder.mkdir()
    import fcntl

    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # locked, nothing written yet
        assert _refusal(folder) == f"{folder} is in use by another process (its PID is not recorded): try later"
    finally:
        os.close(fd)
