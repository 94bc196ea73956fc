"""Engines: one input file -> the customer base table and the data-quality record (SPEC §9).

Each engine reduces the order lines where they are to ``contract.Reduced`` (the base table, the
lines per date, the tier activity, net per customer-day when asked), which the pipeline reads;
``customer_table`` below is its base table and quality.

An engine does the heavy part (reading every order line); everything after it (scores, segments,
tiers, lifecycle, churn, personas, clustering, validation, CLV, reports) is shared code that takes
only what ``customer_table`` returns. Engines must agree byte for byte on what they return.

    base, quality = customer_table(source, cfg, engine="polars")

Line rules (SPEC §2/§3), the same in every engine:

- A usable line is a source row that is neither blank nor a totals row and whose customer id,
  order date and amount parse (``segkit.ingest.clean`` parsers define what parses).
- A line's amount in micro-units is ``round(amount * cfg.amount_unit * 1_000_000)`` computed per
  source row from the Float64 value (amount = quantity * unit_price when there is no amount
  column), rounded half away from zero; all money below is an exact Int64 sum of these.
- Lines dated before 1990 or after today are left out first (``customers.dates.date_facts``, on
  the usable lines per date, ``customers.dates.day_counts``).
- ``as_of`` = ``cfg.as_of`` or the day after the latest usable line date (``customers.windows.latest_date``:
  without ``cfg.as_of``, a latest date after ``config.LAST_YEAR`` is a placeholder and a DataError). Lines dated on or after
  ``as_of`` are left out of everything and counted (``excluded_after_as_of``).
- An order is (customer_id, order_key): ``order_key`` is the stripped order id text, or, when the
  file has no order id column or the cell is empty, the line's ISO date. Its order date is the
  earliest date of its lines, its net amount the sum of its lines. A purchase is an order with a
  positive net amount.
- Windows come from ``segkit.customers.windows.make_windows(cfg, max_date)`` (``quality.windows``): RFM
  window (whole history when ``rfm_start`` is None, else ``order_date >= rfm_start``), tier window
  and prior window, both ends inclusive.

``base`` (polars DataFrame): one row per customer with at least one usable line before ``as_of``;
row order is not part of the contract (shared code sorts). Columns, exactly these, in this order:

    customer_id         String   parsed id: stripped; an integer written as ``17850.0`` -> ``17850``
    first_order_date    Date     earliest order date among the purchases (null: no purchase)
    last_order_date     Date     latest order date among the purchases (null: no purchase)
    frequency           Int64    purchases whose order date is in the RFM window (0 when none)
    orders_all          Int64    purchases over the whole history before as_of (0 when none)
    monetary            Int64    micro-units: sum of the lines dated in the RFM window
    annual              Int64    micro-units: sum of the lines dated in the tier window
    prior               Int64    micro-units: sum of the lines dated in the prior window
    bought_in_window    Boolean  a purchase whose order date is in the tier window
    own_gap             Float64  median of the whole-day gaps between the customer's consecutive
                                 distinct purchase (order) dates; null with fewer than two dates
    purchase_days       Int64    CLV input: days whose summed line amount (all orders) is > 0
    first_purchase_day  Date     CLV input: first such day (null when purchase_days is 0)
    last_purchase_day   Date     CLV input: last such day (null when purchase_days is 0)
    repeat_value        Int64    CLV input, micro-units: summed amount of the purchase days after
                                 the first one (0 when purchase_days <= 1)
    <role>              String   for each role in ``quality.roles`` (in that order; a subset of
                                 customer_name, channel, region, customer_type, category): the
                                 most frequent stripped non-empty value over the customer's source
                                 lines before as_of (ties: the smallest text); null when none

``quality`` (``Quality``): the counts for summary.json and the terminal, the rejected rows, the
windows, the population median gap and where the input came from:

    counts: dict, keys in this order
        rows_read            int   source rows below the header
        blank_rows           int   rows with every cell empty or whitespace
        totals_rows          int   合计/小计/总计/Total/Subtotal rows (SPEC §2)
        data_rows            int   rows_read - blank_rows - totals_rows
        rejected_rows        int   rows in ``rejected``
        rejected_share       float rejected_rows / data_rows (0.0 when data_rows is 0)
        rejected_reasons     dict  reason -> rows, most rows first, ties by reason text
        used_rows            int   data_rows - rejected_rows
        excluded_after_as_of int   usable source rows dated on or after as_of
        excluded_implausible_dates int  usable source rows dated before 1990 or after today,
                                   left out before anything else (customers.dates.check_dates, which
                                   also fails the run when they are above max_bad_rows)
    rejected: DataFrame sorted by row: row Int64 (1-based row number as a spreadsheet shows it),
        column String (header of the offending column), reason String, value String (the cell
        text), then ``raw:<header>`` String for each mapped header (the row's cells as in the file)
    windows: customers.windows.Windows  population_median_gap: float | None (median over all
        customers' gaps between consecutive distinct purchase dates, in days)
    roles: tuple[str, ...]         input: InputInfo (what summary.json["input"] reports)

Errors: ``errors.DataError`` when there are no data rows, no usable line, every line is on or
after as_of, or the rejected share is above ``cfg.max_bad_rows`` (message as ``clean.clean``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segkit.config import ENGINES
from segkit.engines.contract import BASE_SCHEMA, COUNT_KEYS, InputInfo, Quality
from segkit.errors import UsageError

if TYPE_CHECKING:
    import io

    import polars as pl

    from segkit.config import Config

__all__ = ["BASE_SCHEMA", "COUNT_KEYS", "ENGINES", "InputInfo", "Quality", "customer_table"]


def customer_table(
    source: str, cfg: Config, engine: str = "polars", *, stdin: io.BufferedIOBase | None = None
) -> tuple[pl.DataFrame, Quality]:
    """Read ``source`` (a path, or ``-`` for CSV on ``stdin``) and return (base, quality)."""
    if engine == "polars":
        from segkit.engines.polars import customer_table as run
    elif engine == "spark":
        from segkit.engines.spark import customer_table as run
    else:
        raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return run(source, cfg, stdin=stdin)
