"""The code being measured: this tree (`after`) and, for --baseline-rev, an older revision (`before`).

The old code is checked out into a temporary detached git worktree, so it is measured side by side with the
code now, in one run and interleaved, under the same machine conditions; the worktree is removed again
whatever happens.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator

from .cases import ROOT, BenchmarkError

logger = logging.getLogger("benchmark")


def git(*args: str, cwd: Path = ROOT) -> str:
    """`git ARGS` in `cwd`; its output, or a BenchmarkError with git's message."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchmarkError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def tree_info(root: Path) -> Dict[str, Any]:
    """Which code a tree holds: its commit and whether it has uncommitted changes."""
    try:
        rev = git("rev-parse", "HEAD", cwd=root)
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", cwd=root))
    except BenchmarkError:
        rev, dirty = None, None
    return {"root": str(root), "rev": rev, "uncommitted_changes": dirty}


@contextlib.contextmanager
def baseline_worktree(rev: str) -> Iterator[Path]:
    """A temporary detached git worktree of `rev`, removed again afterwards whatever happens."""
    try:
        sha = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except BenchmarkError:
        raise BenchmarkError(f"--baseline-rev {rev}: not a commit of the repository at {ROOT}") from None
    folder = Path(tempfile.mkdtemp(prefix="benchmark_baseline_"))
    path = folder / "tree"
    try:
        git("worktree", "add", "--detach", str(path), sha)
        logger.info("baseline %s (%s) checked out in %s", rev, sha[:12], path)
        yield path
    finally:
        if path.exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
