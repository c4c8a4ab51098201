"""Fetch the reference's published datasets and pretrained generators, safely and with an offline path.

The reference ships shell scripts (`download_pix2pix_dataset.sh`, ...) that pipe `wget` into `tar`: an
interrupted transfer leaves a truncated archive, a hostile archive can write anywhere (`../`, absolute
paths, symlinks), and a `.pth` from a mirror is unpickled with full code execution. Here:

- one table per kind (`DATASETS`, `PRETRAINED`, both `Registry`s) is the single source of names and
  addresses; the command line takes its choices from them;
- `download_file` streams into a temporary file next to the target and renames it only when every byte
  announced by the server has arrived, so a dropped connection never leaves a partial file behind;
- `extract_archive` checks every member before anything is written, extracts into a temporary folder
  inside the destination and only then moves the result into place;
- `fetch_pretrained` loads the file with `weights_only=True` (no code runs) and accepts it only if it is a
  plain state_dict, before it becomes `latest_net_G.pth`.

Machines without internet are common for training (clusters, air-gapped labs): every network failure says
how to fetch the file elsewhere and pass it with `--from-file`.
"""
from __future__ import annotations

import http.client
import logging
import os
import shlex
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Callable, Dict, Iterable, List, Optional, Tuple, Union

from tqdm import tqdm

from .errors import CheckpointError, DataError, ToolkitError
from .fileio import atomic_write
from .registry import Registry

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

OFFLINE_HINT = "Without internet: fetch it on another machine and pass the file with --from-file PATH"
CITYSCAPES_LICENCE = (
    "the Cityscapes dataset cannot be downloaded from the reference's server because of its licence: "
    "register at https://cityscapes-dataset.com, download gtFine_trainvaltest.zip and "
    "leftImg8bit_trainvaltest.zip, build the dataset (the reference's datasets/prepare_cityscapes_dataset.py), "
    "then pass an archive of it with --from-file PATH"
)
_CHUNK = 1 << 20  # 1 MiB: few system calls, little memory


class DownloadError(ToolkitError):
    """A file cannot be fetched (network down, wrong address, dropped connection, missing local file)."""


# ------------------------------------------------------------------------------------------------ tables


@dataclass(frozen=True)
class DatasetEntry:
    """One published dataset archive. `train_flags` are the extra `train.py` flags the dataset needs."""

    name: str
    url: str
    train_flags: Tuple[str, ...] = ()
    restricted: Optional[str] = None  # why the reference's server does not serve it (None: it does)


@dataclass(frozen=True)
class PretrainedEntry:
    """One published generator, and how `test.py` applies it.

    `test_dataroot` is relative to the datasets root; `test_flags` are the flags that rebuild the
    generator the file was saved from (pix2pix: U-Net 256 with batch norm; CycleGAN: ResNet, no dropout).
    """

    name: str
    url: str
    test_dataroot: str
    test_flags: Tuple[str, ...]
    single_image_flags: Tuple[str, ...] = ()  # for the user's own images (pix2pix; CycleGAN uses test_flags)


_PIX2PIX_DATA = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
_CYCLEGAN_DATA = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
_PIX2PIX_MODEL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{name}.pth"
_CYCLEGAN_MODEL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"

# pix2pix datasets store A|B side by side; the direction is the one the reference trains them in
# (facades and cityscapes: label map -> photo, which is B -> A in their archives).
_PIX2PIX_DATASETS: Dict[str, Tuple[str, ...]] = {
    "facades": ("--direction", "BtoA"),
    "cityscapes": ("--direction", "BtoA"),
    "night2day": (),
    "edges2handbags": (),
    "edges2shoes": (),
    "maps": (),
}
_CYCLEGAN_DATASETS = (
    "apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo", "ukiyoe2photo",
    "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "ae_photos",
)
# Neither of the reference's scripts serves Cityscapes (its licence forbids redistribution).
_RESTRICTED = {"cityscapes": CITYSCAPES_LICENCE}

_PIX2PIX_NETWORK = ("--netG", "unet_256", "--norm", "batch")
# name -> (paired dataset, direction, phase of the published archive that holds held-out pairs).
# maps and edges2shoes are published with train/ and val/ only.
_PIX2PIX_MODELS: Dict[str, Tuple[str, str, str]] = {
    "edges2shoes": ("edges2shoes", "AtoB", "val"),
    "sat2map": ("maps", "AtoB", "val"),
    "map2sat": ("maps", "BtoA", "val"),
    "facades_label2photo": ("facades", "BtoA", "test"),
    "day2night": ("night2day", "BtoA", "test"),
}
# name -> the CycleGAN test folder holding its inputs (A of `x2y` is x; the style_* models turn photos,
# the B side of `<painter>2photo`, into paintings).
_CYCLEGAN_MODELS: Dict[str, str] = {
    "apple2orange": "apple2orange/testA",
    "orange2apple": "apple2orange/testB",
    "summer2winter_yosemite": "summer2winter_yosemite/testA",
    "winter2summer_yosemite": "summer2winter_yosemite/testB",
    "horse2zebra": "horse2zebra/testA",
    "zebra2horse": "horse2zebra/testB",
    "monet2photo": "monet2photo/testA",
    "style_monet": "monet2photo/testB",
    "style_cezanne": "cezanne2photo/testB",
    "style_ukiyoe": "ukiyoe2photo/testB",
    "style_vangogh": "vangogh2photo/testB",
    "sat2map": "maps/testA",
    "map2sat": "maps/testB",
    "cityscapes_photo2label": "cityscapes/testA",
    "cityscapes_label2photo": "cityscapes/testB",
    "facades_photo2label": "facades/testA",
    "facades_label2photo": "facades/testB",
    "iphone2dslr_flower": "iphone2dslr_flower/testA",
}


def _dataset_table(kind: str, template: str, flags: Dict[str, Tuple[str, ...]]) -> Registry[DatasetEntry]:
    table: Registry[DatasetEntry] = Registry(f"{kind} dataset")
    for name, train_flags in flags.items():
        table.add(name, DatasetEntry(name, template.format(name=name), train_flags, _RESTRICTED.get(name)))
    return table


def _pix2pix_models() -> Registry[PretrainedEntry]:
    table: Registry[PretrainedEntry] = Registry("pix2pix pretrained model")
    for name, (dataset, direction, phase) in _PIX2PIX_MODELS.items():
        phase_flags = () if phase == "test" else ("--phase", phase)
        table.add(name, PretrainedEntry(
            name, _PIX2PIX_MODEL.format(name=name), dataset,
            ("--model", "pix2pix", "--direction", direction) + phase_flags,
            ("--model", "test") + _PIX2PIX_NETWORK + ("--dataset_mode", "single"),
        ))
    return table


def _cyclegan_models() -> Registry[PretrainedEntry]:
    table: Registry[PretrainedEntry] = Registry("CycleGAN pretrained model")
    for name, dataroot in _CYCLEGAN_MODELS.items():
        table.add(name, PretrainedEntry(name, _CYCLEGAN_MODEL.format(name=name), dataroot,
                                        ("--model", "test", "--no_dropout")))
    return table


DATASETS: Registry[Registry[DatasetEntry]] = Registry("dataset kind")
DATASETS.add("pix2pix", _dataset_table("pix2pix", _PIX2PIX_DATA, _PIX2PIX_DATASETS))
DATASETS.add("cyclegan", _dataset_table("CycleGAN", _CYCLEGAN_DATA, {n: () for n in _CYCLEGAN_DATASETS}))

PRETRAINED: Registry[Registry[PretrainedEntry]] = Registry("pretrained model kind")
PRETRAINED.add("pix2pix", _pix2pix_models())
PRETRAINED.add("cyclegan", _cyclegan_models())

# What `train.py` needs for a dataset of each kind (besides its own flags).
_TRAIN_MODEL = {"pix2pix": ("--model", "pix2pix"), "cyclegan": ("--model", "cycle_gan")}


def dataset_names(kind: str) -> List[str]:
    """Names `fetch_dataset(kind, ...)` accepts (the command line's choices)."""
    return DATASETS.get(kind).names()


def pretrained_names(kind: str) -> List[str]:
    """Names `fetch_pretrained(kind, ...)` accepts (the command line's choices)."""
    return PRETRAINED.get(kind).names()


# --------------------------------------------------------------------------------------------- download


def _one_line(text: object, limit: int = 300) -> str:
    """Error reasons from sockets and pickles may span lines; the CLI shows exactly one."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _reason(error: BaseException) -> str:
    """`[Errno 111] Connection refused` -> `connection refused`: what a person needs, without codes."""
    inner = getattr(error, "reason", error)
    text = getattr(inner, "strerror", None) or str(inner) or inner.__class__.__name__
    text = _one_line(text)
    return text[:1].lower() + text[1:]


def _network_error(url: str, error: BaseException) -> DownloadError:
    if isinstance(error, urllib.error.HTTPError) and error.code == 404:
        return DownloadError(f"not found at {url} (HTTP 404): check the name or the mirror given with --url. "
                             f"{OFFLINE_HINT}")
    if isinstance(error, urllib.error.HTTPError):
        return DownloadError(f"cannot download {url}: HTTP {error.code} {_one_line(error.reason)}. {OFFLINE_HINT}")
    return DownloadError(f"cannot download {url}: {_reason(error)}. {OFFLINE_HINT}")


def _open_remote(url: str, timeout: float) -> Tuple[IO[bytes], Optional[int]]:
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (scheme checked by the table)
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
        raise DownloadError(f"cannot read {path}: {_reason(e)}") from None


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


def download_file(url: str, dest: PathLike, *, timeout: float = 60, progress: bool = True) -> str:
    """Fetch `url` (http(s)/ftp, `file://`, or a plain local path) to `dest`; return `dest`.

    The bytes go to a temporary file in `dest`'s folder that replaces `dest` only once complete (the
    length announced by the server is checked: a server that closes early does not produce a short file).
    `timeout` bounds the connection and every read, so a dead network fails instead of hanging. Failures
    raise `DownloadError` with one line that says how to proceed without internet.
    """
    dest = os.fspath(dest)
    scheme = _scheme(url)
    opener = _OPENERS.get(scheme)
    if opener is None:
        raise DownloadError(f"cannot download {url}: unsupported URL scheme {scheme!r} "
                            f"(use one of {', '.join(s for s in _OPENERS if s)} or a local path)")
    parent = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the folder {parent} for {dest}: {_reason(e)}") from None
    logger.info("fetching %s -> %s", url, dest)
    stream, total = opener(url, timeout)
    is_remote = scheme not in ("", "file")

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
                           else DownloadError(f"cannot read {url}: {_reason(e)}")) from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(f"cannot download {url}: the connection closed after {received} of {total} "
                                f"bytes. {OFFLINE_HINT}")

    try:
        atomic_write(dest, copy)
    except OSError as e:  # writing failed (disk full, permissions); atomic_write names `dest`
        raise DownloadError(_one_line(e)) from None
    finally:
        stream.close()
    return dest


# ---------------------------------------------------------------------------------------------- extract


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


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


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
        raise DataError(f"cannot read the archive {archive}: {_one_line(e)}") from None
    with handle:  # type: ignore[attr-defined]
        try:
            members = fmt.members(archive, handle)
        except _ARCHIVE_ERRORS as e:
            raise DataError(f"cannot read the archive {archive}: {_one_line(e)}") from None
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
                raise DataError(f"cannot extract {archive}: {_one_line(e)}") from None
            try:
                for name, target in zip(tops, targets):
                    if os.path.lexists(target):  # overwrite: keep the old entry until the new one is in place
                        os.replace(target, os.path.join(staging, ".old-" + name))
                    os.replace(os.path.join(staging, name), target)
            except OSError as e:
                raise DataError(f"cannot move the contents of {archive} into {dest_dir}: {_reason(e)}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return targets


# ----------------------------------------------------------------------------------------------- fetch


def fetch_dataset(kind: str, name: str, root: PathLike = "datasets", *, from_file: Optional[PathLike] = None,
                  url: Optional[str] = None, overwrite: bool = False, timeout: float = 60,
                  progress: bool = True) -> str:
    """Put the published dataset `name` of `kind` ('pix2pix' or 'cyclegan') in `<root>/<name>`; return it.

    `from_file` uses an archive already on this machine (the offline path); `url` replaces the published
    address (a mirror). Unknown names raise `KeyError` listing the valid ones. The existing folder is
    checked before downloading, so a refusal costs no transfer. The downloaded archive is deleted after
    extraction; a `from_file` archive is left alone.
    """
    entry = DATASETS.get(kind).get(name)
    root = os.fspath(root)
    target = os.path.join(root, name)
    if entry.restricted and from_file is None and url is None:
        raise DataError(entry.restricted)
    if os.path.lexists(target) and not overwrite:
        raise DataError(f"{target} already exists: delete it first to download {name} again")
    if from_file is not None:
        extract_archive(from_file, root, overwrite=overwrite, top=name)
    else:
        suffix = os.path.splitext(urllib.parse.urlsplit(entry.url).path)[1]
        archive = os.path.join(root, f".{name}.download{suffix}")
        try:
            download_file(url or entry.url, archive, timeout=timeout, progress=progress)
            extract_archive(archive, root, overwrite=overwrite, top=name)
        finally:
            if os.path.lexists(archive):
                os.unlink(archive)
    logger.debug("dataset %s is in %s", name, target)
    return target


def verify_state_dict(path: PathLike, display_name: Optional[str] = None) -> int:
    """Check that `path` is a plain network state_dict; return its number of tensors.

    `weights_only=True` makes `torch.load` refuse anything but tensors and plain containers, so a crafted
    file cannot run code; the dict-of-tensors check catches whole pickled models, optimizer states and
    unrelated files before they are installed where `test.py` would load them.
    """
    import torch  # local import: the dataset half of this module does not need torch

    shown = display_name or os.fspath(path)
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to load a user's file is the file's problem
        raise CheckpointError(f"{shown} is not a network state_dict that can be loaded safely "
                              f"(weights_only=True): {_one_line(e, 200)}") from None
    if not isinstance(state, dict) or not state:
        held = "an empty dict" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise CheckpointError(f"{shown} is not a network state_dict: it holds {held}, expected parameter "
                              "names mapped to tensors")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{shown} is not a network state_dict: {bad[0]!r} holds a "
                              f"{type(state[bad[0]]).__name__}, not a tensor")
    return len(state)


def pretrained_dir(name: str, checkpoints_dir: PathLike = "checkpoints") -> str:
    """`<checkpoints_dir>/<name>_pretrained`: the `--name` the reference uses for its published models."""
    return os.path.join(os.fspath(checkpoints_dir), f"{name}_pretrained")


def fetch_pretrained(kind: str, name: str, checkpoints_dir: PathLike = "checkpoints", *,
                     from_file: Optional[PathLike] = None, url: Optional[str] = None, timeout: float = 60,
                     progress: bool = True) -> str:
    """Install the published generator `name` of `kind` as `<checkpoints_dir>/<name>_pretrained/latest_net_G.pth`.

    Downloads (or copies `from_file`) to a temporary name in that folder, verifies it with
    `verify_state_dict`, and only then renames it onto `latest_net_G.pth` (replacing an older copy);
    a refused file is deleted. Returns the path of the installed file.
    """
    entry = PRETRAINED.get(kind).get(name)
    folder = pretrained_dir(name, checkpoints_dir)
    dest = os.path.join(folder, "latest_net_G.pth")
    source = os.fspath(from_file) if from_file is not None else (url or entry.url)
    if from_file is not None and not os.path.isfile(source):
        raise CheckpointError(f"--from-file {source}: no such file")
    staging = os.path.join(folder, ".latest_net_G.pth.download")
    created = not os.path.isdir(folder)
    installed = False
    try:
        download_file(source, staging, timeout=timeout, progress=progress)
        count = verify_state_dict(staging, display_name=source)
        os.replace(staging, dest)
        installed = True
    finally:
        if os.path.lexists(staging):
            os.unlink(staging)
        if created and not installed:  # do not leave an empty <name>_pretrained behind
            try:
                os.rmdir(folder)
            except OSError:
                pass
    logger.debug("%s generator %s (%d tensors) is in %s", kind, name, count, dest)
    return dest


# ---------------------------------------------------------------------------------------- next commands


def _command(script: str, flags: Iterable[str]) -> str:
    return " ".join(["python", script] + [shlex.quote(f) for f in flags])


def _is_default(path: PathLike, default: str) -> bool:
    return os.path.normpath(os.fspath(path)) == os.path.normpath(default)


def train_command(kind: str, name: str, root: PathLike = "datasets") -> str:
    """The `train.py` command for a fetched dataset (shown after the download)."""
    entry = DATASETS.get(kind).get(name)
    flags = ["--dataroot", os.path.join(os.fspath(root), name), "--name", f"{name}_{kind}",
             *_TRAIN_MODEL[kind], *entry.train_flags]
    return _command("train.py", flags)


def test_commands(kind: str, name: str, checkpoints_dir: PathLike = "checkpoints",
                  root: PathLike = "datasets") -> List[str]:
    """`test.py` commands for an installed pretrained generator: on its dataset, and (pix2pix) on single
    images of one's own, whose folder is written as `<your images>`."""
    entry = PRETRAINED.get(kind).get(name)
    common = ["--name", f"{name}_pretrained"]
    if not _is_default(checkpoints_dir, "checkpoints"):
        common += ["--checkpoints_dir", os.fspath(checkpoints_dir)]
    commands = [_command("test.py", ["--dataroot", os.path.join(os.fspath(root), entry.test_dataroot),
                                     *common, *entry.test_flags])]
    if entry.single_image_flags:
        own = _command("test.py", ["--dataroot", "IMAGES", *common, *entry.single_image_flags])
        commands.append(own.replace("IMAGES", "<your images>", 1))
    return commands
