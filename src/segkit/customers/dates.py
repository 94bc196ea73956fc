"""Plausible order dates: 1990-01-01 to today.

A date column holding small integers (a year, an order count) is read as Excel serial dates and
lands in 1900-1905 or after 2100; a run on such dates would be silently wrong, so when more than
``max_bad_rows`` of the rows have implausible dates the run stops (exit 65); fewer such rows
(typing slips) are left out, counted and warned about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import datetime as dt

import polars as pl

from segkit.config import Config
from segkit.customers.warnings import catalog_warning
from segkit.customers.windows import Windows, latest_date, make_windows
from segkit.errors import DataError, option

EARLIEST = dt.date(1990, 1, 1)


def day_counts(lines: pl.DataFrame) -> pl.DataFrame:
    """The usable order lines per date: order_date, n (source rows), lines (order lines). What the
    date checks, the windows and the coverage read instead of the lines themselves."""
    n = pl.col("n").sum() if "n" in lines.columns else pl.len()
    return (lines.group_by("order_date").agg(n.cast(pl.Int64).alias("n"), pl.len().cast(pl.Int64).alias("lines"))
            .sort("order_date"))


@dataclass(frozen=True)
class DateFacts:
    """What the usable lines' dates decide before any customer is counted: the plausible dates
    (``day_counts`` of the lines kept), the rows left out, the windows and the warnings."""

    dates: pl.DataFrame
    today: dt.date
    implausible: int
    warnings: tuple[dict[str, Any], ...]
    windows: Windows
    excluded_after_as_of: int

    def plausible(self) -> tuple[dt.date, dt.date]:
        """The inclusive range of order dates kept (each engine filters its lines on it)."""
        return EARLIEST, self.today


def date_facts(dates: pl.DataFrame, cfg: Config, source: str, today: dt.date | None = None) -> DateFacts:
    """``day_counts`` of every usable line -> ``DateFacts``, with the errors in the order the steps
    meet them: too many implausible dates, no usable line, a placeholder latest date, every line
    on or after as_of."""
    today = today or dt.date.today()
    kept, implausible, warnings = check_dates(dates, cfg, source, today)
    if kept.height == 0:
        raise DataError(f"{source}: no usable order lines; see rejected_rows.csv or run `segkit inspect`")
    win = make_windows(cfg, latest_date(kept, cfg, source))
    excluded = 0
    if cfg.as_of is not None:
        excluded = int(kept.select(pl.col("n").filter(pl.col("order_date") >= win.as_of).sum()).item())
        if not kept.filter(pl.col("order_date") < win.as_of).height:
            msg = (f"{source}: every transaction is on or after as_of {win.as_of}; "
                   f"choose a later {option('analysis.as_of')}")
            raise DataError(msg)
    return DateFacts(kept, today, implausible, tuple(warnings), win, excluded)


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
