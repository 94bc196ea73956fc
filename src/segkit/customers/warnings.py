"""What the analyst is told besides the numbers: warnings, date plausibility, currency.

Warnings are ``{"code", "message", "message_zh"}``; every one the run raises is in
``summary.json["warnings"]`` and shown by the terminal summary and both reports. Codes:
``tier_concentration``, ``short_coverage``, ``implausible_dates``, ``clv_skipped``,
``low_expected_counts``, ``customer_input``, ``tier_bounds_changed`` (raised by
``customers/migration.py`` when the earlier run of ``--previous`` used other tier bounds).

Dates are plausible from 1990-01-01 to today. A date column holding small integers (a year, an
order count) is read as Excel serial dates and lands in 1900-1905 or after 2100; a run on such
dates would be silently wrong, so when more than ``max_bad_rows`` of the rows have implausible
dates the run stops (exit 65); fewer such rows (typing slips) are left out, counted and warned
about.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

import datetime as dt
import re

import polars as pl

from segkit.config import Config
from segkit.errors import DataError

if TYPE_CHECKING:
    from segkit.ingest.read import RawTable

EARLIEST = dt.date(1990, 1, 1)
LOW_EXPECTED_SHARE = 0.2

SYMBOLS = {"¥": "CNY", "￥": "CNY", "元": "CNY", "人民币": "CNY", "$": "USD", "€": "EUR", "£": "GBP"}
CODES = ("CNY", "RMB", "USD", "EUR", "GBP", "HKD", "JPY", "TWD", "SGD", "AUD", "CAD", "CHF")


def warning(code: str, message: str, message_zh: str) -> dict[str, Any]:
    return {"code": code, "message": message, "message_zh": message_zh}


def catalog_warning(code: str, key: str | None = None, /, **fields: Any) -> dict[str, Any]:
    """A warning whose texts come from the message catalogs ([warning] ``key``, default ``code``)."""
    from segkit.i18n import message

    key = key or code
    return warning(code, message("warning", key, "en", **fields), message("warning", key, "zh", **fields))


def check_dates(lines: pl.DataFrame, cfg: Config, source: str,
                today: dt.date | None = None) -> tuple[pl.DataFrame, int, list[dict[str, Any]]]:
    """Drop order lines dated before 1990 or after today; refuse when they are too many.

    Returns the plausible lines, the number of source rows left out, and the warnings.
    """
    today = today or dt.date.today()
    bad = ~pl.col("order_date").is_between(pl.lit(EARLIEST), pl.lit(today))
    n = pl.col("n") if "n" in lines.columns else pl.lit(1)
    stats = lines.select(n.filter(bad).sum().alias("bad"), n.sum().alias("all"),
                         pl.col("order_date").filter(bad).min().alias("lo"),
                         pl.col("order_date").filter(bad).max().alias("hi")).row(0, named=True)
    bad_rows, all_rows = int(stats["bad"] or 0), int(stats["all"] or 0)
    if bad_rows == 0:
        return lines, 0, []
    span = stats["lo"] if stats["lo"] == stats["hi"] else f"{stats['lo']} .. {stats['hi']}"
    if all_rows and bad_rows / all_rows > cfg.max_bad_rows:
        msg = (f"{source}: {bad_rows:,} of {all_rows:,} rows have order dates outside {EARLIEST} .. {today} "
               f"({span}); numbers in the date column (a year, a count) are read as Excel serial dates. "
               "Map the real date column (order_date=...) or use a customer-level table.")
        raise DataError(msg)
    found = catalog_warning("implausible_dates", rows=bad_rows, earliest=EARLIEST, today=today, span=span)
    return lines.filter(~bad), bad_rows, [found]


def detect_currency(raw: RawTable, cfg: Config, sample: int = 2000) -> tuple[str | None, str]:
    """The configured currency, else one found in the amount column's symbols or in the headers.

    Returns (currency or None, where it came from: "config" | "amounts" | "header" | "").
    """
    if cfg.currency:
        return cfg.currency, "config"
    headers = " ".join(raw.headers)
    for code in CODES:
        if re.search(rf"(?<![A-Za-z]){code}(?![A-Za-z])", headers, re.IGNORECASE):
            return ("CNY" if code == "RMB" else code), "header"
    cols = [raw.mapping[r] for r in ("amount", "unit_price") if r in raw.mapping]
    if not cols:
        return None, ""
    text = raw.frame.select(pl.concat_str([pl.col(c).cast(pl.String) for c in cols], separator=" ")
                            .alias("t")).head(sample).collect()["t"].drop_nulls()
    joined = " ".join(text.to_list())
    for code in CODES:
        if re.search(rf"(?<![A-Za-z]){code}(?![A-Za-z])", joined):
            return ("CNY" if code == "RMB" else code), "amounts"
    for symbol, code in SYMBOLS.items():
        if symbol in joined or symbol in headers:
            return code, "amounts" if symbol in joined else "header"
    return None, ""


def derived_warnings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Warnings read from validation's results: low expected counts in chi-square, its own notes.
    (CLV raises clv_skipped itself.)"""
    out = []
    val = doc.get("validation") or {}
    for w in val.get("warnings", []):
        if "expected counts" not in str(w):  # those are read from the chi-square table below
            out.append(warning("validation", str(w), str(w)))
    chi2 = val.get("chi2") or {}
    for column, c in chi2.items():
        low = c.get("low_expected_share") if isinstance(c, dict) else None
        if low is not None and low > LOW_EXPECTED_SHARE:
            from segkit.i18n import catalog

            zh = catalog("zh")["variable"].get(column, column)  # the attribute's Chinese word, when it has one
            out.append(catalog_warning("low_expected_counts", column={"en": column, "zh": zh}, share=low))
    return out


def with_chinese(w: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A warning raised by another step, with its Chinese text added when segkit knows it."""
    if w.get("message_zh"):
        return w
    from segkit.i18n import message

    clv = doc.get("clv") or {}
    zh = None
    if w["code"] == "clv_skipped":
        zh = message("warning", "clv_skipped", "zh", reason=clv.get("skipped_reason") or w["message"])
    elif w["code"] == "clv_value_dependence":
        r = (clv.get("independence_check") or {}).get("pearson_r_frequency_value")
        zh = message("warning", "clv_value_dependence", "zh", r=r) if r is not None else None
    return {**w, "message_zh": zh or w["message"]}
