"""The tier outlook (SPEC §3): the tier each customer's predicted revenue falls in, and the
customers whose predicted tier is above (upgrade) or below (downgrade) their tier.

``predicted_tier`` applies the run's tier bounds (lower bound inclusive, as for annual spend) to
``predicted_revenue``; it is empty where predicted_revenue is (no CLV fit, a customer-level table)
and when the CLV horizon is not 365 days (the bounds are yearly). A tier scheme's criteria other
than spend (the retail preset's order count) are not applied: a prediction holds revenue only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from segkit.config import Tier
from segkit.ingest.clean import MICRO

YEAR_DAYS = 365
OUTLOOK_COLUMNS = ("customer_id", "customer_name", "tier", "predicted_tier", "direction", "p_alive",
                   "predicted_revenue", "annual_spend")


def tier_of(col: str, tiers: tuple[Tier, ...]) -> pl.Expr:
    """The first tier whose lower bound ``col`` (currency units) reaches; null where ``col`` is
    null or NaN (a prediction that failed is no prediction)."""
    value = pl.col(col).cast(pl.Float64).fill_nan(None)
    expr = pl.lit(tiers[-1].name)
    for t in reversed(tiers[:-1]):
        assert t.min is not None  # only the last tier has no bound
        expr = pl.when(value >= t.min).then(pl.lit(t.name)).otherwise(expr)
    return pl.when(value.is_not_null()).then(expr).otherwise(pl.lit(None, pl.String))


def with_predicted_tier(customers: pl.DataFrame, tiers: tuple[Tier, ...], horizon_days: int) -> pl.DataFrame:
    """``customers`` with predicted_tier right after predicted_revenue."""
    df = customers.drop("predicted_tier", strict=False)
    yearly = "predicted_revenue" in df.columns and horizon_days == YEAR_DAYS
    value = tier_of("predicted_revenue", tiers) if yearly else pl.lit(None, pl.String)
    df = df.with_columns(value.alias("predicted_tier"))
    cols = [c for c in df.columns if c != "predicted_tier"]
    at = cols.index("predicted_revenue") + 1 if "predicted_revenue" in cols else cols.index("churn_risk") + 1
    return df.select([*cols[:at], "predicted_tier", *cols[at:]])


def direction(tiers: tuple[Tier, ...], current: str = "tier", predicted: str = "predicted_tier") -> pl.Expr:
    """up / down / same by tier rank (the first tier is the top); null without a prediction."""
    rank = {t.name: i for i, t in enumerate(tiers)}
    now = pl.col(current).replace_strict(rank, default=None, return_dtype=pl.Int64)
    then = pl.col(predicted).replace_strict(rank, default=None, return_dtype=pl.Int64)
    return (pl.when(then < now).then(pl.lit("up")).when(then > now).then(pl.lit("down"))
            .when(then == now).then(pl.lit("same")).otherwise(pl.lit(None, pl.String)))


def outlook(customers: pl.DataFrame, tiers: tuple[Tier, ...]) -> pl.DataFrame:
    """outlook.csv: the customers whose predicted tier differs from their tier, upgrades first,
    then by predicted revenue (largest first) and customer_id."""
    df = customers.with_columns(direction(tiers).alias("direction"))
    df = df.filter(pl.col("direction").is_in(["up", "down"]))
    cols = [c for c in OUTLOOK_COLUMNS if c in df.columns]
    return (df.sort(["direction", "predicted_revenue", "customer_id"], descending=[True, True, False])
            .select(cols))


def summary(customers: pl.DataFrame, tiers: tuple[Tier, ...]) -> dict[str, Any]:
    """summary.json ``outlook``: upgrade and downgrade counts, and customers by tier -> predicted tier."""
    if "predicted_tier" not in customers.columns or customers["predicted_tier"].null_count() == customers.height:
        return {"available": False}
    moves = customers.with_columns(direction(tiers).alias("direction"))
    counts = dict(moves.group_by("direction").len().iter_rows())
    pairs = moves.filter(pl.col("predicted_tier").is_not_null()).group_by("tier", "predicted_tier").len()
    got = {(a, b): n for a, b, n in pairs.iter_rows()}
    names = [t.name for t in tiers]
    return {
        "available": True,
        "upgrade": int(counts.get("up", 0)),
        "downgrade": int(counts.get("down", 0)),
        "same": int(counts.get("same", 0)),
        "tiers": names,
        "matrix": [[int(got.get((a, b), 0)) for b in names] for a in names],  # rows: tier, columns: predicted
    }


def backtest_score(scored: pl.DataFrame, lines: pl.DataFrame, start: dt.date, holdout_days: int,
                   tiers: tuple[Tier, ...]) -> dict[str, Any]:
    """The outlook in a backtest (docs/clv.md): each scored customer's tier on the year before the
    holdout (``last_year``), the tier of the model's revenue for the holdout year (``predicted``)
    and of its actual revenue (``actual``). Of the customers predicted to change tier, how many
    moved that way and how many reached that tier; beside it the share of all scored customers
    whose actual tier each rule got right: the model, and "same tier as last year".

    ``scored``: customer_id, predicted (purchase days), expected_purchase_value, actual_revenue."""
    if holdout_days != YEAR_DAYS:
        return {"skipped_reason": f"the tier bounds are yearly: the outlook is scored with a {YEAR_DAYS}-day holdout"}
    prior = (lines.lazy().filter((pl.col("order_date") >= start - dt.timedelta(days=YEAR_DAYS))
                                 & (pl.col("order_date") < start))
             .group_by("customer_id").agg((pl.col("amount").sum().cast(pl.Float64) / MICRO).alias("_last"))
             .collect())
    df = (scored.join(prior, on="customer_id", how="left")
          .with_columns(pl.col("_last").fill_null(0.0),
                        (pl.col("predicted") * pl.col("expected_purchase_value")).alias("_pred"))
          .with_columns(tier_of("_last", tiers).alias("last_year"), tier_of("_pred", tiers).alias("predicted_tier"),
                        tier_of("actual_revenue", tiers).alias("actual_tier"))
          .with_columns(direction(tiers, "last_year", "predicted_tier").alias("_dir"),
                        direction(tiers, "last_year", "actual_tier").alias("_act")))
    df = df.filter(pl.col("predicted_tier").is_not_null())
    movers = df.filter(pl.col("_dir").is_in(["up", "down"]))
    return {
        "customers": df.height,
        "predicted_to_move": movers.height,
        "predicted_up": movers.filter(pl.col("_dir") == "up").height,
        "predicted_down": movers.filter(pl.col("_dir") == "down").height,
        "moved_as_predicted": movers.filter(pl.col("_act") == pl.col("_dir")).height,
        "reached_predicted_tier": movers.filter(pl.col("actual_tier") == pl.col("predicted_tier")).height,
        "actually_moved": df.filter(pl.col("_act").is_in(["up", "down"])).height,
        "model_tier_right": df.filter(pl.col("predicted_tier") == pl.col("actual_tier")).height,
        "naive_tier_right": df.filter(pl.col("last_year") == pl.col("actual_tier")).height,
    }
