"""Errors a user can fix. The CLI entry points turn them into one line on stderr and exit code 2."""
from __future__ import annotations


class ToolkitError(Exception):
    """Base class of every error caused by the user's input rather than by a bug."""


class OptionError(ToolkitError):
    """An option value or a combination of options is invalid. The message names the option."""


class DataError(ToolkitError):
    """A dataset folder or an image cannot be used. The message names the path and what to do."""


class CheckpointError(ToolkitError):
    """A checkpoint file is missing, unreadable or does not fit the network."""
