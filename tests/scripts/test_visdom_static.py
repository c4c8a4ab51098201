"""Tests of scripts/visdom_static.py: the embedded file table, filling a static folder from fake npm tarballs
(via --from-dir and via a stand-in `npm`), --check, one-line errors, tarballs that try to write elsewhere,
and (when this Python's visdom has been filled) a real visdom server on 127.0.0.1 that serves its page
without trying to download anything.

Nothing here reaches the network: the tarballs are built by the tests, `npm` is a local stand-in, and the
server runs bound to loopback with every proxy variable pointing at a closed loopback port.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import pytest
from helpers import REFERENCE, ROOT, load_script

from util.cli import run_cli

SCRIPT = ROOT / "scripts" / "visdom_static.py"
STATIC_FILES = REFERENCE / "visdom_0.2.4_static_files.tsv"
PROXY_VARS = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY",
              "ALL_PROXY", "no_proxy", "NO_PROXY")


vs = load_script("scripts/visdom_static.py")


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["PYTHONPATH"] = ""  # the script must find `util` by itself
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def fake_bytes(spec: str, inner: str) -> bytes:
    """Distinct, partly binary content for each file of each package."""
    return f"/* fake {spec} package/{inner} */\n".encode() + bytes(range(256))


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def make_tarballs(folder: Path, drop: Iterable[Tuple[str, str]] = (), evil: Optional[Dict[str, str]] = None,
                  links: Optional[Dict[Tuple[str, str], str]] = None) -> Path:
    """One tarball per package, named as `npm pack` names it, holding `package/<file>` for every listed file
    except those in `drop` (spec, file). `evil` adds members named like a traversal to every tarball
    (name -> text); `links` turns a listed file into a symlink (spec, file) -> link target."""
    folder.mkdir(parents=True, exist_ok=True)
    drop, links = set(drop), links or {}
    for spec, rows in vs.packages().items():
        with tarfile.open(folder / vs.tarball_name(spec), "w:gz") as tar:
            add_file(tar, "package/package.json", b'{"name": "fake"}')
            for inner in dict.fromkeys(inner for inner, _ in rows):
                if (spec, inner) in drop:
                    continue
                if (spec, inner) in links:
                    add_symlink(tar, f"package/{inner}", links[(spec, inner)])
                else:
                    add_file(tar, f"package/{inner}", fake_bytes(spec, inner))
            for name, text in (evil or {}).items():
                add_file(tar, name, text.encode())
    return folder


def assert_filled(static_dir: Path) -> None:
    for spec, inner, target in vs.STATIC_FILES:
        assert (static_dir / target).read_bytes() == fake_bytes(spec, inner), target
    assert (static_dir / "version.built").read_text() == "0.2.4"  # what visdom 0.2.4 compares (after strip)


def all_files(folder: Path) -> set:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}


# ---------------------------------------------------------------------------------------------- the table


def test_embedded_table_equals_the_reference() -> None:
    if not STATIC_FILES.is_file():
        pytest.skip(f"reference table {STATIC_FILES} is not available here")
    rows = [tuple(line.split("\t")) for line in STATIC_FILES.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert list(vs.STATIC_FILES) == rows


def test_table_is_well_formed() -> None:
    targets = [target for _, _, target in vs.STATIC_FILES]
    assert len(targets) == len(set(targets)) == 30
    assert "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular" in targets
    for _, _, target in vs.STATIC_FILES:
        assert vs.target_path(Path("/s"), target) == Path("/s", target)
    for bad in ("../x.js", "/etc/x", "js/../../x", ""):
        with pytest.raises(vs.StaticFilesError):
            vs.target_path(Path("/s"), bad)


def test_tarball_names_follow_npm_pack() -> None:
    assert vs.tarball_name("jquery@3.1.1") == "jquery-3.1.1.tgz"
    assert vs.tarball_name("plotly.js-dist-min@2.11.1") == "plotly.js-dist-min-2.11.1.tgz"
    assert vs.tarball_name("@scope/pkg@1.0.0") == "scope-pkg-1.0.0.tgz"


def test_npm_error_output_becomes_one_reason() -> None:
    output = ("npm error code ETARGET\nnpm error notarget No matching version found for jquery@99.9.9.\n"
              "npm error notarget In most cases ...\nnpm error A complete log of this run can be found in: x\n")
    assert vs._npm_reason(output) == "ETARGET: notarget No matching version found for jquery@99.9.9."
    output = ("npm error code ECONNREFUSED\nnpm error syscall connect\nnpm error errno ECONNREFUSED\n"
              "npm error FetchError: request to http://127.0.0.1:9/jquery failed, reason: connect ECONNREFUSED\n")
    assert vs._npm_reason(output).startswith("ECONNREFUSED: FetchError: request to http://127.0.0.1:9/jquery")


# ---------------------------------------------------------------------------------------------- filling


def test_from_dir_fills_the_folder_and_marks_it_built(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tarballs = make_tarballs(tmp_path / "tgz")
    static = tmp_path / "visdom" / "static"
    assert vs.main(["--from-dir", str(tarballs), "--static-dir", str(static)]) == 0
    assert_filled(static)
    assert all_files(static) == {t for _, _, t in vs.STATIC_FILES} | {"version.built"}  # no temp files left
    out = capsys.readouterr().out
    assert "30 files written, 0 unchanged" in out and "version.built = 0.2.4" in out

    assert vs.main(["--check", "--static-dir", str(static)]) == 0
    assert "is complete" in capsys.readouterr().out
    # Idempotent: a complete folder is left alone; --force rewrites nothing that already has the right bytes.
    assert vs.main(["--from-dir", str(tarballs), "--static-dir", str(static)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    (static / "js" / "jquery.min.js").write_bytes(b"stale")
    assert vs.main(["--from-dir", str(tarballs), "--static-dir", str(static), "--force"]) == 0
    assert "1 files written, 29 unchanged" in capsys.readouterr().out
    assert_filled(static)


def test_check_fails_on_an_empty_or_unmarked_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    static = tmp_path / "static"
    static.mkdir()
    assert run_cli(vs.main, ["--check", "--static-dir", str(static)]) == 1
    err = capsys.readouterr().err
    assert "30 of 30 files missing" in err and "no version.built" in err and len(err.strip().splitlines()) == 1

    assert vs.main(["--from-dir", str(make_tarballs(tmp_path / "tgz")), "--static-dir", str(static)]) == 0
    (static / "version.built").write_text("0.2.3")  # what visdom would delete and re-download after
    assert vs.main(["--check", "--static-dir", str(static)]) == 1
    assert "version.built says '0.2.3', not '0.2.4'" in capsys.readouterr().err
    (static / "version.built").write_text("0.2.4\n")
    (static / "fonts" / "classnames").unlink()
    assert vs.main(["--check", "--static-dir", str(static)]) == 1
    assert "1 of 30 files missing or empty (fonts/classnames)" in capsys.readouterr().err


def test_tarball_without_a_listed_file_is_one_line_exit_2(tmp_path: Path) -> None:
    woff2 = "dist/fonts/glyphicons-halflings-regular.woff2"
    tarballs = make_tarballs(tmp_path / "tgz", drop=[("bootstrap@3.3.7", woff2)])
    static = tmp_path / "static"
    done = run_script("--from-dir", str(tarballs), "--static-dir", str(static))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "bootstrap@3.3.7" in lines[0] and f"package/{woff2}" in lines[0]
    assert not static.exists() or all_files(static) == set()  # every tarball is read before anything is written


def test_missing_tarballs_are_named_with_the_npm_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tarballs = make_tarballs(tmp_path / "tgz")
    (tarballs / "mathjax-2.7.5.tgz").unlink()
    (tarballs / "d3-3.5.17.tgz").unlink()
    assert run_cli(vs.main, ["--from-dir", str(tarballs), "--static-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "d3-3.5.17.tgz, mathjax-2.7.5.tgz" in err and "npm pack d3@3.5.17 mathjax@2.7.5" in err


def test_tarball_members_never_land_outside(tmp_path: Path) -> None:
    """Traversal names, absolute names and links in a tarball are never extracted; only the listed regular
    files are read, and their bytes go to the table's targets."""
    out = tmp_path / "out"
    static = out / "visdom" / "static"
    evil = {"package/../../evil-up.js": "up", "../evil-parent.js": "parent", "package/../../../../evil-far.js": "far",
            str(tmp_path / "evil-absolute.js"): "absolute", "package/js/../../../evil-inner.js": "inner"}
    tarballs = make_tarballs(tmp_path / "tgz", evil=evil)
    with tarfile.open(tarballs / "sjcl-1.0.7.tgz") as t:
        assert any("evil" in n for n in t.getnames())  # the fakes really carry the traversal members
    assert vs.main(["--from-dir", str(tarballs), "--static-dir", str(static)]) == 0
    assert_filled(static)
    assert not [p for p in tmp_path.rglob("*evil*")]
    assert all_files(out) == {f"visdom/static/{t}" for _, _, t in vs.STATIC_FILES} | {"visdom/static/version.built"}

    # A listed file that is a link (here to a file outside) is refused, and nothing is written.
    secret = tmp_path / "secret.txt"
    secret.write_text("not for visdom")
    linked = make_tarballs(tmp_path / "tgz-link", links={("jquery@3.1.1", "dist/jquery.min.js"): str(secret)})
    fresh = tmp_path / "fresh"
    assert run_cli(vs.main, ["--from-dir", str(linked), "--static-dir", str(fresh)]) == 2
    assert not fresh.exists() or all_files(fresh) == set()


def test_other_visdom_version_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "VERSION").write_text("0.2.3\n")  # static/ inside a visdom package of another release
    assert run_cli(vs.main, ["--from-dir", str(make_tarballs(tmp_path / "tgz")),
                             "--static-dir", str(tmp_path / "static")]) == 2
    assert "belongs to visdom 0.2.3" in capsys.readouterr().err
    assert not (tmp_path / "static").exists()


# ---------------------------------------------------------------------------------------------- npm


FAKE_NPM = """#!{python}
# Stand-in for npm: `npm pack <spec> ... --pack-destination DIR` copies a prepared tarball; FAIL makes it fail.
import os, shutil, sys
args = sys.argv[1:]
if os.environ.get("FAKE_NPM_FAIL"):
    sys.stderr.write("npm error code ECONNREFUSED\\nnpm error syscall connect\\n"
                     "npm error FetchError: request to http://127.0.0.1:9/x failed, reason: connect ECONNREFUSED\\n")
    sys.exit(1)
assert args[0] == "pack" and "--ignore-scripts" in args, args
spec = args[1]
dest = args[args.index("--pack-destination") + 1]
name, _, version = spec.rpartition("@")
tgz = name.lstrip("@").replace("/", "-") + "-" + version + ".tgz"
shutil.copy(os.path.join(os.environ["FAKE_NPM_SOURCE"], tgz), os.path.join(dest, tgz))
with open(os.environ["FAKE_NPM_LOG"], "a") as log:
    log.write(spec + "\\n")
print(tgz)
"""


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_NPM_SOURCE", str(make_tarballs(tmp_path / "registry")))
    monkeypatch.setenv("FAKE_NPM_LOG", str(tmp_path / "npm.log"))
    return tmp_path / "npm.log"


def test_npm_pack_path_fills_the_folder(tmp_path: Path, fake_npm: Path) -> None:
    static = tmp_path / "static"
    assert run_cli(vs.main, ["--static-dir", str(static)]) == 0
    assert_filled(static)
    assert fake_npm.read_text().split() == list(vs.packages())  # each package fetched once


def test_npm_failure_is_one_line_exit_2(tmp_path: Path, fake_npm: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    assert run_cli(vs.main, ["--static-dir", str(tmp_path / "static")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "npm pack jquery@3.1.1 failed: ECONNREFUSED: FetchError" in err and "--from-dir" in err


def test_missing_npm_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm in there
    assert run_cli(vs.main, ["--static-dir", str(tmp_path / "static")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: npm not found on PATH") and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------- real server


def _real_static_dir() -> Path:
    try:
        static = vs.installed_static_dir()
    except vs.StaticFilesError as e:
        pytest.skip(str(e))
    found = vs.problems(static, vs.VISDOM_VERSION)
    if found:
        pytest.skip(f"visdom's static folder is not filled ({'; '.join(found)}): "
                    "run `python scripts/visdom_static.py` to enable this test")
    return static


def _get(port: int, path: str) -> Tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to 127.0.0.1
    with opener.open(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, response.read()


def test_offline_server_serves_page_and_static_files(visdom_server: Tuple[int, Path]) -> None:
    port, log = visdom_server
    static = _real_static_dir()
    deadline = time.monotonic() + 30
    while True:
        try:
            status, page = _get(port, "/")
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                pytest.fail(f"visdom server did not answer within 30 s; its output:\n{log.read_text()}")
            time.sleep(0.3)
    assert status == 200 and b"plotly-plotly.min.js" in page
    for target in ("js/plotly-plotly.min.js", "js/mathjax/2.7.5/MathJax.js", "css/bootstrap.min.css"):
        status, body = _get(port, f"/static/{target}")
        assert status == 200 and len(body) > 0 and body == (static / target).read_bytes(), target
    output = log.read_text()
    assert "Checking for scripts." in output  # visdom's download_scripts ran ...
    assert "Downloading" not in output and "while downloading" not in output  # ... and fetched nothing
