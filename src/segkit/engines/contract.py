"""What every engine returns: the base table's schema, the quality counts and where the input came from.

The whole contract is described in ``segkit.engines``' docstring.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from segkit.customers.windows import Windows

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
