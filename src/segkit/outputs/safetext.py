"""Input text on the terminal: shown as data, never as escape sequences or Rich markup.

Values from the input file (ids, names, headers, rejected values) may hold ESC sequences
(clear screen, OSC-8 links), other control characters or Rich markup such as ``[red]``.
``plain`` makes them visible and inert; ``markup_safe`` also escapes Rich markup for text that
is printed inside a markup string.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls, and the Unicode bidi overrides/isolates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _show(m: re.Match[str]) -> str:
    ch = m.group(0)
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def plain(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` as printable text: control characters written as \\xNN, never sent raw.

    Newlines become ``\\n`` (one value, one line) unless ``keep_newlines`` (a two-line message).
    """
    text = "" if value is None else str(value)
    if not keep_newlines:
        text = text.replace("\n", "\\n")
    return _CONTROL.sub(_show, text.replace("\r", "\\r"))


def markup_safe(value: object) -> str:
    """``plain`` plus Rich markup escaped, for use inside a string printed with markup."""
    from rich.markup import escape

    return escape(plain(value))
