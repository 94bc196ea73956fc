"""The date windows of a run: as_of, the tier window, the prior window and the RFM window (SPEC §3)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from segkit.config import LAST_YEAR, Config
from segkit.errors import DataError, option


@dataclass(frozen=True)
class Windows:
    as_of: dt.date
    tier_start: dt.date
    tier_end: dt.date  # inclusive
    prior_start: dt.date
    prior_end: dt.date  # inclusive
    rfm_start: dt.date | None  # None = whole history

    def as_dict(self) -> dict[str, str | None]:
        return {k: (v.isoformat() if v else None) for k, v in self.__dict__.items()}


def latest_date(lines: pl.DataFrame, cfg: Config, source: str) -> dt.date:
    """The latest order date, refused when it is a placeholder such as 9999-12-31 and no as_of is set.

    ``lines``: order lines, or their ``customers.dates.day_counts`` (order_date, n, lines)."""
    latest = lines["order_date"].max()
    assert isinstance(latest, dt.date)  # order_date is a Date column with a usable line
    if cfg.as_of is None and latest.year > LAST_YEAR:  # e.g. 9999-12-31, an ERP's "open end"
        late = lines.filter(pl.col("order_date").dt.year() > LAST_YEAR)
        n = int(late["lines"].sum()) if "lines" in late.columns else late.height  # day_counts or lines
        msg = (f"{source}: {n:,} order(s) dated after {LAST_YEAR} (latest {latest}), placeholders rather than "
               f"order dates; fix those rows, or give {option('analysis.as_of')} YYYY-MM-DD so later rows are left out")
        raise DataError(msg)
    return latest


def make_windows(cfg: Config, max_date: dt.date) -> Windows:
    """as_of defaults to the day after the latest transaction.

    Tier window: the 365 days ending the day before as_of; with ``year`` the calendar year, and
    the prior window is then the calendar year before it.
    """
    as_of = cfg.as_of or (max_date + dt.timedelta(days=1))
    if cfg.year:
        tier_start, tier_end = dt.date(cfg.year, 1, 1), dt.date(cfg.year, 12, 31)
        prior_start, prior_end = dt.date(cfg.year - 1, 1, 1), dt.date(cfg.year - 1, 12, 31)
    else:
        tier_end = as_of - dt.timedelta(days=1)
        tier_start = as_of - dt.timedelta(days=365)
        prior_end = tier_start - dt.timedelta(days=1)
        prior_start = tier_start - dt.timedelta(days=365)
    rfm_start = as_of - dt.timedelta(days=cfg.rfm_window_days) if cfg.rfm_window_days else None
    return Windows(as_of, tier_start, tier_end, prior_start, prior_end, rfm_start)
