"""The tier outlook (SPEC §3): the tier each customer's predicted revenue falls in, and the
customers whose predicted tier is above (upgrade) or below (downgrade) their tier.

``predicted_tier`` applies the run's tier bounds (lower bound inclusive, as for annual spend) to
``predicted_revenue``; it is empty where predicted_revenue is (no CLV fit, a customer-level table)
and when the CLV horizon is not 365 days (the bounds are yearly). A tier scheme's criteria other
than spend (the retail preset's order count) are not applied: a prediction holds revenue only.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from segkit.config import Tier

YEAR_DAYS = 365
OUTLOOK_COLUMNS = ("customer_id", "customer_name", "tier", "predicted_tier", "direction", "p_alive",
                   "predicted_revenue", "annual_spend")


def tier_of(col: str, tiers: tuple[Tier, ...]) -> pl.Expr:
    """The first tier whose lower bound ``col`` (currency units) reaches; null where ``col`` is."""
    expr = pl.lit(tiers[-1].name)
    for t in reversed(tiers[:-1]):
        assert t.min is not None  # only the last tier has no bound
        expr = pl.when(pl.col(col) >= t.min).then(pl.lit(t.name)).otherwise(expr)
    return pl.when(pl.col(col).is_not_null()).then(expr).otherwise(pl.lit(None, pl.String))


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
