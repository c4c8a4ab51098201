"""Errors a user can act on. The command-line entry points print their message as one line and exit with
`exit_code`: 2 for bad input (options, data, checkpoint files), 1 for a run that failed on its way."""
from __future__ import annotations

from typing import Optional


class ToolkitError(Exception):
    """Base class of every error caused by the user's input or environment rather than by a bug."""

    exit_code = 2


class OptionError(ToolkitError):
    """An option value or a combination of options is invalid. The message names the option."""


class DataError(ToolkitError):
    """A dataset folder or an image cannot be used. The message names the path and what to do.

    `path` is the offending file or folder when known (used to count and skip bad images).
    """

    def __init__(self, message: str, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):  # keep `path` when the error crosses from a DataLoader worker
        return (type(self), (str(self), self.path))


class CheckpointError(ToolkitError):
    """A checkpoint file is missing, unreadable or does not fit the network."""


class ExportError(ToolkitError):
    """A network cannot be exported (scripts/export.py, --backend onnxruntime), or its export does not compute what
    the network does, or the package that exports it is missing. The message says which."""


class FolderBusyError(ToolkitError):
    """Another process is writing the output folder (a run of the same --name, a second install of one model).
    The message names the folder and the holder's PID (util/locks.py)."""


class StorageError(ToolkitError):
    """A file could not be written (disk full, permissions). Earlier checkpoints are intact."""

    exit_code = 1


class TrainingError(ToolkitError):
    """Training cannot go on (e.g. a loss became NaN). The last good checkpoint is kept."""

    exit_code = 1
