"""Exception types carrying the exit codes of SPEC §7.

The library raises these; only the CLI turns them into a message and an exit code.
Messages are one or two lines: what is wrong (file, row/column) and the fix.
"""

from __future__ import annotations


class SegkitError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(SegkitError):
    exit_code = 2


class DataError(SegkitError):
    """Unreadable input, a required column missing, too many rejected rows."""

    exit_code = 65


class InputNotFoundError(SegkitError):
    exit_code = 66


class OutputError(SegkitError):
    """The output directory or a file in it cannot be created."""

    exit_code = 73


class IOFailure(SegkitError):
    exit_code = 74


class ConfigError(SegkitError):
    exit_code = 78
    key: str | None = None  # the config key at fault, when there is one
