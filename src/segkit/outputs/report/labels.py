"""Words the reports show, in English and Chinese (``--lang en|zh``), read from the message catalogs.

The words live in data, one catalog per language: ``src/segkit/locales/en.toml`` and ``zh.toml``
(same keys in both; ``tests/test_report.py`` checks that). ``ui(lang)`` gives the headings,
column titles and terminal lines; ``Names`` turns the data's codes (tier, segment, lifecycle, churn
risk, persona, value class, feature names) into display names. Tier, segment and persona names
come from the config, so a user's own tiers show their own words.
"""

from __future__ import annotations

import re
from typing import Any

from segkit.config import Config, Tier
from segkit.i18n import LANGS, LOCALES, catalog

__all__ = ["BUILTIN_SEGMENTS", "CHANGE", "CHURN", "LIFECYCLE", "LOCALES", "QUALITY_KEYS", "UI", "Names", "catalog", "ui"]

UI: dict[str, dict[str, str]] = {lang: catalog(lang)["ui"] for lang in LANGS}
BUILTIN_SEGMENTS = dict(catalog("zh")["segment"])  # code -> Chinese: Others, Lost
LIFECYCLE = dict(catalog("zh")["lifecycle"])  # code -> Chinese; the English names are the codes
CHURN = dict(catalog("zh")["churn"])
CHANGE = {code: (catalog("en")["change"][code], zh) for code, zh in catalog("zh")["change"].items()}
QUALITY_KEYS = ("rows_read", "blank_rows", "totals_rows", "data_rows", "rejected_rows", "rejected_share",
                "used_rows", "excluded_after_as_of", "excluded_implausible_dates", "customers_without_purchase")


def ui(lang: str) -> dict[str, str]:
    """Headings and column titles in ``lang`` (English for anything but ``zh``)."""
    return UI["zh" if lang == "zh" else "en"]


READ_NOTE = re.compile(r"^read (?P<path>.+) as (?P<encoding>\S+), delimiter (?P<delimiter>'.*?')(?:, header on row (?P<row>\d+))?$")
REASON = re.compile(r"^(?P<what>missing|unparsable) (?P<role>\w+)(?: \(not a (?P<kind>\w+)\))?$")


def reason_text(reason: str, lang: str) -> str:
    """A rejected-row reason (English in rejected_rows.csv, a code-like text) in ``lang``."""
    words = catalog(lang)
    if reason == "amount too large":
        return str(words["reason"]["too_large"])
    m = REASON.match(reason)
    if m is None:
        return reason
    role = words["role"].get(m["role"], m["role"])
    if m["what"] == "missing":
        return str(words["reason"]["missing"].format(role=role))
    kind = words["reason"].get(f"kind_{m['kind']}", m["kind"] or "")
    return str(words["reason"]["unparsable"].format(role=role, kind=kind))


def note_text(note: str, lang: str) -> str:
    """A reading note ("read X as utf-8, delimiter ','") in ``lang``; other notes as they are."""
    m = READ_NOTE.match(note)
    if m is None or lang != "zh":
        return note
    r = catalog(lang)["reason"]
    text = r["read_note"].format(path=m["path"], encoding=m["encoding"], delimiter=m["delimiter"])
    return str(text + (r["read_note_header"].format(row=m["row"]) if m["row"] else ""))


class Names:
    """Display names of the codes in the data, in the report language."""

    def __init__(self, cfg: Config, lang: str, tiers: tuple[Tier, ...] | None = None):
        """``tiers``: the tiers the run used (default: the config's table)."""
        self.zh = lang == "zh"
        self._words = catalog(lang)
        tiers = cfg.tiers if tiers is None else tiers
        self.tier_codes = [t.name for t in tiers]
        self._tiers = {t.name: t.zh for t in tiers}
        self._segments = BUILTIN_SEGMENTS | {s.name: s.zh for s in cfg.segments}
        self._personas = {p.name: p.zh for p in cfg.personas}

    def _pick(self, code: str | None, zh: dict[str, str]) -> str:
        if code is None:
            return ""
        return zh.get(code, code) if self.zh else code

    def tier(self, code: str | None) -> str:
        return self._pick(code, self._tiers)

    def tier_other(self, code: str) -> str:
        """The tier's name in the other language, or "" when it has only one name."""
        zh = self._tiers.get(code, code)
        if zh == code:
            return ""
        return code if self.zh else zh

    def segment(self, code: str | None) -> str:
        return self._pick(code, self._segments)

    def persona(self, code: str | None) -> str:
        return self._pick(code, self._personas)

    def word(self, table: str, code: str | None) -> str:
        """A code's word in a catalog table (the code itself when the catalog has none)."""
        if code is None:
            return ""
        return self._words.get(table, {}).get(code, code)

    _word = word

    def lifecycle(self, code: str | None) -> str:
        return self._word("lifecycle", code)

    def churn(self, code: str | None) -> str:
        return self._word("churn", code)

    def change(self, code: str) -> str:
        return self._word("change", code)

    def value_class(self, code: str | None) -> str:
        """Value classes are Chinese in the data; English reports add a translation."""
        return self._word("value_class", code)

    def feature(self, code: str) -> str:
        return self._word("feature", code)

    def metric(self, code: str) -> str:
        return self._word("metric", code)

    def variable(self, code: str) -> str:
        return self._word("variable", code)

    def cluster(self, profile: dict[str, Any]) -> str:
        """A cluster's plain-words label from its profile."""
        return str((profile.get("label_zh") or profile["label"]) if self.zh else profile["label"])
