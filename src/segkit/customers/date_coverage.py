"""Data coverage: the date range the order lines cover and how many full tier windows that is.

``yoy_growth`` compares the tier window with the prior window, and the lifecycle stages other than
``lapsed`` (new, growing, declining, mature) read that comparison or the history before the tier
window. On data covering fewer than two full tier windows they would be artefacts of where the
export starts (a one-month file makes nearly everyone "new" with growth in the thousands of per
cent), so the customer table leaves them empty (``metrics.finish(yoy_available=False)``) and the
summary says why.

A window is full when the first order line is on or before its first day: ``full_windows`` counts
the tier window and the windows before it (each 365 days, or calendar years with ``--year``) that
the data reaches back to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import datetime as dt

import polars as pl

from segkit.config import Config
from segkit.i18n import message

if TYPE_CHECKING:
    from segkit.customers.windows import Windows

MIN_FULL_WINDOWS = 2


def assess(lines: pl.DataFrame, windows: Windows, cfg: Config) -> dict[str, Any]:
    """Covered range of the order lines used (before as_of) and the number of full tier windows."""
    used = lines.filter(pl.col("order_date") < windows.as_of)
    first = cast(dt.date | None, used["order_date"].min())
    last = cast(dt.date | None, used["order_date"].max())
    full = 0
    start = windows.tier_start
    while first is not None and first <= start and full < 100:
        full += 1
        start = dt.date(start.year - 1, 1, 1) if cfg.year else start - dt.timedelta(days=365)
    out: dict[str, Any] = {"first_date": first, "last_date": last, "full_windows": full,
           "days": (last - first).days + 1 if first is not None and last is not None else 0, "yoy_available": full >= MIN_FULL_WINDOWS,
           "reason": None}
    if full < MIN_FULL_WINDOWS:
        fields = {"first": first, "last": last, "full": full, "needed": MIN_FULL_WINDOWS}
        out["reason"] = message("warning", "short_coverage", "en", **fields)
        out["reason_zh"] = message("warning", "short_coverage", "zh", **fields)
    return out


def unknown() -> dict[str, Any]:
    """Coverage of an input without order dates (customer-level tables)."""
    return {"first_date": None, "last_date": None, "full_windows": 0, "days": 0, "yoy_available": False,
            "reason": message("warning", "no_order_dates", "en"), "reason_zh": message("warning", "no_order_dates", "zh")}
