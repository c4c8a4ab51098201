"""One process at a time writes an output folder: `with FolderLock(folder, "train.py", advice):`.

Two `train.py` with one --name (or two installs of one zoo model, two `test.py` or `upscale.py` into one results
folder) would otherwise both run to exit 0 while one's files silently replace the other's, and a later
`--continue_train` would resume the mix. The first to take the lock owns the folder until it exits; a second is
refused at once with FolderBusyError (exit code 2): one line naming the folder and the holder's PID.

The lock is `fcntl.flock` on `<folder>/.lock`, not the filelock package: a flock belongs to the open file, so the
kernel drops it when the holder dies, however it dies (SIGKILL, the OOM killer), and no stale lock can outlive
a run; the standard library has it, and the holder can write its PID into the very file it locks for the
refusal's message. What follows from that:
  * a clean exit removes the lock file (before unlocking: a process that opened it meanwhile sees that the
    path no longer names the file it locked and tries again), and the folder too when the lock created it and
    nothing was written there; a killed holder leaves a `.lock` that no one holds, which the next run reuses;
  * processes forked from the holder (DataLoader workers) close their copy of the file at once
    (`os.register_at_fork`): a SIGKILLed holder's workers must not keep its folder locked for their last seconds;
  * a launcher that starts the processes which do the writing (util/launcher.py, `train.py --gpu_ids 0,1`)
    passes its lock down (`for_children`): a child adopts its parent's lock instead of being refused by it, and
    the children's copies keep the folder locked should the launcher itself be killed.
Where there is no flock (Windows) a folder is not locked. On NFS, Linux implements flock with NFS locks.
"""
from __future__ import annotations

import logging
import os
import time
from types import TracebackType
from typing import Any, Dict, Optional, Set, Type

from .errors import FolderBusyError, StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
# "<fd>:<lock file>" of a lock a launcher holds for the processes it starts (FolderLock.for_children).
INHERITED_ENV = "IMAGE_TOOLKIT_HELD_LOCK"
_HELD: Set[int] = set()  # the descriptors of the locks this process holds or adopted
_READ_TRIES = 20  # a holder writes its PID right after locking: wait up to 20 x 50 ms for it


def _close_held_after_fork() -> None:
    """In a forked child: close the copies of the held locks' files. Closing is not unlocking (the holder keeps
    its own descriptor), but once the holder is gone no child holds the folder."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_after_fork)


def _same_file(fd: int, path: str) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class FolderLock:
    """Exclusive ownership of `folder` (created when missing) from `__enter__` to `__exit__`.

    `purpose` says who holds it in the refusal ("train.py", "installing the zoo model x"); `advice` ends the
    refusal with what the user can do ("wait for that run to end, or choose another --name").
    """

    def __init__(self, folder: str, purpose: str, advice: str) -> None:
        self.folder = os.fspath(folder)
        self.path = os.path.abspath(os.path.join(self.folder, LOCK_FILE))
        self.purpose, self.advice = purpose, advice
        self._fd: Optional[int] = None
        self._pid = 0  # the process that took the lock: a forked copy of this object releases nothing
        self._adopted = False
        self._created = False

    # ------------------------------------------------------------------ taking and releasing
    def __enter__(self) -> "FolderLock":
        if fcntl is None:  # pragma: no cover - Windows
            logger.debug("no flock on this system: %s is not locked", self.folder)
            return self
        self._pid = os.getpid()
        if self._adopt():
            return self
        self._created = not os.path.isdir(self.folder)
        try:
            os.makedirs(self.folder, exist_ok=True)
            self._fd = self._lock()
            if self._fd is not None:
                os.ftruncate(self._fd, 0)
                os.write(self._fd, f"{os.getpid()}\n{self.purpose}\n".encode("utf-8"))
        except OSError as e:
            self._release()
            raise StorageError(f"cannot write {self.path}: {e.strerror or e}") from e
        if self._fd is not None:
            _HELD.add(self._fd)
        return self

    def _lock(self) -> Optional[int]:
        """Open and flock the lock file, or raise FolderBusyError naming its holder; None (with a warning) on a
        filesystem that cannot lock files."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by programs run (PEP 446)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderBusyError(f"{self.folder} is in use by {self._holder()}: {self.advice}") from None
            except OSError as e:  # ENOLCK, EOPNOTSUPP: some network and FUSE filesystems
                os.close(fd)
                logger.warning("cannot lock %s (%s): another process writing %s at the same time would not be "
                               "noticed", self.path, e.strerror or e, self.folder)
                return None
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.path):
                return fd
            os.close(fd)  # its holder removed the file between our open and our lock: lock the new one

    def _adopt(self) -> bool:
        """Take over the lock a launcher passed to this process (INHERITED_ENV), when it is this folder's."""
        fd_text, _, path = os.environ.get(INHERITED_ENV, "").partition(":")
        if path != self.path or not fd_text.isdigit():
            return False
        fd = int(fd_text)
        if not _same_file(fd, self.path):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the same open file as the parent's: already ours
        except OSError:
            return False
        self._fd, self._adopted = fd, True
        _HELD.add(fd)
        return True

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if os.getpid() == self._pid:
            self._release()

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _HELD.discard(fd)
            if not self._adopted:  # an adopted lock stays the launcher's: never unlocked or removed here
                try:
                    os.unlink(self.path)  # while still locked (module docstring)
                except OSError:
                    pass
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        if self._created:
            try:
                os.rmdir(self.folder)  # only when nothing else was written there
            except OSError:
                pass

    # ------------------------------------------------------------------ for the refusal and for children
    def _holder(self) -> str:
        """"train.py (PID 1234)" from the lock file, which its holder fills right after locking."""
        for _ in range(_READ_TRIES):
            try:
                with open(self.path, encoding="utf-8", errors="replace") as fh:
                    pid, _, purpose = fh.read().partition("\n")
            except OSError:
                pid, purpose = "", ""
            if pid.strip().isdigit():
                return f"{purpose.strip() or 'another process'} (PID {pid.strip()})"
            time.sleep(0.05)
        return "another process (its PID is not recorded)"

    def for_children(self) -> Dict[str, Any]:
        """`env` and `pass_fds` for `subprocess.Popen` of processes that write the folder under this lock."""
        if self._fd is None:
            return {"env": {}, "pass_fds": ()}
        return {"env": {INHERITED_ENV: f"{self._fd}:{self.path}"}, "pass_fds": (self._fd,)}
