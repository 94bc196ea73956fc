"""Tier schemes applied after the customer table: quantile tiers, named presets, concentration check.

``build_customers`` tiers every customer by the config's ``[[tiers]]`` table. ``apply_scheme``
then, for ``tiering.scheme``:
- ``config``: keeps that table;
- ``quantile``: derives lower bounds from spend shares. Customers sorted by annual spend, the
  first tier holds the top customers who together make ``quantile_shares[0]`` of the total (the
  customer whose spend crosses the share is included, and so is everyone spending as much), the
  next tier those up to ``quantile_shares[1]``, and so on; the last tier holds the rest. The tier
  names stay the config's, so personas and actions keep working;
- ``retail``: the retail grading A >= 100,000 / B 50,000-100,000 / C below, where A also needs
  more than 12 purchase orders in the tier window and a repurchase rate above 30% (the share of
  the tier window's 12 months, counted as 30-day periods back from as_of, with a purchase);
  A-spenders that miss either criterion are B. Without order lines (customer-level input) the
  criteria that cannot be computed are skipped, and the result says so.

``concentration`` flags a tier holding more than ``tiering.concentration`` of the customers or of
the spend, and suggests a tier table for this data: the quantile bounds rounded to two
significant digits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import dataclasses
import math

import polars as pl

from segkit.ingest.clean import MICRO
from segkit.config import Config, Tier
from segkit.customers.metrics import _modes, persona_expr

if TYPE_CHECKING:
    from segkit.customers.metrics import Windows

RETAIL = (
    Tier("A", "A类客户(核心)", 100_000.0),
    Tier("B", "B类客户(重要)", 50_000.0),
    Tier("C", "C类客户(一般)", None),
)
RETAIL_MIN_ORDERS = 12  # more than this many purchase orders in the tier window
RETAIL_MIN_REPURCHASE = 0.3  # more than this share of the window's months with a purchase
PRESETS = {"retail": RETAIL}


def quantile_bounds(annual: pl.Series, shares: tuple[float, ...]) -> list[float]:
    """Lower bounds (money units) closing each cumulative spend share, highest first.

    A bound is the annual spend of the customer whose spend makes the running total reach the
    share; ties at that spend go to the same tier (the bound is inclusive).
    """
    pos = annual.filter(annual > 0).sort(descending=True)
    total = cast(float | None, pos.sum())
    if total is None or total <= 0:
        return [math.inf] * len(shares)
    cum = pos.cum_sum()
    bounds: list[float] = []
    for share in shares:
        idx = int((cum < share * total).sum())  # first position whose running total reaches the share
        bounds.append(pos[min(idx, pos.len() - 1)] / MICRO)
    return bounds


def nice(x: float) -> float:
    """Round down to two significant digits (12,345 -> 12,000), so a suggested table reads well."""
    if not math.isfinite(x) or x <= 0:
        return 0.0
    e: float = 10 ** (math.floor(math.log10(x)) - 1)
    return math.floor(x / e) * e


def _quantile_tiers(cfg: Config, annual: pl.Series) -> tuple[Tier, ...]:
    names = cfg.tiers
    bounds = quantile_bounds(annual, cfg.quantile_shares[: len(names) - 1])
    tiers = [Tier(t.name, t.zh, b) for t, b in zip(names[:-1], bounds)]
    return (*tiers, Tier(names[-1].name, names[-1].zh, None))


def suggested_tiers(cfg: Config, annual: pl.Series) -> list[dict[str, Any]]:
    """A fitting tier table for this data: quantile bounds, rounded, strictly descending."""
    out: list[dict[str, Any]] = []
    last = math.inf
    for t in _quantile_tiers(cfg, annual):
        if t.min is None:
            out.append({"name": t.name, "zh": t.zh})
            continue
        b = nice(t.min)
        if b >= last:  # ties or rounding collapsed two bounds: keep them apart
            b = nice(last * 0.99)
        out.append({"name": t.name, "zh": t.zh, "min": b})
        last = b
    return out


def window_activity(lines: pl.DataFrame, windows: Windows) -> pl.DataFrame:
    """Per customer: purchase orders and months with a purchase in the tier window."""
    w = lines.filter(pl.col("order_date").is_between(pl.lit(windows.tier_start), pl.lit(windows.tier_end)))
    orders = w.group_by("customer_id", "order_key").agg(pl.col("order_date").min(), pl.col("amount").sum())
    orders = orders.filter(pl.col("amount") > 0)
    period = ((pl.lit(windows.tier_end) - pl.col("order_date")).dt.total_days() // 30).clip(upper_bound=11)
    return orders.group_by("customer_id").agg(
        pl.len().alias("_window_orders"), (period.n_unique() / 12).alias("_repurchase_rate"))


def _tier_of(tiers: tuple[Tier, ...]) -> pl.Expr:
    expr = pl.lit(tiers[-1].name)
    for t in reversed(tiers[:-1]):
        assert t.min is not None  # only the last tier has no bound
        expr = pl.when(pl.col("_annual") >= round(t.min * MICRO)).then(pl.lit(t.name)).otherwise(expr)
    return expr


def _retail(customers: pl.DataFrame, lines: pl.DataFrame | None, windows: Windows) -> tuple[pl.DataFrame, str | None]:
    tier = _tier_of(RETAIL)
    if lines is None:
        note = "retail tiers: A uses annual spend only (no order lines for the order-count and repurchase criteria)"
        return customers.with_columns(tier.alias("tier")), note
    act = window_activity(lines, windows)
    df = customers.join(act, on="customer_id", how="left", maintain_order="left")
    meets = ((pl.col("_window_orders").fill_null(0) > RETAIL_MIN_ORDERS)
             & (pl.col("_repurchase_rate").fill_null(0) > RETAIL_MIN_REPURCHASE))
    tier = pl.when((tier == "A") & ~meets).then(pl.lit("B")).otherwise(tier)
    return df.with_columns(tier.alias("tier")).drop("_window_orders", "_repurchase_rate"), None


def apply_scheme(customers: pl.DataFrame, cfg: Config, lines: pl.DataFrame | None, windows: Windows,
                 roles: set[str]) -> tuple[pl.DataFrame, Config, dict[str, Any]]:
    """Re-tier the customers by ``cfg.tier_scheme``; returns the customers, the config holding the
    tiers actually used, and what the summary reports about the scheme."""
    info: dict[str, Any] = {"scheme": cfg.tier_scheme}
    if cfg.tier_scheme == "config":
        return customers, cfg, info
    if cfg.tier_scheme == "quantile":
        tiers = _quantile_tiers(cfg, customers["_annual"])
        info["quantile_shares"] = list(cfg.quantile_shares[: len(tiers) - 1])
        df = customers.with_columns(_tier_of(tiers).alias("tier"))
    else:
        tiers = PRESETS[cfg.tier_scheme]
        df, note = _retail(customers, lines, windows)
        info["criteria"] = {"min_orders_exclusive": RETAIL_MIN_ORDERS,
                            "min_repurchase_rate_exclusive": RETAIL_MIN_REPURCHASE}
        if note:
            info["note"] = note
    info["tiers"] = [{"name": t.name, "zh": t.zh, "min": t.min} for t in tiers]
    effective = dict(cfg.effective) | {"tiers": info["tiers"]}
    new_cfg = dataclasses.replace(cfg, tiers=tiers, effective=effective)
    return repersona(df, new_cfg, roles, lines), new_cfg, info


def repersona(customers: pl.DataFrame, cfg: Config, roles: set[str], lines: pl.DataFrame | None) -> pl.DataFrame:
    """Personas again after a step changed the tier or lifecycle they read.

    Rules on text columns the customer table does not carry (e.g. category) read each customer's
    most frequent value from the order lines again, as ``build_customers`` did.
    """
    need = {c for rule in cfg.personas for c in rule.columns if c in roles and c not in customers.columns}
    if not need or lines is None:
        present = {r for r in roles if r in customers.columns}
        return customers.with_columns(persona_expr(cfg, present).alias("persona"))
    modes = _modes(lines, tuple(sorted(need)))
    assert modes is not None  # need is not empty
    df = customers.join(modes, on="customer_id", how="left", maintain_order="left")
    return df.with_columns(persona_expr(cfg, roles).alias("persona")).drop(sorted(need))


def concentration(customers: pl.DataFrame, cfg: Config) -> dict[str, Any] | None:
    """The tier holding more than ``cfg.concentration`` of customers or spend, with a suggested table."""
    n = customers.height
    total = customers["_annual"].clip(lower_bound=0).sum()
    g = customers.group_by("tier").agg(pl.len().alias("n"), pl.col("_annual").clip(lower_bound=0).sum().alias("s"))
    for tier, c, s in g.sort("n", "tier", descending=[True, False]).iter_rows():
        by_customers = c / n if n else 0.0
        by_spend = s / total if total > 0 else 0.0
        if by_customers > cfg.concentration or by_spend > cfg.concentration:
            return {"tier": tier, "share_of_customers": by_customers, "share_of_spend": by_spend,
                    "suggested_tiers": suggested_tiers(cfg, customers["_annual"])}
    return None


def suggestion_text(suggested: list[dict[str, Any]], currency: str | None, zh: bool = False) -> str:
    unit = f" {currency}" if currency else ""
    parts = [f"{s['zh'] if zh else s['name']} ≥ {s['min']:,.0f}{unit}" for s in suggested if "min" in s]
    return ("，" if zh else ", ").join(parts)
