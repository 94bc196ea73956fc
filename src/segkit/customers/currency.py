"""The currency of the amounts: the configured one, else one found in the amounts or the headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import re

import polars as pl

from segkit.config import Config

if TYPE_CHECKING:
    from segkit.ingest.read import RawTable

SYMBOLS = {"¥": "CNY", "￥": "CNY", "元": "CNY", "人民币": "CNY", "$": "USD", "€": "EUR", "£": "GBP"}
CODES = ("CNY", "RMB", "USD", "EUR", "GBP", "HKD", "JPY", "TWD", "SGD", "AUD", "CAD", "CHF")


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
