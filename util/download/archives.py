"""Extract a downloaded .tar.gz/.tgz/.tar or .zip safely: every member is checked before anything is written.

The reference untars whatever it downloads: a hostile archive can write anywhere (`../`, absolute paths,
symlinks out of the folder, device files). `extract_archive` refuses such members with a `DataError`
naming the archive and the member, extracts into a temporary folder inside the destination and only then
moves the result into place, so a failure never leaves a half-extracted dataset.
"""
from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

from ..errors import DataError
from .messages import one_line, plain_reason

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def _parts(name: str) -> List[str]:
    """Path components of an archive member, `/` or `\\` separated, without empty and `.` parts."""
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _is_absolute(name: str) -> bool:
    name = name.replace("\\", "/")
    return name.startswith("/") or (len(name) > 1 and name[1] == ":")  # POSIX root or a Windows drive


def _escapes(parts: Iterable[str]) -> bool:
    """Whether a relative path, resolved lexically from the extraction folder, leaves it."""
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False


def _check_name(archive: str, name: str) -> List[str]:
    parts = _parts(name)
    if _is_absolute(name) or ".." in parts:
        raise DataError(f"refusing to extract {archive}: member {name!r} would be written outside the "
                        "destination folder (absolute path or '..')")
    return parts


def _tar_problem(member: tarfile.TarInfo) -> Optional[str]:
    """Why a tar member must not be extracted (None: it is a plain file, a folder or an inner link)."""
    if member.isreg() or member.isdir():
        return None
    if member.issym():
        target = member.linkname
        base = _parts(member.name)[:-1]
        if _is_absolute(target) or _escapes(base + _parts(target)):
            return f"is a symlink to {target!r}, outside the destination folder"
        return None
    if member.islnk():
        if _is_absolute(member.linkname) or _escapes(_parts(member.linkname)):
            return f"is a hard link to {member.linkname!r}, outside the destination folder"
        return None
    return "is a device file or FIFO"


def _tar_members(archive: str, fh: tarfile.TarFile) -> List[Tuple[str, tarfile.TarInfo]]:
    checked = []
    for member in fh.getmembers():
        parts = _check_name(archive, member.name)
        problem = _tar_problem(member)
        if problem:
            raise DataError(f"refusing to extract {archive}: member {member.name!r} {problem}")
        checked.append(("/".join(parts), member))
    return checked


def _tar_extract(fh: tarfile.TarFile, members: List[tarfile.TarInfo], into: str) -> None:
    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # a second line of defence
    fh.extractall(into, members=members, **extra)


def _zip_members(archive: str, fh: zipfile.ZipFile) -> List[Tuple[str, zipfile.ZipInfo]]:
    return [("/".join(_check_name(archive, info.filename)), info) for info in fh.infolist()]


def _zip_extract(fh: zipfile.ZipFile, members: List[zipfile.ZipInfo], into: str) -> None:
    fh.extractall(into, members=members)


@dataclass(frozen=True)
class _Format:
    detect: Callable[[str], bool]
    open: Callable[[str], object]
    members: Callable[[str, object], List[Tuple[str, object]]]
    extract: Callable[[object, List[object], str], None]


# Formats are recognised by content, not by suffix: a downloaded or renamed file may have any name.
# tar first: an uncompressed tar whose last member is a zip would pass `is_zipfile` (it looks at the end).
_FORMATS: Dict[str, _Format] = {
    "tar": _Format(tarfile.is_tarfile, lambda p: tarfile.open(p, "r:*"), _tar_members, _tar_extract),  # type: ignore[arg-type]
    "zip": _Format(zipfile.is_zipfile, lambda p: zipfile.ZipFile(p), _zip_members, _zip_extract),  # type: ignore[arg-type]
}
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


def _format_of(archive: str) -> _Format:
    if not os.path.isfile(archive):
        raise DataError(f"archive {archive} does not exist")
    for fmt in _FORMATS.values():
        try:
            if fmt.detect(archive):
                return fmt
        except _ARCHIVE_ERRORS:
            continue
    raise DataError(f"{archive} is not a .tar.gz, .tgz, .tar or .zip archive (damaged or incomplete "
                    "download?): delete it and fetch it again")


def extract_archive(archive: PathLike, dest_dir: PathLike, *, overwrite: bool = False,
                    top: Optional[str] = None) -> List[str]:
    """Extract a .tar.gz/.tgz/.tar or .zip into `dest_dir`; return the paths of the top-level entries made.

    Every member is checked before anything is written: absolute paths, `..`, links leaving the folder and
    device files are refused with a `DataError` naming the archive and the member. The archive is
    extracted into a temporary folder inside `dest_dir` and its top-level entries are then renamed into
    place, so a failure (bad member, damaged archive, full disk) leaves no half-extracted dataset. An
    existing entry is refused unless `overwrite`. `top` restricts extraction to one top-level folder (the
    dataset), ignoring the rest (e.g. `__MACOSX/`).
    """
    archive, dest_dir = os.fspath(archive), os.fspath(dest_dir)
    fmt = _format_of(archive)
    try:
        handle = fmt.open(archive)
    except _ARCHIVE_ERRORS as e:
        raise DataError(f"cannot read the archive {archive}: {one_line(e)}") from None
    with handle:  # type: ignore[attr-defined]
        try:
            members = fmt.members(archive, handle)
        except _ARCHIVE_ERRORS as e:
            raise DataError(f"cannot read the archive {archive}: {one_line(e)}") from None
        tops = sorted({name.split("/")[0] for name, _ in members if name})
        if top is not None:
            if top not in tops:
                raise DataError(f"{archive} has no top folder {top!r}/ (it holds: {', '.join(tops) or 'nothing'})")
            skipped = [t for t in tops if t != top]
            if skipped:
                logger.info("ignoring %s in %s", ", ".join(skipped), archive)
            tops = [top]
            members = [(name, m) for name, m in members if name.split("/")[0] == top]
        if not tops:
            raise DataError(f"the archive {archive} is empty")
        targets = [os.path.join(dest_dir, t) for t in tops]
        existing = [t for t in targets if os.path.lexists(t)]
        if existing and not overwrite:
            raise DataError(f"{existing[0]} already exists: delete it first to replace it with {archive}")
        os.makedirs(dest_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".extract-", dir=dest_dir)
        try:
            logger.info("extracting %s into %s", archive, dest_dir)
            try:
                fmt.extract(handle, [m for _, m in members], staging)
            except _ARCHIVE_ERRORS as e:  # tarfile.FilterError is a TarError
                raise DataError(f"cannot extract {archive}: {one_line(e)}") from None
            try:
                for name, target in zip(tops, targets):
                    if os.path.lexists(target):  # overwrite: keep the old entry until the new one is in place
                        os.replace(target, os.path.join(staging, ".old-" + name))
                    os.replace(os.path.join(staging, name), target)
            except OSError as e:
                raise DataError(f"cannot move the contents of {archive} into {dest_dir}: {plain_reason(e)}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return targets
