"""Exception types carrying the exit codes of SPEC §7.

The library raises these; only the CLI turns them into a message and an exit code.
Messages are one or two lines: what is wrong (file, row/column) and the fix.

A message that tells the user to change a setting names it with ``option(key)``: the config key
(``input.max_bad_rows``, ``columns.amount``) or, for what is not a config key, the parameter
(``previous``). ``str(exc)`` shows the key; the CLI shows its flag instead (``exc.render(flags)``),
so library messages never name command-line flags.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_OPTION = re.compile("\x1e([^\x1e\x1f]+)\x1f")


def option(key: str) -> str:
    """A reference to the setting ``key`` inside an error message (see the module docstring)."""
    return f"\x1e{key}\x1f"


MAX_SHOWN = 80  # characters of one input value (a header, a cell) quoted in a message


def clip(value: object, limit: int = MAX_SHOWN) -> str:
    """Input text quoted in a message, cut to ``limit`` characters: a 200 MB header or cell is
    named by its start and its length, so a message stays one or two lines."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def render(text: str, name: Callable[[str], str] = str) -> str:
    """``text`` with each ``option(key)`` shown as ``name(key)``."""
    return _OPTION.sub(lambda m: name(m.group(1)), text)


class SegkitError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message with each ``option(key)`` shown as ``name(key)``."""
        return render(super().__str__(), name)

    @property
    def options(self) -> list[str]:
        """The settings the message refers to, in order."""
        return _OPTION.findall(super().__str__())

    def __str__(self) -> str:
        return self.render()


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
