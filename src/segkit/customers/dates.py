"""Plausible order dates: 1990-01-01 to today.

A date column holding small integers (a year, an order count) is read as Excel serial dates and
lands in 1900-1905 or after 2100; a run on such dates would be silently wrong, so when more than
``max_bad_rows`` of the rows have implausible dates the run stops (exit 65); fewer such rows
(typing slips) are left out, counted and warned about.
"""

from __future__ import annotations

from typing import Any

import datetime as dt

import polars as pl

from segkit.config import Config
from segkit.customers.warnings import catalog_warning
from segkit.errors import DataError

EARLIEST = dt.date(1990, 1, 1)


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
