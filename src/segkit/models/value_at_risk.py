"""Value at risk, per customer and per tier (SPEC §3).

Recent value of a customer = the larger of annual_spend and prior_annual_spend (the better of the
last two years), floored at 0.

- Where p_alive decides churn_risk (the CLV model fitted, found dropout, and the customer has a
  repeat purchase), value at risk = recent value x (1 - p_alive): the expected loss.
- Elsewhere churn_risk follows the recency rule, which gives a level, not a probability: the
  recent value of a high-risk customer is at risk; the recent value of a medium-risk customer is
  reported beside it (``medium_risk_value``) and not counted; a low-risk customer puts nothing at
  risk.

So a tier whose customers are mostly low risk never has its whole recent value at risk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from segkit.customers.sums import group_fsums

if TYPE_CHECKING:
    from segkit.models.clv.run import ClvResult

RECENT = "_recent_value"
AT_RISK = "_value_at_risk"
MEDIUM = "_medium_risk_value"
BY_P_ALIVE = "_risk_by_p_alive"


def recent_value() -> pl.Expr:
    return pl.max_horizontal(pl.col("annual_spend").fill_null(0.0), pl.col("prior_annual_spend").fill_null(0.0),
                             pl.lit(0.0))


def uses_p_alive(clv: ClvResult | None) -> bool:
    """Whether p_alive decides churn_risk (for the customers with a repeat purchase)."""
    return bool(clv is not None and clv.churn_from_p_alive)


def with_risk(customers: pl.DataFrame, clv: ClvResult | None) -> pl.DataFrame:
    """The customer table with ``_recent_value``, ``_value_at_risk``, ``_medium_risk_value`` and
    ``_risk_by_p_alive`` (whether p_alive or the recency level priced the customer's risk)."""
    if "_repeat_purchases" not in customers.columns:
        customers = customers.with_columns(pl.lit(None, pl.Int64).alias("_repeat_purchases"))
    by_p = ((pl.col("_repeat_purchases").fill_null(0) > 0) & pl.col("p_alive").is_not_null()
            if uses_p_alive(clv) else pl.lit(False))
    risk = pl.col("churn_risk")
    recent = pl.col(RECENT)
    return customers.with_columns(recent_value().alias(RECENT), by_p.alias(BY_P_ALIVE)).with_columns(
        pl.when(pl.col(BY_P_ALIVE)).then(recent * (1 - pl.col("p_alive")))
        .when(risk == "high").then(recent).otherwise(pl.lit(0.0)).alias(AT_RISK),
        pl.when(~pl.col(BY_P_ALIVE) & (risk == "medium")).then(recent).otherwise(pl.lit(0.0)).alias(MEDIUM),
    )


def by_tier(customers: pl.DataFrame, clv: ClvResult | None, tiers: list[str]) -> list[dict[str, Any]]:
    """summary.json ``clv.value_at_risk``: one row per tier in config order, with customers, recent
    value, value at risk, the medium-risk value beside it, and how many customers are high risk."""
    df = customers if AT_RISK in customers.columns else with_risk(customers, clv)
    g = {r["tier"]: r for r in df.group_by("tier").agg(
        pl.len().alias("customers"),
        (pl.col("churn_risk") == "high").sum().alias("high_risk_customers"),
    ).iter_rows(named=True)}
    # the values are floats: summed exactly, so the totals do not depend on polars' thread count
    for tier, sums in group_fsums(df, "tier", [RECENT, AT_RISK, MEDIUM]).items():
        g[tier] |= dict(zip(("recent_value", "value_at_risk", "medium_risk_value"), sums))
    rows = []
    for tier in tiers:
        r = g.get(tier, {})
        rows.append({"tier": tier, "customers": int(r.get("customers", 0)),
                     "high_risk_customers": int(r.get("high_risk_customers", 0)),
                     "recent_value": round(float(r.get("recent_value", 0.0)), 2),
                     "value_at_risk": round(float(r.get("value_at_risk", 0.0)), 2),
                     "medium_risk_value": round(float(r.get("medium_risk_value", 0.0)), 2)})
    return rows


def rule(clv: ClvResult | None) -> str:
    """``p_alive`` when p_alive prices the risk of repeat customers, else ``recency``."""
    return "p_alive" if uses_p_alive(clv) else "recency"
