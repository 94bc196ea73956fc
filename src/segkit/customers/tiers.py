"""Which tiers a run uses, decided before any customer is tiered, and the concentration check.

``resolve`` returns the ``Tiering`` the customer table is then tiered by, once, for
``tiering.scheme``:
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
from dataclasses import dataclass

import polars as pl

from segkit.ingest.clean import MICRO
from segkit.ingest.rules import is_purchase
from segkit.config import Config, Tier
from segkit.customers.warnings import catalog_warning, warning
from segkit.i18n import message
if TYPE_CHECKING:
    from segkit.customers.windows import Windows

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


def _quantile_tiers(names: tuple[Tier, ...], shares: tuple[float, ...], annual: pl.Series) -> tuple[Tier, ...]:
    bounds = quantile_bounds(annual, shares[: len(names) - 1])
    tiers = [Tier(t.name, t.zh, b) for t, b in zip(names[:-1], bounds)]
    return (*tiers, Tier(names[-1].name, names[-1].zh, None))


def suggested_tiers(tiers: tuple[Tier, ...], cfg: Config, annual: pl.Series) -> list[dict[str, Any]]:
    """A fitting table of ``tiers`` for this data: quantile bounds, rounded, strictly descending."""
    out: list[dict[str, Any]] = []
    last = math.inf
    for t in _quantile_tiers(tiers, cfg.quantile_shares, annual):
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
    """Per customer: purchase orders (``_window_orders``) and 30-day periods with a purchase
    (``_window_periods``, the last 12 of the tier window) in the tier window: what the retail
    preset's criteria read. The polars engine's reduction of its lines; the Spark engine computes
    the same in Spark (``engines.spark.window_activity``)."""
    w = lines.filter(pl.col("order_date").is_between(pl.lit(windows.tier_start), pl.lit(windows.tier_end)))
    orders = w.group_by("customer_id", "order_key").agg(pl.col("order_date").min(), pl.col("amount").sum())
    orders = orders.filter(is_purchase(pl.col("amount")))
    period = ((pl.lit(windows.tier_end) - pl.col("order_date")).dt.total_days() // 30).clip(upper_bound=11)
    return orders.group_by("customer_id").agg(
        pl.len().cast(pl.Int64).alias("_window_orders"), period.n_unique().cast(pl.Int64).alias("_window_periods"))


@dataclass(frozen=True)
class Tiering:
    """The tiers a run uses (the config's table, quantile bounds from this data, or a preset) and
    what summary.json reports about them (``info``). ``meets_top``: per customer_id, whether the
    preset's extra criteria for its first tier hold (``_meets_top``); a customer spending enough
    for the first tier without them is in the second."""

    tiers: tuple[Tier, ...]
    info: dict[str, Any]
    meets_top: pl.DataFrame | None = None

    def expr(self, col: str = "_annual") -> pl.Expr:
        """The tier of each customer: the first whose inclusive lower bound ``col`` (micro-units)
        reaches; reads ``_meets_top`` when the scheme has criteria (see ``with_criteria``)."""
        expr = pl.lit(self.tiers[-1].name)
        for t in reversed(self.tiers[:-1]):
            assert t.min is not None  # only the last tier has no bound
            expr = pl.when(pl.col(col) >= round(t.min * MICRO)).then(pl.lit(t.name)).otherwise(expr)
        if self.meets_top is None:
            return expr
        first, second = self.tiers[0].name, self.tiers[1].name
        return pl.when((expr == first) & ~pl.col("_meets_top")).then(pl.lit(second)).otherwise(expr)

    def with_criteria(self, customers: pl.DataFrame) -> pl.DataFrame:
        """``customers`` with the ``_meets_top`` column ``expr`` reads (unchanged without criteria)."""
        if self.meets_top is None:
            return customers
        df = customers.join(self.meets_top, on="customer_id", how="left", maintain_order="left")
        return df.with_columns(pl.col("_meets_top").fill_null(False))

    def with_info(self, **more: Any) -> Tiering:
        return dataclasses.replace(self, info={**self.info, **more})


def resolve(cfg: Config, annual: pl.Series, activity: pl.DataFrame | None) -> Tiering:
    """The tiering for ``cfg.tier_scheme``, from every customer's annual spend (micro-units) and,
    for the retail preset, each customer's ``window_activity`` (None: a customer-level table)."""
    info: dict[str, Any] = {"scheme": cfg.tier_scheme}
    if cfg.tier_scheme == "config":
        return Tiering(cfg.tiers, info)
    if cfg.tier_scheme == "quantile":
        tiers = _quantile_tiers(cfg.tiers, cfg.quantile_shares, annual)
        info["quantile_shares"] = list(cfg.quantile_shares[: len(tiers) - 1])
        meets = None
    else:
        tiers = PRESETS[cfg.tier_scheme]
        info["criteria"] = {"min_orders_exclusive": RETAIL_MIN_ORDERS,
                            "min_repurchase_rate_exclusive": RETAIL_MIN_REPURCHASE}
        meets = None if activity is None else retail_criteria(activity)
        if meets is None:
            info["note"] = ("retail tiers: A uses annual spend only "
                            "(no order lines for the order-count and repurchase criteria)")
    info["tiers"] = [{"name": t.name, "zh": t.zh, "min": t.min} for t in tiers]
    return Tiering(tiers, info, meets)


def uses_activity(cfg: Config) -> bool:
    """Whether the tier scheme reads ``window_activity`` (a preset with criteria)."""
    return cfg.tier_scheme not in ("config", "quantile")


def retail_criteria(activity: pl.DataFrame) -> pl.DataFrame:
    """customer_id, _meets_top: more than RETAIL_MIN_ORDERS purchase orders in the tier window and
    a repurchase rate (periods with a purchase / 12) above RETAIL_MIN_REPURCHASE."""
    rate = pl.col("_window_periods") / 12
    return activity.select("customer_id", ((pl.col("_window_orders") > RETAIL_MIN_ORDERS)
                                           & (rate > RETAIL_MIN_REPURCHASE)).alias("_meets_top"))


def concentration(customers: pl.DataFrame, tiers: tuple[Tier, ...], cfg: Config) -> dict[str, Any] | None:
    """The tier holding more than ``cfg.concentration`` of customers or spend, with a suggested table."""
    n = customers.height
    total = customers["_annual"].clip(lower_bound=0).sum()
    g = customers.group_by("tier").agg(pl.len().alias("n"), pl.col("_annual").clip(lower_bound=0).sum().alias("s"))
    for tier, c, s in g.sort("n", "tier", descending=[True, False]).iter_rows():
        by_customers = c / n if n else 0.0
        by_spend = s / total if total > 0 else 0.0
        if by_customers > cfg.concentration or by_spend > cfg.concentration:
            return {"tier": tier, "share_of_customers": by_customers, "share_of_spend": by_spend,
                    "suggested_tiers": suggested_tiers(tiers, cfg, customers["_annual"])}
    return None


def suggestion_text(suggested: list[dict[str, Any]], currency: str | None, zh: bool = False) -> str:
    unit = f" {currency}" if currency else ""
    parts = [f"{s['zh'] if zh else s['name']} ≥ {s['min']:,.0f}{unit}" for s in suggested if "min" in s]
    return ("，" if zh else ", ").join(parts)


def tier_guidance(customers: pl.DataFrame, tiering: Tiering, cfg: Config, cov: dict[str, Any],
                  currency: str | None) -> tuple[Tiering, list[dict[str, Any]]]:
    """The tiering with its concentration (when one tier holds most customers or spend), and the
    short_coverage and tier_concentration warnings, for a finished customer table."""
    out = []
    if cov.get("reason"):
        out.append(warning("short_coverage", cov["reason"], cov.get("reason_zh", cov["reason"])))  # catalog texts
    conc = concentration(customers, tiering.tiers, cfg)
    if conc is None:
        return tiering, out
    names = {t.name: t.zh for t in tiering.tiers}
    by_customers = conc["share_of_customers"] >= conc["share_of_spend"]
    what = "what_customers" if by_customers else "what_spend"
    out.append(catalog_warning(
        "tier_concentration", share=max(conc["share_of_customers"], conc["share_of_spend"]),
        what={"en": message("warning", what, "en"), "zh": message("warning", what, "zh")},
        tier={"en": conc["tier"], "zh": names.get(conc["tier"], conc["tier"])},
        table={"en": suggestion_text(conc["suggested_tiers"], currency),
               "zh": suggestion_text(conc["suggested_tiers"], currency, zh=True)}))
    return tiering.with_info(concentration=conc), out
