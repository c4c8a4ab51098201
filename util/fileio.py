"""Crash-safe file writes.

Training runs are long and get killed (pre-emption, Ctrl-C, full disks). A checkpoint, image or HTML page
that is half written is worse than an old one: a later `--continue_train` would fail on a truncated
`.pth`. Every file the toolkit produces therefore goes through `atomic_write`: the bytes are written to a
temporary file in the same folder, flushed to disk, and only then renamed onto the target, which POSIX
(and Windows, through `os.replace`) guarantees to be all-or-nothing. Readers see either the old file or the
new one, never a mix.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import stat
import tempfile
import warnings
from typing import IO, TYPE_CHECKING, Any, Callable, List, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux `/proc`)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Portable fallback: set and restore (briefly changes the umask for other threads).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _target_mode(path: str) -> int:
    """Permission bits the final file should get.

    `NamedTemporaryFile` creates files with mode 0600; renamed as they are, checkpoints and web pages would
    be unreadable to the rest of a team. Keep the mode of the file being replaced, or use what a plain
    `open(path, 'w')` would give (0666 minus the umask).
    """
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_current_umask()


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable. Best effort: not every OS / filesystem can fsync a directory."""
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as e:
        logger.debug("cannot open %s to fsync it: %s", directory, e)
        return
    try:
        os.fsync(fd)
    except OSError as e:
        logger.debug("cannot fsync directory %s: %s", directory, e)
    finally:
        os.close(fd)


def _remove_quietly(path: Optional[str]) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:  # never hide the original error behind a cleanup error
        logger.warning("could not remove temporary file %s: %s", path, e)


def atomic_write(path: PathLike, write_fn: Callable[[IO[bytes]], Any]) -> None:
    """Write `path` all-or-nothing: `write_fn` fills a binary temp file that then replaces `path`.

    If `write_fn` (or the flush, or the rename) fails, the temporary file is removed, the previous content
    of `path` (if any) is left untouched, and the exception propagates. `OSError`s (disk full, permission
    denied, missing folder) are re-raised with the target path in the message, because the temp file's
    random name would tell the user nothing. The parent folder must exist.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    tmp_name: Optional[str] = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=directory, delete=False, prefix="." + name + ".", suffix=".tmp"
        ) as fh:
            tmp_name = fh.name
            write_fn(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, _target_mode(path))
        os.replace(tmp_name, path)
        tmp_name = None  # now owned by `path`; nothing to clean up
    except OSError as e:
        _remove_quietly(tmp_name)
        reason = e.strerror or str(e)
        if e.errno is None:
            raise OSError(f"cannot write {path}: {reason}") from e
        raise OSError(e.errno, f"cannot write {path}: {reason}") from e
    except BaseException:
        _remove_quietly(tmp_name)
        raise
    _fsync_dir(directory)


def write_failure(error: OSError, elsewhere: str) -> str:
    """What a failed write says: the path and the system's reason (atomic_write puts both in the message), then
    the remedy for that reason, ending with `elsewhere` (e.g. "choose another --checkpoints_dir").

    Only a full disk or quota is told to free space: a folder made read-only, a file-size limit or a file
    removed by another process mid-write each have their own remedy, and advice for the wrong one misleads.
    """
    if error.filename is not None:  # raised by the system call itself: "[Errno 2] ...: 'path'"
        text = f"cannot write {error.filename}: {error.strerror or error}"
    else:  # atomic_write's "cannot write <path>: <reason>"
        text = error.strerror or str(error)
    number = error.errno
    if number in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        advice = f"free some space or {elsewhere}"
    elif number == errno.EFBIG:
        advice = f"the file is larger than this filesystem or the file-size limit (ulimit -f) allows: {elsewhere}"
    elif number in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = f"make the folder writable or {elsewhere}"
    elif number == errno.ENOENT:
        advice = f"the folder or the file being written was removed meanwhile (by another process?): {elsewhere}"
    else:
        advice = elsewhere
    return f"{text}; {advice}"


def atomic_save_torch(obj: Any, path: PathLike) -> None:
    """`torch.save(obj, path)`, atomically: an interrupted save never leaves a truncated checkpoint."""
    import torch  # local import: keeps this module usable (and fast to import) without torch

    def write(fh: IO[bytes]) -> None:
        try:
            torch.save(obj, fh)
        except RuntimeError as e:
            # A write refused mid-tensor (full disk, file-size limit) surfaces from torch's zip writer as a
            # RuntimeError whose cause is the real OSError: report that one.
            if isinstance(e.__context__, OSError):
                raise e.__context__ from e
            raise

    atomic_write(path, write)


def load_torch_weights_only(path: PathLike, refused: Optional[str] = None) -> Any:
    """`torch.load(path, weights_only=True)` on CPU: tensors and plain containers only, so a crafted file
    cannot run code. Any failure is a CheckpointError naming the file.

    A file that holds other Python objects is refused in our words: torch's message advises retrying with
    `weights_only=False`, the step that would run the file's code, and the toolkit must not invite it. The
    warnings torch emits while reading (e.g. for legacy pickles) reach the user once: logged when the file
    loads, left out when it is refused (the error says what matters). `refused`: the error's opening words
    (default "cannot load PATH"); the reason follows them.
    """
    import torch

    from .errors import CheckpointError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        except Exception as e:  # unpickling fails in many ways; all mean the file is not ours or is damaged
            raise CheckpointError(f"{refused or f'cannot load {path}'}: {load_failure(path, e)}") from e
    for message in dict.fromkeys(str(w.message).splitlines()[0] for w in caught if str(w.message).strip()):
        logger.warning("%s: %s", path, message)
    return state


def load_failure(path: PathLike, error: Exception) -> str:
    """Why `torch.load(path, weights_only=True)` refused or failed, as one phrase, without torch's advice to
    retry with `weights_only=False` (the step that would run a crafted file's code)."""
    import pickle

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # torch highlights its advice with terminal colours
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return (f"it holds Python objects ({found.group(1)}), not only tensors, and loading them could run code, "
                f"so it was refused; use a checkpoint saved as a state_dict, from a source you trust")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return "the file is empty (0 bytes)"
    if isinstance(error, pickle.UnpicklingError) or "weights_only" in text:
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        reason = detail.group(1).strip() if detail else "unpickling failed"
        return f"not a checkpoint of tensors, or a damaged one ({reason})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{error.__class__.__name__}: {lines[0]}" if lines else f"not a checkpoint ({error.__class__.__name__})"


def remove_stale_temp_files(folder: PathLike, recursive: bool = False) -> List[str]:
    """Delete the temporary files `atomic_write` leaves behind when a process is killed mid-write: in `folder`,
    and with `recursive` in its subfolders too (a run that writes a tree, as `upscale.py -r` does).

    Call it before a run writes into `folder` (another process writing there at the same time would lose
    its temporary file). Returns the removed paths.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    removed = []
    for directory, subfolders, names in os.walk(folder):
        if not recursive:
            subfolders.clear()
        for name in sorted(names):
            if name.startswith(".") and name.endswith(".tmp"):
                path = os.path.join(directory, name)
                _remove_quietly(path)
                removed.append(path)
    if removed:
        logger.info("removed %d temporary files left by an interrupted run in %s", len(removed), folder)
    return removed


def folder_problem(folder: PathLike, writable: bool = True) -> Optional[str]:
    """Why `folder` cannot be an output folder (it is created when missing), or None when it can.

    Checked on its nearest existing ancestor, before any work: it must be a folder, and (`writable`) one this
    process may create files in. The reason names the path at fault, e.g. "/data/run is a file, not a folder".
    """
    probe = os.path.abspath(os.fspath(folder))
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"{probe} is a file, not a folder"
    if writable and not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def file_problem(path: PathLike) -> Optional[str]:
    """Why `path` cannot be read as an input file, or None for a readable regular file (or a link to one).

    Checked without opening it: a named pipe would block the reader forever and a device such as /dev/zero
    never ends, so such paths must be refused by what they are, never read. The reasons: "no such file", "is a
    folder, not a file", "is a symbolic link to X, which does not exist", "is a symbolic link loop", "is a
    named pipe (FIFO), not a file", "is a character device (X), not a file", ..., "is not readable".
    """
    path = os.fspath(path)
    try:
        info = os.stat(path)  # follows links
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if os.path.islink(path):
            return f"is a symbolic link to {os.readlink(path)}, which does not exist"
        if e.errno == errno.ENOENT:
            return "no such file"
        return e.strerror or str(e)
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _SPECIAL_FILES if test(info.st_mode)), "a special file")
        target = f" ({os.path.realpath(path)})" if os.path.islink(path) else ""
        return f"is {kind}{target}, not a file"
    if not os.access(path, os.R_OK):
        return "is not readable"
    return None


_SPECIAL_FILES = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write a text file atomically (HTML pages, option dumps)."""
    data = text.encode(encoding)
    atomic_write(path, lambda fh: fh.write(data))


def _pil_format_for(path: str) -> str:
    from PIL import Image

    ext = os.path.splitext(path)[1].lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise ValueError(
            f"cannot tell the image format of {path!r} from its suffix {ext!r}; "
            "use a suffix such as .png or .jpg, or pass format="
        )
    return fmt


def atomic_save_pil(img: "Image.Image", path: PathLike, format: Optional[str] = None) -> None:
    """`img.save(path)` for a PIL image, atomically.

    PIL normally infers the format from the file name, but here it writes into a temp file object, so
    the format is inferred from the target's suffix instead (`.png` -> PNG, `.jpg` -> JPEG, ...).
    """
    path = os.fspath(path)
    fmt = format if format is not None else _pil_format_for(path)
    atomic_write(path, lambda fh: img.save(fh, format=fmt))
