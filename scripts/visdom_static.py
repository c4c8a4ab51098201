"""Fill visdom 0.2.4's static folder from the npm registry, so its dashboard works without internet.

    python scripts/visdom_static.py                    # npm pack each package, fill <visdom>/static, mark it built
    python scripts/visdom_static.py --check            # exit 0 if complete, 1 if not; changes nothing
    python scripts/visdom_static.py --from-dir DIR     # use .tgz files fetched elsewhere with `npm pack`
    python scripts/visdom_static.py --static-dir DIR   # fill another folder than the installed visdom's

Why: on its first start `python -m visdom.server` downloads its third-party JavaScript, CSS and fonts from
CDNs (unpkg, cdn.plot.ly, d3js.org, cdnjs) into `visdom/static/`. Offline it logs an error per file and then
crashes on the MathJax download; without those files its page stays blank. This script takes the same files
from the npm registry instead (the only remote it talks to, and only through `npm pack`), writes them where
visdom 0.2.4 looks for them, and then writes the marker `static/version.built` containing the visdom
version. visdom's `server/build.py` (`download_scripts`) skips every CDN download when that marker holds
its version and the file exists; the MathJax files are skipped whenever they exist.

Where the files come from is the table `STATIC_FILES` below (package@version, file inside the npm tarball
under `package/`, path under `static/`); it is the project's only copy, and a test compares it with the
reference table when that is available.

Without registry access, run on a machine that has it (no Python needed there):

    npm pack <every package@version of STATIC_FILES>          # writes e.g. jquery-3.1.1.tgz, d3-3.5.17.tgz

copy the .tgz files over and pass their folder with `--from-dir`. If some are missing, the error message
lists the exact `npm pack` command for them.

Tarballs are read safely: only the listed members are read (regular files only, never extracted), so a
tarball cannot write anywhere else. All tarballs are read before anything is written; each file is then
replaced atomically (a reader sees the old or the new file), files that already have the right bytes are
left alone, and the marker is written last. Running it again is cheap: when `--check` would pass it does
nothing (`--force` fetches and rewrites anyway).

`--check` verifies that every target is a non-empty regular file and that the marker holds the version;
it does not compare contents. Errors (npm missing, registry unreachable, a package or a file missing, a
different visdom version): one line on stderr, exit code 2; a file that cannot be written: exit code 1.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import OrderedDict
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple

from util.cli import OptionParser, run_cli
from util.errors import OptionError, StorageError, ToolkitError
from util.fileio import atomic_write

VISDOM_VERSION = "0.2.4"  # the visdom release STATIC_FILES is for
MARKER = "version.built"  # visdom/server/build.py: static/version.built holding visdom.__version__
NPM_TIMEOUT_S = 600  # one `npm pack` (mathjax 2.7.5 is the largest, a few MB)
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # no listed file comes near this; refuses absurd headers

# (npm package@version, file inside the npm tarball under package/, path under visdom/static/)
STATIC_FILES: Tuple[Tuple[str, str, str], ...] = (
    ("jquery@3.1.1", "dist/jquery.min.js", "js/jquery.min.js"),
    ("bootstrap@3.3.7", "dist/js/bootstrap.min.js", "js/bootstrap.min.js"),
    ("react@16.2.0", "umd/react.production.min.js", "js/react-react.min.js"),
    ("react-dom@16.2.0", "umd/react-dom.production.min.js", "js/react-dom.min.js"),
    ("react-modal@3.1.10", "dist/react-modal.min.js", "js/react-modal.min.js"),
    ("plotly.js-dist-min@2.11.1", "plotly.min.js", "js/plotly-plotly.min.js"),
    ("sjcl@1.0.7", "sjcl.js", "js/sjcl.js"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js", "js/layout_bin_packer.js"),
    ("d3@3.5.17", "d3.min.js", "js/d3.v3.min.js"),
    ("d3-selection-multi@1.0.1", "build/d3-selection-multi.js", "js/d3-selection-multi.v1.js"),
    ("save-svg-as-png@1.4.17", "lib/saveSvgAsPng.js", "js/saveSvgAsPng.js"),
    ("react-resizable@1.4.6", "css/styles.css", "css/react-resizable-styles.css"),
    ("react-grid-layout@0.16.3", "css/styles.css", "css/react-grid-layout-styles.css"),
    ("bootstrap@3.3.7", "dist/css/bootstrap.min.css", "css/bootstrap.min.css"),
    ("classnames@2.2.5", "index.js", "fonts/classnames"),
    ("bootstrap@3.3.7", "dist/fonts/glyphicons-halflings-regular.eot", "fonts/glyphicons-halflings-regular.eot"),
    ("bootstrap@3.3.7", "dist/fonts/glyphicons-halflings-regular.woff2",
     "fonts/glyphicons-halflings-regular.woff2"),
    ("bootstrap@3.3.7", "dist/fonts/glyphicons-halflings-regular.woff", "fonts/glyphicons-halflings-regular.woff"),
    ("bootstrap@3.3.7", "dist/fonts/glyphicons-halflings-regular.ttf", "fonts/glyphicons-halflings-regular.ttf"),
    ("bootstrap@3.3.7", "dist/fonts/glyphicons-halflings-regular.svg", "fonts/glyphicons-halflings-regular.svg"),
    # visdom's own list asks for this name, '#' included (a URL fragment it kept in the file name).
    ("bootstrap@3.3.7", "dist/fonts/glyphicons-halflings-regular.svg",
     "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular"),
    ("mathjax@2.7.5", "MathJax.js", "js/mathjax/2.7.5/MathJax.js"),
    ("mathjax@2.7.5", "config/Safe.js", "js/mathjax/2.7.5/config/Safe.js"),
    ("mathjax@2.7.5", "config/TeX-AMS-MML_HTMLorMML.js", "js/mathjax/2.7.5/config/TeX-AMS-MML_HTMLorMML.js"),
    ("mathjax@2.7.5", "extensions/Safe.js", "js/mathjax/2.7.5/extensions/Safe.js"),
    ("mathjax@2.7.5", "jax/output/SVG/fonts/TeX/fontdata.js", "js/mathjax/2.7.5/jax/output/SVG/fonts/TeX/fontdata.js"),
    ("mathjax@2.7.5", "jax/output/SVG/jax.js", "js/mathjax/2.7.5/jax/output/SVG/jax.js"),
    ("mathjax@2.7.5", "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js",
     "js/mathjax/2.7.5/jax/output/SVG/fonts/TeX/Size1/Regular/Main.js"),
    ("mathjax@2.7.5", "jax/output/SVG/config.js", "js/mathjax/2.7.5/jax/output/SVG/config.js"),
)


class StaticFilesError(ToolkitError):
    """npm missing, the registry unreachable, a tarball or a file in it missing, a different visdom."""


# ------------------------------------------------------------------------------------------------ the table


def split_spec(spec: str) -> Tuple[str, str]:
    """'plotly.js-dist-min@2.11.1' -> ('plotly.js-dist-min', '2.11.1'); scoped names keep their leading @."""
    name, _, version = spec.rpartition("@")
    return name, version


def tarball_name(spec: str) -> str:
    """The file name `npm pack <spec>` writes: '<name>-<version>.tgz', a scope '@s/n' becoming 's-n'."""
    name, version = split_spec(spec)
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def packages() -> "OrderedDict[str, List[Tuple[str, str]]]":
    """package@version -> [(file in the tarball, target under static/)], in table order."""
    by_spec: "OrderedDict[str, List[Tuple[str, str]]]" = OrderedDict()
    for spec, inner, target in STATIC_FILES:
        by_spec.setdefault(spec, []).append((inner, target))
    return by_spec


def target_path(static_dir: Path, target: str) -> Path:
    """`static_dir/target`, refusing a target that would leave the folder (the table is data: check it)."""
    parts = PurePosixPath(target).parts
    if not parts or PurePosixPath(target).is_absolute() or ".." in parts or "\\" in target:
        raise StaticFilesError(f"target {target!r} is not a plain relative path under the static folder")
    return static_dir.joinpath(*parts)


# ------------------------------------------------------------------------------------------------ visdom


def installed_static_dir() -> Path:
    """The installed visdom's static folder: `<package>/static`, found as visdom's own `get_visdom_path`
    finds it (`Path(visdom.__file__).parent / 'static'`, without importing visdom and its dependencies)."""
    try:
        spec = importlib.util.find_spec("visdom")
    except (ImportError, ValueError):  # a broken install, or a module without a spec in sys.modules
        spec = None
    if spec is None or spec.origin is None:
        raise StaticFilesError("visdom is not installed in this Python "
                               f"(pip install visdom=={VISDOM_VERSION}), or pass --static-dir")
    return Path(spec.origin).resolve().parent / "static"


def expected_version(static_dir: Path) -> str:
    """The text the marker must hold: visdom.__version__, which visdom reads from the VERSION file next to
    its `static/` folder. A folder outside a visdom package (tests, a staging copy) gets VISDOM_VERSION."""
    version_file = static_dir.parent / "VERSION"
    if not version_file.is_file():
        return VISDOM_VERSION
    try:
        version = version_file.read_text().strip()
    except OSError as e:
        raise StaticFilesError(f"cannot read {version_file}: {e.strerror or e}") from e
    if version != VISDOM_VERSION:
        raise StaticFilesError(f"{static_dir} belongs to visdom {version}, but this script's file table is for "
                               f"visdom {VISDOM_VERSION} (pip install visdom=={VISDOM_VERSION})")
    return version


def problems(static_dir: Path, version: str) -> List[str]:
    """What keeps `static_dir` from being complete: missing (or empty) targets, then the marker."""
    missing = []
    for _, _, target in STATIC_FILES:
        path = target_path(static_dir, target)
        try:
            ok = path.is_file() and path.stat().st_size > 0
        except OSError:
            ok = False
        if not ok:
            missing.append(target)
    found: List[str] = []
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        found.append(f"{len(missing)} of {len(STATIC_FILES)} files missing or empty ({shown})")
    marker = static_dir / MARKER
    try:
        text: Optional[str] = marker.read_text().strip()
    except OSError:
        text = None
    if text is None:
        found.append(f"no {MARKER}")
    elif text != version:
        found.append(f"{MARKER} says {text!r}, not {version!r}")
    return found


# ------------------------------------------------------------------------------------------------ tarballs


def _npm_reason(output: str) -> str:
    """The line of npm's error output that says what went wrong, with its code: 'ETARGET: notarget No
    matching version found for jquery@99.9.9.', 'ECONNREFUSED: FetchError: request to ... failed, ...'."""
    code, reason = "", ""
    for line in output.splitlines():
        line = line.strip()
        text = line[len("npm error"):].strip() if line.startswith("npm error") else line
        words = text.split()
        if not words:
            continue
        if words[0] == "code" and len(words) > 1 and not code:
            code = words[1]
        elif words[0] not in ("code", "syscall", "errno") and not reason:
            reason = text
    return f"{code}: {reason}" if code and reason else (reason or code or "no output")


def npm_pack(specs: Sequence[str], dest: Path) -> Dict[str, Path]:
    """`npm pack <spec>` for each spec into `dest` (npm fetches from its configured registry)."""
    npm = shutil.which("npm")
    if npm is None:
        raise StaticFilesError("npm not found on PATH: install Node.js/npm, or fetch the tarballs elsewhere "
                               "with `npm pack` and pass their folder with --from-dir")
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
               npm_config_audit="false")
    tarballs: Dict[str, Path] = {}
    for spec in specs:
        print(f"npm pack {spec}", flush=True)
        try:
            done = subprocess.run([npm, "pack", spec, "--loglevel=error", "--ignore-scripts", "--pack-destination",
                                   str(dest)], cwd=dest, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise StaticFilesError(f"npm pack {spec} did not finish in {NPM_TIMEOUT_S} s: is the registry "
                                   "reachable? (or use --from-dir)") from None
        except OSError as e:
            raise StaticFilesError(f"cannot run {npm}: {e.strerror or e}") from e
        if done.returncode != 0:
            raise StaticFilesError(f"npm pack {spec} failed: {_npm_reason(done.stderr + chr(10) + done.stdout)} "
                                   "(without registry access use --from-dir)")
        printed = [line.strip() for line in done.stdout.splitlines() if line.strip().endswith(".tgz")]
        candidates = [dest / Path(printed[-1]).name] if printed else []
        candidates.append(dest / tarball_name(spec))
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise StaticFilesError(f"npm pack {spec} succeeded but wrote no {tarball_name(spec)} in {dest}")
        tarballs[spec] = path
    return tarballs


def from_dir(specs: Sequence[str], folder: Path) -> Dict[str, Path]:
    """The tarballs `npm pack` would have written, taken from `folder`; all missing ones named at once."""
    if not folder.is_dir():
        raise StaticFilesError(f"--from-dir {folder}: no such folder")
    tarballs = {spec: folder / tarball_name(spec) for spec in specs}
    missing = [spec for spec, path in tarballs.items() if not path.is_file()]
    if missing:
        names = ", ".join(tarball_name(spec) for spec in missing)
        raise StaticFilesError(f"missing in {folder}: {names}; fetch them where the npm registry is reachable "
                               f"with: npm pack {' '.join(missing)}")
    return tarballs


def read_members(spec: str, tarball: Path, inner_files: Sequence[str]) -> Dict[str, bytes]:
    """The bytes of `package/<file>` for each file, read without extracting anything. Only regular-file
    members of exactly those names are read, so links and other paths in the tarball are never touched."""
    contents: Dict[str, bytes] = {}
    try:
        with tarfile.open(tarball, "r:*") as tar:
            for inner in inner_files:
                if inner in contents:
                    continue
                name = f"package/{inner}"
                try:
                    member = tar.getmember(name)
                except KeyError:
                    raise StaticFilesError(f"{spec}: {tarball.name} has no {name}") from None
                if not member.isfile():
                    raise StaticFilesError(f"{spec}: {name} in {tarball.name} is not a regular file")
                if member.size > MAX_MEMBER_BYTES:
                    raise StaticFilesError(f"{spec}: {name} in {tarball.name} is too large ({member.size} bytes)")
                handle = tar.extractfile(member)
                if handle is None:
                    raise StaticFilesError(f"{spec}: cannot read {name} in {tarball.name}")
                with handle:
                    contents[inner] = handle.read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise StaticFilesError(f"{spec}: cannot read {tarball}: {e}") from e
    return contents


# ------------------------------------------------------------------------------------------------ writing


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(data))
    except OSError as e:
        raise StorageError(str(e) if str(path) in str(e) else f"cannot write {path}: {e.strerror or e}") from e


def fill(static_dir: Path, version: str, tarballs: Dict[str, Path]) -> List[Tuple[str, int, str]]:
    """Read every listed file from its tarball, then write them and finally the marker.
    Returns (target, size, 'written' | 'unchanged') per table row."""
    contents: Dict[Tuple[str, str], bytes] = {}
    for spec, rows in packages().items():
        for inner, data in read_members(spec, tarballs[spec], [inner for inner, _ in rows]).items():
            contents[(spec, inner)] = data
    report: List[Tuple[str, int, str]] = []
    for spec, inner, target in STATIC_FILES:
        data = contents[(spec, inner)]
        path = target_path(static_dir, target)
        try:
            same = path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data
        except OSError:
            same = False
        if not same:
            _write(path, data)
        report.append((target, len(data), "unchanged" if same else "written"))
    _write(static_dir / MARKER, version.encode())
    return report


# ------------------------------------------------------------------------------------------------ command line


def build_parser() -> argparse.ArgumentParser:
    parser = OptionParser(prog="visdom_static.py", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--static-dir", metavar="DIR",
                        help="folder to fill (default: the installed visdom's static folder)")
    parser.add_argument("--from-dir", metavar="DIR",
                        help="take the tarballs from DIR (named as `npm pack` names them) instead of running npm")
    parser.add_argument("--check", action="store_true",
                        help="only check that every file and the marker are in place: exit 0 if so, 1 if not")
    parser.add_argument("--force", action="store_true", help="fetch and rewrite even if the folder is complete")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check and (args.from_dir or args.force):
        raise OptionError("--check changes nothing: it takes no --from-dir or --force")
    static_dir = Path(args.static_dir).expanduser().resolve() if args.static_dir else installed_static_dir()
    version = expected_version(static_dir)
    found = problems(static_dir, version)
    if args.check:
        if found:
            print(f"visdom static folder {static_dir} is not complete: {'; '.join(found)}", file=sys.stderr)
            return 1
        print(f"visdom static folder {static_dir} is complete ({len(STATIC_FILES)} files, {MARKER} = {version})")
        return 0
    if not found and not args.force:
        print(f"visdom static folder {static_dir} is already complete ({len(STATIC_FILES)} files, "
              f"{MARKER} = {version}); nothing to do (--force fetches again)")
        return 0

    specs = list(packages())
    with tempfile.TemporaryDirectory(prefix="visdom-static-") as work:
        if args.from_dir:
            tarballs = from_dir(specs, Path(args.from_dir).expanduser())
        else:
            tarballs = npm_pack(specs, Path(work))
        report = fill(static_dir, version, tarballs)

    for target, size, status in report:
        print(f"  {status:9}  {size:>9,}  {target}")
    written = sum(status == "written" for _, _, status in report)
    total = sum(size for _, size, _ in report)
    print(f"visdom static folder {static_dir}: {written} files written, {len(report) - written} unchanged "
          f"({total:,} bytes from {len(specs)} npm packages); {MARKER} = {version}")
    print("start the dashboard with: python -m visdom.server -port 8097 -bind_local")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
