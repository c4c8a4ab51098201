"""Tests of util/download/ and scripts/download.py, offline: local files and a server on 127.0.0.1 only.

A guard (autouse) makes any connection to another address fail the test, so a wrong default URL can never
reach the internet from the test suite.
"""
from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Type

import pytest
from helpers import LOOPBACK, PROXY_VARS, ROOT, load_script, refuse_non_loopback
import torch
from PIL import Image

from util import download
from util.download import (ChecksumError, DatasetEntry, DownloadError, PretrainedEntry, download_file,
                           extract_archive, fetch_dataset, fetch_pretrained, install)
from util.errors import CheckpointError, DataError
from util.registry import Registry

REPO = ROOT
SCRIPT = REPO / "scripts" / "download.py"


# ---------------------------------------------------------------------------------------------- guards


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_non_loopback(monkeypatch)


def clean_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["PYTHONPATH"] = ""  # the script must find `util` by itself
    return env


# --------------------------------------------------------------------------------------------- helpers


def png_bytes(color: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (color, 255 - color, 128)).save(buf, format="PNG")
    return buf.getvalue()


def make_tar(path: Path, files: Dict[str, bytes], extra: Optional[List[tarfile.TarInfo]] = None) -> Path:
    """A tar (gzip-compressed for .tar.gz / .tgz) with exactly these member names: tarfile writes them as
    given, `..` and absolute paths included."""
    mode = "w:gz" if path.name.endswith((".tar.gz", ".tgz")) else "w"
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return path


def make_zip(path: Path, files: Dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


FACADES = {f"facades/{split}/{i}.png": png_bytes(i) for split in ("train", "val", "test") for i in (1, 2)}
HORSE2ZEBRA = {f"horse2zebra/{split}/{i}.png": png_bytes(i) for split in ("trainA", "trainB", "testA", "testB")
               for i in (1, 2)}


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def tree(root: Path) -> Set[str]:
    """Every path under `root` (relative), links included: what a test compares before and after."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def closed_port() -> int:
    """A loopback port nobody listens on: bound by us, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def save_state_dict(path: Path) -> Path:
    torch.manual_seed(0)
    torch.save(torch.nn.Conv2d(3, 3, 1).state_dict(), path)
    return path


class MakesMarker:
    """Unpickling this would create `marker`: the payload a malicious .pth carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


# ------------------------------------------------------------------------------------------- the server


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base
        pass


class DropsMidBody(BaseHTTPRequestHandler):
    """Announces 1000 bytes, sends 10, closes the connection."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class NeverAnswers(BaseHTTPRequestHandler):
    """Accepts the request and stays silent (longer than the client's timeout)."""

    def do_GET(self) -> None:  # noqa: N802
        threading.Event().wait(2.0)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(handler: Type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def www(tmp_path: Path) -> Path:
    folder = tmp_path / "www"
    folder.mkdir()
    make_tar(folder / "facades.tar.gz", FACADES)
    make_zip(folder / "horse2zebra.zip", HORSE2ZEBRA)
    save_state_dict(folder / "horse2zebra.pth")
    return folder


@pytest.fixture
def server(www: Path) -> Iterator[str]:
    """Serves the `www` folder on 127.0.0.1; shut down when the test ends."""
    yield from serve(functools.partial(Quiet, directory=str(www)))


@pytest.fixture
def dropping_server() -> Iterator[str]:
    yield from serve(DropsMidBody)


@pytest.fixture
def silent_server() -> Iterator[str]:
    yield from serve(NeverAnswers)


# ------------------------------------------------------------------------------------------------ tables


def test_tables_hold_the_published_names_and_addresses() -> None:
    assert download.dataset_names("pix2pix") == ["facades", "cityscapes", "night2day", "edges2handbags",
                                                 "edges2shoes", "maps"]
    assert len(download.dataset_names("cyclegan")) == 12 and "ae_photos" in download.dataset_names("cyclegan")
    assert download.pretrained_names("pix2pix") == ["edges2shoes", "sat2map", "map2sat", "facades_label2photo",
                                                    "day2night"]
    assert len(download.pretrained_names("cyclegan")) == 18
    assert (download.DATASETS.get("pix2pix").get("maps").url
            == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/maps.tar.gz")
    assert (download.DATASETS.get("cyclegan").get("maps").url
            == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/maps.zip")
    assert (download.PRETRAINED.get("pix2pix").get("day2night").url
            == "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/day2night.pth")
    assert (download.PRETRAINED.get("cyclegan").get("style_monet").url
            == "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_monet.pth")


def test_unknown_names_list_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="valid: .*horse2zebra"):
        fetch_dataset("cyclegan", "horse2zebro", tmp_path)
    with pytest.raises(KeyError, match="valid: .*facades_label2photo"):
        fetch_pretrained("pix2pix", "facades", tmp_path)
    with pytest.raises(KeyError, match="valid: pix2pix, cyclegan"):
        fetch_dataset("stargan", "facades", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cityscapes_is_not_downloaded_and_says_where_it_comes_from(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"https://cityscapes-dataset\.com"):
        fetch_dataset("pix2pix", "cityscapes", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_commands_printed_after_a_download() -> None:
    assert download.test_commands("cyclegan", "horse2zebra") == [
        "python test.py --dataroot datasets/horse2zebra/testA --name horse2zebra_pretrained --model test --no_dropout"]
    on_dataset, own_images = download.test_commands("pix2pix", "facades_label2photo", "ckpt")
    assert on_dataset == ("python test.py --dataroot datasets/facades --name facades_label2photo_pretrained "
                          "--checkpoints_dir ckpt --model pix2pix --direction BtoA")
    assert "--model test --netG unet_256 --norm batch --dataset_mode single" in own_images
    assert "--phase val" in download.test_commands("pix2pix", "sat2map")[0]  # maps has no test/ split
    assert download.train_command("cyclegan", "horse2zebra") == (
        "python train.py --dataroot datasets/horse2zebra --name horse2zebra_cyclegan --model cycle_gan")


# ---------------------------------------------------------------------------------------------- download


def test_download_file_over_http(server: str, www: Path, tmp_path: Path) -> None:
    dest = tmp_path / "got" / "facades.tar.gz"
    assert download_file(f"{server}/facades.tar.gz", dest, progress=False) == str(dest)
    assert dest.read_bytes() == (www / "facades.tar.gz").read_bytes()
    assert sorted(os.listdir(dest.parent)) == ["facades.tar.gz"]


def test_download_file_from_file_url_and_plain_path(www: Path, tmp_path: Path) -> None:
    source = www / "horse2zebra.zip"
    download_file(source.as_uri(), tmp_path / "a.zip", progress=False)
    download_file(str(source), tmp_path / "b.zip", progress=False)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes() == source.read_bytes()
    with pytest.raises(DownloadError, match="cannot read .*missing.zip"):
        download_file(str(www / "missing.zip"), tmp_path / "c.zip", progress=False)
    assert not (tmp_path / "c.zip").exists()


def test_http_404_says_not_found(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"not found at http://127\.0\.0\.1:\d+/missing\.zip") as err:
        download_file(f"{server}/missing.zip", tmp_path / "x.zip", progress=False)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "www"]


def test_no_server_gives_the_offline_message(tmp_path: Path) -> None:
    url = f"http://{LOOPBACK}:{closed_port()}/facades.tar.gz"
    with pytest.raises(DownloadError) as err:
        download_file(url, tmp_path / "facades.tar.gz", progress=False)
    message = str(err.value)
    assert message.startswith(f"cannot download {url}: ") and "\n" not in message
    assert "Without internet" in message and "--from-file PATH" in message
    assert list(tmp_path.iterdir()) == []


def test_connection_dropped_mid_body_leaves_no_file(dropping_server: str, tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "model.pth"
    dest.parent.mkdir()
    with pytest.raises(DownloadError, match="closed after 10 of 1000 bytes"):
        download_file(f"{dropping_server}/model.pth", dest, progress=False)
    assert os.listdir(dest.parent) == []  # neither dest nor the temporary file


def test_silent_server_times_out(silent_server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="timed out.*--from-file"):
        download_file(f"{silent_server}/x.zip", tmp_path / "x.zip", timeout=0.3, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="unsupported URL scheme 'gopher'"):
        download_file("gopher://127.0.0.1/x", tmp_path / "x", progress=False)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_file_checks_sha256_before_replacing_dest(www: Path, tmp_path: Path) -> None:
    source = www / "horse2zebra.pth"
    dest = tmp_path / "got" / "model.pth"
    download_file(str(source), dest, progress=False, sha256=sha256_of(source).upper())  # case does not matter
    assert dest.read_bytes() == source.read_bytes()
    dest.write_bytes(b"previous")
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        download_file(source.as_uri(), dest, progress=False, sha256=wrong)
    message = str(err.value)
    assert "\n" not in message and source.as_uri() in message
    assert f"sha256 {sha256_of(source)}, expected {wrong}" in message and "not installed" in message
    assert dest.read_bytes() == b"previous" and os.listdir(dest.parent) == ["model.pth"]
    with pytest.raises(ValueError, match="64 hex digits"):
        download_file(str(source), dest, progress=False, sha256="abc")


def test_catalogue_sha256_is_verified_before_install(www: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry that carries a hash (the SR model zoo's files will) installs only the file with that hash."""
    good = www / "horse2zebra.pth"
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.ones(1)}, other)  # a valid state_dict, but not the published file
    models: Registry[PretrainedEntry] = Registry("zoo model")
    models.add("tiny", PretrainedEntry("tiny", good.as_uri(), "tiny", ("--model", "test"), sha256=sha256_of(good)))
    zoo: Registry[Registry[PretrainedEntry]] = Registry("pretrained model kind")
    zoo.add("zoo", models)
    monkeypatch.setattr(install, "PRETRAINED", zoo)
    ckpt = tmp_path / "ckpt"
    installed = Path(fetch_pretrained("zoo", "tiny", ckpt, progress=False))
    assert installed.read_bytes() == good.read_bytes()
    with pytest.raises(ChecksumError, match=f"{other} has sha256 .*not installed") as err:
        fetch_pretrained("zoo", "tiny", ckpt, from_file=other, progress=False)
    assert "\n" not in str(err.value)
    assert installed.read_bytes() == good.read_bytes() and os.listdir(installed.parent) == ["latest_net_G.pth"]

    archive = www / "facades.tar.gz"
    datasets: Registry[DatasetEntry] = Registry("zoo dataset")
    datasets.add("facades", DatasetEntry("facades", archive.as_uri(), sha256="f" * 64))
    kinds: Registry[Registry[DatasetEntry]] = Registry("dataset kind")
    kinds.add("zoo", datasets)
    monkeypatch.setattr(install, "DATASETS", kinds)
    root = tmp_path / "datasets"
    root.mkdir()
    for source in ({"from_file": archive}, {"url": archive.as_uri()}):
        with pytest.raises(ChecksumError, match=f"expected {'f' * 64}"):
            fetch_dataset("zoo", "facades", root, progress=False, **source)
        assert os.listdir(root) == []  # nothing extracted, no download left behind
    with pytest.raises(ValueError, match="64 hex digits"):
        DatasetEntry("x", "http://example.invalid/x.zip", sha256="not-a-hash")


# ------------------------------------------------------------------------------------------------ datasets


def test_fetch_pix2pix_dataset_over_http(server: str, tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    path = fetch_dataset("pix2pix", "facades", root, url=f"{server}/facades.tar.gz", progress=False)
    assert path == str(root / "facades")
    assert tree(root) == {"facades"} | {str(Path(n).parent) for n in FACADES} | set(FACADES)
    assert Image.open(root / "facades" / "test" / "2.png").size == (8, 8)
    assert os.listdir(root) == ["facades"]  # the downloaded archive and the staging folder are gone


def test_fetch_cyclegan_dataset_over_http(server: str, tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    fetch_dataset("cyclegan", "horse2zebra", root, url=f"{server}/horse2zebra.zip", progress=False)
    assert sorted(os.listdir(root / "horse2zebra")) == ["testA", "testB", "trainA", "trainB"]
    assert (root / "horse2zebra" / "trainB" / "1.png").read_bytes() == HORSE2ZEBRA["horse2zebra/trainB/1.png"]
    assert os.listdir(root) == ["horse2zebra"]


def test_fetch_dataset_from_file_and_file_url(www: Path, tmp_path: Path) -> None:
    archive = www / "facades.tar.gz"
    before = archive.read_bytes()
    fetch_dataset("pix2pix", "facades", tmp_path / "a", from_file=archive)
    fetch_dataset("pix2pix", "facades", tmp_path / "b", url=archive.as_uri(), progress=False)
    assert tree(tmp_path / "a") == tree(tmp_path / "b") and "facades/val/1.png" in tree(tmp_path / "a")
    assert archive.read_bytes() == before  # the user's archive is left alone


def test_only_the_dataset_folder_is_taken_from_the_archive(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", {**HORSE2ZEBRA, "__MACOSX/._x": b"junk", "README": b"hi"})
    fetch_dataset("cyclegan", "horse2zebra", tmp_path / "d", from_file=archive)
    assert os.listdir(tmp_path / "d") == ["horse2zebra"]
    other = make_zip(tmp_path / "o.zip", {"zebras/trainA/1.png": png_bytes()})
    with pytest.raises(DataError, match="has no top folder 'horse2zebra'/ .*zebras"):
        fetch_dataset("cyclegan", "horse2zebra", tmp_path / "e", from_file=other)
    assert not (tmp_path / "e" / "horse2zebra").exists()


def test_existing_dataset_is_refused_then_replaced_with_overwrite(www: Path, tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    (root / "facades").mkdir(parents=True)
    (root / "facades" / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="facades already exists: delete it first"):
        fetch_dataset("pix2pix", "facades", root, from_file=www / "facades.tar.gz")
    with pytest.raises(DataError, match="facades already exists: delete it first"):
        extract_archive(www / "facades.tar.gz", root)
    assert tree(root) == {"facades", "facades/mine.txt"}
    fetch_dataset("pix2pix", "facades", root, from_file=www / "facades.tar.gz", overwrite=True)
    assert not (root / "facades" / "mine.txt").exists() and (root / "facades" / "train" / "1.png").is_file()
    assert os.listdir(root) == ["facades"]


def test_damaged_archive_leaves_no_half_extracted_dataset(www: Path, tmp_path: Path) -> None:
    data = (www / "facades.tar.gz").read_bytes()
    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    root = tmp_path / "datasets"
    root.mkdir()
    with pytest.raises(DataError, match="trunc.tar.gz"):
        fetch_dataset("pix2pix", "facades", root, from_file=truncated)
    assert os.listdir(root) == []
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"<html>captive portal</html>")
    with pytest.raises(DataError, match="junk.zip is not a .tar.gz, .tgz, .tar or .zip archive"):
        extract_archive(junk, root)
    assert os.listdir(root) == []


def test_inner_links_are_allowed(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "ok.tar", {"facades/train/1.png": png_bytes()},
                       [link("facades/train/2.png", "1.png"), link("facades/val", "train")])
    made = extract_archive(archive, tmp_path / "out")
    assert made == [str(tmp_path / "out" / "facades")]
    assert (tmp_path / "out" / "facades" / "val" / "2.png").read_bytes() == png_bytes()


def _malicious(tmp_path: Path, case: str) -> tuple:
    """(archive, member named in the error) for each attack."""
    absolute = str(tmp_path / "abs_evil.txt")
    device = tarfile.TarInfo("facades/null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    cases = {  # built lazily: only the archive of this case exists
        "tar dotdot": lambda: (make_tar(tmp_path / "a.tar.gz", {**FACADES, "../evil.txt": b"x"}), "../evil.txt"),
        "tar absolute": lambda: (make_tar(tmp_path / "a.tgz", {absolute: b"x"}), absolute),
        "tar symlink out": lambda: (make_tar(tmp_path / "a.tar", {}, [link("facades/passwd", "/etc/passwd")]),
                                    "facades/passwd"),
        "tar relative symlink out": lambda: (make_tar(tmp_path / "a.tar", {}, [link("facades/up", "../../..")]),
                                             "facades/up"),
        "tar hardlink out": lambda: (make_tar(tmp_path / "a.tar", {}, [link("facades/h", "../x", tarfile.LNKTYPE)]),
                                     "facades/h"),
        "tar device": lambda: (make_tar(tmp_path / "a.tar", {}, [device]), "facades/null"),
        "zip dotdot": lambda: (make_zip(tmp_path / "a.zip", {**HORSE2ZEBRA, "../evil": b"x"}), "../evil"),
        "zip absolute": lambda: (make_zip(tmp_path / "a.zip", {"/tmp/evil": b"x"}), "/tmp/evil"),
    }
    return cases[case]()


@pytest.mark.parametrize("case", ["tar dotdot", "tar absolute", "tar symlink out", "tar relative symlink out",
                                  "tar hardlink out", "tar device", "zip dotdot", "zip absolute"])
def test_malicious_archives_are_refused_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    archive, member = _malicious(tmp_path, case)
    before = tree(tmp_path)
    with pytest.raises(DataError) as err:
        extract_archive(archive, tmp_path / "out" / "datasets")
    message = str(err.value)
    assert message.startswith(f"refusing to extract {archive}: member {member!r} ") and "\n" not in message
    assert tree(tmp_path) == before  # not even the destination folder was made


# -------------------------------------------------------------------------------------------------- models


def test_fetch_pretrained_installs_a_state_dict(www: Path, server: str, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    path = fetch_pretrained("cyclegan", "horse2zebra", ckpt, from_file=www / "horse2zebra.pth", progress=False)
    assert path == str(ckpt / "horse2zebra_pretrained" / "latest_net_G.pth")
    expected = torch.load(www / "horse2zebra.pth", weights_only=True)
    got = torch.load(path, weights_only=True)
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    assert os.listdir(ckpt / "horse2zebra_pretrained") == ["latest_net_G.pth"]
    path = fetch_pretrained("pix2pix", "map2sat", ckpt, url=f"{server}/horse2zebra.pth", progress=False)
    assert Path(path).read_bytes() == (www / "horse2zebra.pth").read_bytes()


@pytest.mark.parametrize("content", ["code", "list", "non-tensor", "empty", "not torch"])
def test_fetch_pretrained_refuses_what_is_not_a_state_dict(tmp_path: Path, content: str) -> None:
    marker = tmp_path / "MARKER"
    bad = tmp_path / "bad.pth"
    writers = {
        "code": lambda: torch.save({"weight": MakesMarker(marker)}, bad),
        "list": lambda: torch.save([torch.zeros(2)], bad),
        "non-tensor": lambda: torch.save({"weight": torch.zeros(2), "epoch": 3}, bad),
        "empty": lambda: torch.save({}, bad),
        "not torch": lambda: bad.write_text("<html>captive portal</html>"),
    }
    writers[content]()
    assert not marker.exists()
    installed = tmp_path / "ckpt" / "horse2zebra_pretrained" / "latest_net_G.pth"
    installed.parent.mkdir(parents=True)
    installed.write_bytes(b"previous")
    with pytest.raises(CheckpointError, match=f"{bad} is not a network state_dict") as err:
        fetch_pretrained("cyclegan", "horse2zebra", tmp_path / "ckpt", from_file=bad, progress=False)
    assert "\n" not in str(err.value)
    assert not marker.exists()  # the crafted pickle ran no code
    assert installed.read_bytes() == b"previous"  # the refused file replaced nothing
    assert os.listdir(installed.parent) == ["latest_net_G.pth"]
    if content == "code":  # the payload is real: a plain (unsafe) load would have run it
        torch.load(bad, weights_only=False)
        assert marker.exists()


def test_failed_model_fetch_leaves_no_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        fetch_pretrained("cyclegan", "horse2zebra", tmp_path / "ckpt", from_file=tmp_path / "missing.pth")
    url = f"http://{LOOPBACK}:{closed_port()}/x.pth"
    with pytest.raises(DownloadError, match="--from-file"):
        fetch_pretrained("cyclegan", "horse2zebra", tmp_path / "ckpt", url=url, progress=False)
    assert tree(tmp_path) in (set(), {"ckpt"})


# ----------------------------------------------------------------------------------------------------- CLI


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=clean_env(), capture_output=True,
                          text=True, timeout=60)


def test_cli_choices_come_from_the_tables() -> None:
    parser = load_script("scripts/download.py").build_parser()
    for what, table in (("dataset", download.DATASETS), ("model", download.PRETRAINED)):
        for kind in table.names():
            for name in table.get(kind).names():
                args = parser.parse_args([what, kind, name])
                assert (args.what, args.kind, args.name) == (what, kind, name)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`run_cli` installs a root handler on the (captured) stdout; later tests must not log into it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_cli_dataset_from_file(www: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                               restore_logging: None) -> None:
    script = load_script("scripts/download.py")
    root = tmp_path / "data"
    argv = ["dataset", "cyclegan", "horse2zebra", "--from-file", str(www / "horse2zebra.zip"), "--root", str(root)]
    assert script.run_cli(script.main, argv) == 0
    assert (root / "horse2zebra" / "testA" / "1.png").is_file()
    assert f"python train.py --dataroot {root / 'horse2zebra'}" in capsys.readouterr().out
    assert script.run_cli(script.main, argv) == 2
    assert capsys.readouterr().err.startswith(f"error: {root / 'horse2zebra'} already exists")


def test_cli_unknown_name_exits_2_listing_valid_names(tmp_path: Path) -> None:
    result = run_script("model", "cyclegan", "horse2zebro", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "horse2zebra" in lines[0] and "style_monet" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_model_from_file(www: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    result = run_script("model", "cyclegan", "horse2zebra", "--from-file", str(www / "horse2zebra.pth"),
                        "--checkpoints_dir", str(ckpt), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    installed = ckpt / "horse2zebra_pretrained" / "latest_net_G.pth"
    assert installed.read_bytes() == (www / "horse2zebra.pth").read_bytes()
    assert str(installed) in result.stdout
    assert "--name horse2zebra_pretrained" in result.stdout and "--model test --no_dropout" in result.stdout


def test_cli_offline_exits_2_with_one_line(tmp_path: Path) -> None:
    url = f"http://{LOOPBACK}:{closed_port()}/x.pth"
    result = run_script("model", "pix2pix", "facades_label2photo", "--url", url, "--checkpoints_dir",
                        str(tmp_path / "ckpt"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot download {url}: ") and "--from-file PATH" in lines[0]
    assert not (tmp_path / "ckpt" / "facades_label2photo_pretrained" / "latest_net_G.pth").exists()
