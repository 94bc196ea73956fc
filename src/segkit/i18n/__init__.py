"""Message catalogs, one per language (``en.toml``, ``zh.toml``): every word segkit shows people.

``catalog(lang)`` returns the parsed catalog (English for anything but ``zh``); the tables are
``ui`` (headings, column titles, terminal lines), ``warning`` (summary.json warnings), and the
display names of codes (``lifecycle``, ``churn``, ``change``, ``value_class``, ...).
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

LOCALES = Path(__file__).resolve().parent
LANGS = ("en", "zh")


@cache
def catalog(lang: str) -> dict[str, dict[str, str]]:
    with (LOCALES / f"{'zh' if lang == 'zh' else 'en'}.toml").open("rb") as fh:
        return tomllib.load(fh)


def message(table: str, key: str, lang: str, /, **fields: object) -> str:
    """One catalog text filled in; a field given as a dict {"en": ..., "zh": ...} takes the language's value."""
    values = {k: (v.get("zh" if lang == "zh" else "en") if isinstance(v, dict) else v) for k, v in fields.items()}
    return catalog(lang)[table][key].format(**values)
