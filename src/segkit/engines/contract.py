"""What every engine returns: the base table's schema, the quality counts, where the input came
from, and the small aggregates the steps after the customer table read (``Reduced``).

The whole contract is described in ``segkit.engines``' docstring.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from segkit.customers.dates import DateFacts
    from segkit.customers.windows import Windows
    from segkit.ingest.clean import Cleaned
    from segkit.ingest.read import RawTable

BASE_SCHEMA = {
    "customer_id": "String",
    "first_order_date": "Date",
    "last_order_date": "Date",
    "frequency": "Int64",
    "orders_all": "Int64",
    "monetary": "Int64",
    "annual": "Int64",
    "prior": "Int64",
    "bought_in_window": "Boolean",
    "own_gap": "Float64",
    "purchase_days": "Int64",
    "first_purchase_day": "Date",
    "last_purchase_day": "Date",
    "repeat_value": "Int64",
}
COUNT_KEYS = ("rows_read", "blank_rows", "totals_rows", "data_rows", "rejected_rows", "rejected_share",
              "rejected_reasons", "used_rows", "excluded_after_as_of", "excluded_implausible_dates")


@dataclass
class InputInfo:
    """Where the lines came from (summary.json "input", the terminal's notes)."""

    source: str  # the name shown in messages ("<stdin>" for -)
    size: int  # bytes
    sha256: str
    format: str  # csv | excel | parquet
    header_row: int  # 1-based
    mapping: dict[str, str]  # role -> header
    headers: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Quality:
    counts: dict[str, Any]
    rejected: pl.DataFrame
    windows: Windows
    population_median_gap: float | None
    roles: tuple[str, ...]
    input: InputInfo

    @property
    def as_of(self) -> dt.date:
        return self.windows.as_of


@dataclass(frozen=True)
class Reduced:
    """An order-line input reduced where the data is: everything the later steps read, and no
    order line. Each engine returns one (``engines.polars.reduce_lines``, ``engines.spark.reduce``);
    the driver's memory grows with customers and days, not lines.

    ``cleaned``: the quality counts, the rejected rows (Spark: the first ``REJECTED_SAMPLE``) and
    the roles; its ``lines`` are left empty. ``base``: the customer base table (``BASE_SCHEMA``,
    then gross_profit when the input has costs, then the roles) of the plausible lines before
    as_of. ``facts``: the usable lines per date (implausible dates, windows, as_of, coverage).
    ``activity``: ``customers.tiers.window_activity`` when the tier scheme reads it, else None.
    ``days``: customer_id, order_date, amount (the customer's net of that day, micro-units, every
    plausible day, on or after as_of too) when CLV selection or a backtest reads it, else None.
    """

    raw: RawTable
    cleaned: Cleaned
    base: pl.DataFrame
    facts: DateFacts
    population_median_gap: float | None
    activity: pl.DataFrame | None = None
    days: pl.DataFrame | None = None

    def quality(self) -> Quality:
        """The engine seam's ``Quality`` (``engines.customer_table``)."""
        counts = {**self.cleaned.quality, "excluded_after_as_of": self.facts.excluded_after_as_of,
                  "excluded_implausible_dates": self.facts.implausible}
        counts = {k: counts[k] for k in COUNT_KEYS}
        return Quality(counts, self.cleaned.rejected, self.facts.windows, self.population_median_gap,
                       self.cleaned.roles, input_info(self.raw))


def input_info(raw: RawTable) -> InputInfo:
    """Where the lines came from, from the engine's ``RawTable``."""
    return InputInfo(raw.source, raw.size, raw.sha256, raw.format, raw.header_row, raw.mapping,
                     headers=raw.headers, encoding=raw.encoding, delimiter=raw.delimiter,
                     sheet=raw.sheet, notes=list(raw.notes))
