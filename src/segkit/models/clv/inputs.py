"""The CLV model inputs per customer, from order lines or from an engine's customer base table."""

from __future__ import annotations

import datetime as dt

import polars as pl

from segkit.ingest.clean import MICRO
from segkit.ingest.rules import is_purchase

def model_inputs(lines: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """One row per customer with a purchase day before ``as_of``.

    ``lines``: customer_id, order_date (date), amount (micro-units), as ``ingest/clean.py`` returns them.
    Returns customer_id, repeat_purchases, t_last, T (whole days, Int64) and repeat_value (mean
    net amount of the repeat purchase days in currency units; null without a repeat purchase).
    """
    days = (
        lines.lazy()
        .filter(pl.col("order_date") < as_of)
        .group_by("customer_id", "order_date")
        .agg(pl.col("amount").sum().alias("net"))
        .filter(is_purchase(pl.col("net")))
    )
    per = days.group_by("customer_id").agg(
        pl.col("order_date").min().alias("first"),
        pl.col("order_date").max().alias("last"),
        pl.len().alias("days"),
        pl.col("net").sum().alias("total"),
        pl.col("net").sort_by("order_date").first().alias("first_net"),
    )
    repeat = (pl.col("days") - 1).cast(pl.Int64)
    return (
        per.select(
            "customer_id",
            repeat.alias("repeat_purchases"),
            (pl.col("last") - pl.col("first")).dt.total_days().cast(pl.Int64).alias("t_last"),
            (pl.lit(as_of) - pl.col("first")).dt.total_days().cast(pl.Int64).alias("T"),
            pl.when(repeat > 0)
            .then((pl.col("total") - pl.col("first_net")).cast(pl.Float64) / MICRO / repeat)
            .alias("repeat_value"),
        )
        .sort("customer_id")
        .collect()
    )


CUSTOMER_INPUTS = ("purchase_days", "first_purchase_day", "last_purchase_day", "repeat_value")


def inputs_from_base(base: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """The same model inputs from an engine's customer base table (columns purchase_days,
    first_purchase_day, last_purchase_day, repeat_value in micro-units: the summed net of the
    purchase days after the first), for when the order lines are not kept."""
    repeat = (pl.col("purchase_days") - 1).cast(pl.Int64)
    return (
        base.filter(pl.col("purchase_days") > 0)
        .select(
            "customer_id",
            repeat.alias("repeat_purchases"),
            (pl.col("last_purchase_day") - pl.col("first_purchase_day")).dt.total_days().cast(pl.Int64).alias("t_last"),
            (pl.lit(as_of) - pl.col("first_purchase_day")).dt.total_days().cast(pl.Int64).alias("T"),
            pl.when(repeat > 0).then(pl.col("repeat_value").cast(pl.Float64) / MICRO / repeat).alias("repeat_value"),
        )
        .sort("customer_id")
    )


