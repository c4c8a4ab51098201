"""What the command-line entry points share: logging set-up, seeding, and turning user errors into one line.

A `ToolkitError` (bad option, unusable data, unloadable checkpoint, full disk, diverged training) ends the
program with its message on stderr and its `exit_code`; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import math
import random
import re
import sys
from typing import Callable, NoReturn, Optional, Sequence

import numpy as np
import torch

from .errors import OptionError, ToolkitError


class _Formatter(logging.Formatter):
    """Plain messages for INFO, `warning: ...` / `error: ...` for the rest."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {message}"


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever `sys.stdout` is when a record arrives (pytest and notebooks swap it)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(verbose: bool = False) -> None:
    handler = _StdoutHandler()
    handler.setFormatter(_Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def seed_everything(seed: Optional[int]) -> None:
    """Seed python, numpy and torch (all devices). `None` leaves the run unseeded."""
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def user_error_message(error: BaseException) -> str:
    """The one line to show for a user error. Errors re-raised by DataLoader workers carry the worker's
    traceback in their message; the original message is its last line."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else error.__class__.__name__
    # The worker's line reads "util.errors.DataError: <message>" (or without the module path).
    return re.sub(rf"^(?:[\w.]+\.)?{error.__class__.__name__}: ", "", last)


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    setup_logging()
    try:
        return main(argv)
    except ToolkitError as e:
        print(f"error: {user_error_message(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class OptionParser(argparse.ArgumentParser):
    """Usage errors become one `error: ...` line (via `run_cli`) with exit code 2, like every other failure."""

    def error(self, message: str) -> NoReturn:
        raise OptionError(f"{message} (see {self.prog} --help)")


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0 (--outscale, a size in MB, seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number (e.g. 2, 3.5 or 4), got {text}")
    return value


def at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse
