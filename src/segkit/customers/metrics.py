"""Per-customer metrics: RFM, scores, segments, value classes, tiers, lifecycle, churn, personas.

Input: the order lines from ``ingest/clean.py`` (amounts in micro-units). All computation is vectorised
polars; money stays in exact integers until the final table. Definitions follow SPEC §3; where it
leaves a choice open the choice is written in the function's docstring and in the README.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any, cast

import polars as pl

from segkit.config import Config
from segkit.customers.tiers import Tiering
from segkit.customers.windows import Windows
from segkit.ingest.clean import MICRO, to_money

# value_class codes (SPEC §3, "codes, not labels"): files hold these language-free codes; the
# reports and the terminal show the catalog word ([value_class] in i18n/en.toml and zh.toml).
#   important_value       重要价值  R high, F high, M high
#   important_development 重要发展  R high, F low,  M high
#   important_retention   重要保持  R low,  F high, M high
#   important_winback     重要挽留  R low,  F low,  M high
#   general_value         一般价值  R high, F high, M low
#   general_development   一般发展  R high, F low,  M low
#   general_retention     一般保持  R low,  F high, M low
#   general_winback       一般挽留  R low,  F low,  M low
VALUE_CLASSES = {
    (True, True, True): "important_value",
    (True, False, True): "important_development",
    (False, True, True): "important_retention",
    (False, False, True): "important_winback",
    (True, True, False): "general_value",
    (True, False, False): "general_development",
    (False, True, False): "general_retention",
    (False, False, False): "general_winback",
}
LIFECYCLES = ("lapsed", "new", "growing", "declining", "mature")
ATTRIBUTE_ROLES = ("channel", "region", "customer_type")
NO_RECENCY = 10**9
# 120 / 100 - 1 is 0.19999999999999996 in binary floating point; +20% must still count as growing.
YOY_TOLERANCE = 1e-9  # stands for "no purchase": worse than any real recency


@dataclass(frozen=True)
class CustomerTable:
    customers: pl.DataFrame  # one row per customer, assignments columns but the cluster ones (models.kmeans adds them)
    windows: Windows | None  # None: a customer-level table without dates (no as_of)
    cut_points: dict[str, Any] = field(default_factory=dict)
    others_combinations: list[str] = field(default_factory=list)
    excluded_after_as_of: int = 0
    no_purchase_customers: int = 0
    population_median_gap: float | None = None
    score_means: dict[str, float] = field(default_factory=dict)


def _between(col: str, start: dt.date, end: dt.date) -> pl.Expr:
    return pl.col(col).is_between(pl.lit(start), pl.lit(end), closed="both")


def quantile_scores(worse: pl.Expr, n: int) -> pl.Expr:
    """score = 1 + floor(5 * (customers strictly worse) / n), in exact integer arithmetic."""
    return (1 + (worse.cast(pl.Int64) * 5) // n).cast(pl.Int8)


def rfm_scores(cfg: Config, n: int) -> list[pl.Expr]:
    """R, F, M scores 1-5 from recency_days, frequency and monetary (micro-units).

    Quantile method: ties get one score, independent of row order. A customer with no purchase
    has no recency and counts as the worst. Threshold method: four ascending cut points per
    metric; recency <= t1 -> 5 ... > t4 -> 1; frequency/monetary >= t4 -> 5 ... < t1 -> 1.
    """
    rec = pl.col("recency_days").fill_null(NO_RECENCY)
    if cfg.scoring_method == "quantile":
        r = quantile_scores(n - rec.rank("max"), n)
        f = quantile_scores(pl.col("frequency").rank("min") - 1, n)
        m = quantile_scores(pl.col("_monetary").rank("min") - 1, n)
    else:
        r = (5 - pl.sum_horizontal([(rec > t).cast(pl.Int8) for t in cfg.recency_thresholds])).cast(pl.Int8)
        f = (1 + pl.sum_horizontal([(pl.col("frequency") >= t).cast(pl.Int8)
                                    for t in cfg.frequency_thresholds])).cast(pl.Int8)
        m = (1 + pl.sum_horizontal([(pl.col("_monetary") >= round(t * MICRO)).cast(pl.Int8)
                                    for t in cfg.monetary_thresholds])).cast(pl.Int8)
    return [r.alias("r_score"), f.alias("f_score"), m.alias("m_score")]


def segment_expr(cfg: Config) -> pl.Expr:
    expr = pl.lit("Others")
    for seg in reversed(cfg.segments):
        cond = (
            pl.col("r_score").is_between(*seg.r)
            & pl.col("f_score").is_between(*seg.f)
            & pl.col("m_score").is_between(*seg.m)
        )
        expr = pl.when(cond).then(pl.lit(seg.name)).otherwise(expr)
    return expr


def others_combinations(cfg: Config) -> list[str]:
    """The R/F/M score combinations that no row of the segment table holds."""
    return [
        f"{r}{f}{m}"
        for r, f, m in itertools.product(range(1, 6), repeat=3)
        if not any(s.holds(r, f, m) for s in cfg.segments)
    ]


def persona_expr(cfg: Config, present: set[str]) -> pl.Expr:
    """First persona rule that holds; a rule on columns that are all absent is skipped."""
    expr = pl.lit(None, pl.String)
    for rule in reversed(cfg.personas):
        if rule.tier:
            cond = pl.col("tier").is_in(list(rule.tier))
        elif rule.lifecycle:
            cond = pl.col("lifecycle").is_in(list(rule.lifecycle))
        else:
            cols = [c for c in rule.columns if c in present]
            if not cols:
                continue
            cond = pl.any_horizontal([
                pl.col(c).str.to_lowercase().str.contains_any(list(rule.contains)).fill_null(False)
                for c in cols
            ])
        expr = pl.when(cond).then(pl.lit(rule.name)).otherwise(expr)
    return expr


BASE_RENAMES = {"monetary": "_monetary", "annual": "_annual", "prior": "_prior", "orders_all": "_orders_all",
                "bought_in_window": "_bought_in_window", "own_gap": "_own_gap",
                "purchase_days": "_purchase_days", "first_purchase_day": "_first_purchase_day",
                "last_purchase_day": "_last_purchase_day", "repeat_value": "_repeat_value",
                "gross_profit": "_gross_profit"}
PROFIT_COLUMNS = ("gross_profit", "margin")


def finish(
    base: pl.DataFrame, cfg: Config, win: Windows, tiering: Tiering, yoy_available: bool = True,
    roles: tuple[str, ...] = (), excluded_after_as_of: int = 0, pop_gap: float | None = None,
) -> CustomerTable:
    """The customer base table of an engine (see ``segkit.engines``) -> the assignments table:
    RFM scores, then the labels read from them (segment, value class, tier, churn risk,
    lifecycle, persona), each computed once, then money in currency units, largest annual spend
    first. ``yoy_available``: the data covers a prior window (``date_coverage``); without one,
    prior_annual_spend, yoy_growth and the lifecycle stages that read them stay empty (a prior
    window holding a few days of data is not a prior year)."""
    df = base.rename(BASE_RENAMES, strict=False).with_columns(
        (pl.lit(win.as_of) - pl.col("last_order_date")).dt.total_days().alias("recency_days"),
    )
    df = tiering.with_criteria(df).with_columns(rfm_scores(cfg, df.height))
    means = {k: float(cast(float, df[k].mean())) for k in ("r_score", "f_score", "m_score")}
    present = set(roles) | ({"gross_profit"} if "_gross_profit" in df.columns else set())
    yoy = pl.when(pl.col("_prior") > 0).then(pl.col("_annual") / pl.col("_prior") - 1)
    df = df.with_columns(
        pl.concat_str([pl.col("r_score"), pl.col("f_score"), pl.col("m_score")]).alias("rfm_score"),
        pl.when(pl.col("last_order_date").is_null()).then(pl.lit("Lost"))
        .otherwise(segment_expr(cfg)).alias("rfm_segment"),
        value_class_expr(means).alias("value_class"),
        tiering.expr().alias("tier"),
        (yoy if yoy_available else pl.lit(None, pl.Float64)).alias("yoy_growth"),
        churn_expr(cfg, pop_gap).alias("churn_risk"),
    ).with_columns(lifecycle_expr(cfg, win, yoy_available).alias("lifecycle"))
    df = df.with_columns(persona_expr(cfg, present).alias("persona"))
    prior = to_money(df["_prior"], "prior_annual_spend")
    df = df.with_columns(
        to_money(df["_monetary"], "monetary"),
        to_money(df["_annual"], "annual_spend"),
        prior if yoy_available else pl.lit(None, prior.dtype).alias("prior_annual_spend"),
        *profit_columns(df),
    ).sort(["_annual", "customer_id"], descending=[True, False])
    customers = df.select([*assignment_columns(present, clusters=False),
                           *[c for c in df.columns if c.startswith("_") and c != "_meets_top"]])
    return CustomerTable(
        customers=customers,
        windows=win,
        cut_points=score_cut_points(df),
        others_combinations=others_combinations(cfg),
        excluded_after_as_of=excluded_after_as_of,
        no_purchase_customers=int(df["last_order_date"].null_count()),
        population_median_gap=None if pop_gap is None else float(pop_gap),
        score_means=means,
    )


def profit_columns(df: pl.DataFrame) -> list[pl.Series]:
    """gross_profit in currency units and margin = gross_profit / monetary (empty when monetary is
    not positive: a share of nothing or of returns means nothing); none without profit figures."""
    if "_gross_profit" not in df.columns:
        return []
    profit = df["_gross_profit"].fill_null(0)
    margin = df.select(pl.when(pl.col("_monetary") > 0)
                       .then(profit.cast(pl.Float64) / pl.col("_monetary").cast(pl.Float64)).alias("margin"))
    return [to_money(profit, "gross_profit"), margin["margin"]]


def value_class_expr(means: dict[str, float]) -> pl.Expr:
    """SPEC §3's eight value classes, as codes (VALUE_CLASSES): each score at or above its
    population mean, or below."""
    value_class = pl.lit(None, pl.String)
    for (rh, fh, mh), label in VALUE_CLASSES.items():
        cond = (
            ((pl.col("r_score") >= means["r_score"]) == rh)
            & ((pl.col("f_score") >= means["f_score"]) == fh)
            & ((pl.col("m_score") >= means["m_score"]) == mh)
        )
        value_class = pl.when(cond).then(pl.lit(label)).otherwise(value_class)
    return value_class


def churn_expr(cfg: Config, pop_gap: float | None) -> pl.Expr:
    """Recency against the customer's own median gap (enough orders) or the population's."""
    gap_ref = (
        pl.when((pl.col("_orders_all") >= cfg.churn_min_orders) & pl.col("_own_gap").is_not_null())
        .then(pl.col("_own_gap"))
        .otherwise(pl.lit(pop_gap, pl.Float64))
    )
    rec = pl.col("recency_days")
    return (pl.when(rec.is_null()).then(pl.lit("high"))
            .when(gap_ref.is_null()).then(pl.lit(None, pl.String))
            .when(rec > cfg.churn_high * gap_ref).then(pl.lit("high"))
            .when(rec > cfg.churn_medium * gap_ref).then(pl.lit("medium"))
            .otherwise(pl.lit("low")))


def lifecycle_expr(cfg: Config, win: Windows, yoy_available: bool = True) -> pl.Expr:
    """lapsed / new / growing / declining / mature from the tier window and yoy_growth; only
    lapsed when the data covers no prior window (the other stages compare with it)."""
    lapsed = pl.when(~pl.col("_bought_in_window")).then(pl.lit("lapsed"))
    if not yoy_available:
        return lapsed.otherwise(pl.lit(None, pl.String))
    return (lapsed
            .when(_between("first_order_date", win.tier_start, win.tier_end)).then(pl.lit("new"))
            .when(pl.col("yoy_growth") >= cfg.growing - YOY_TOLERANCE).then(pl.lit("growing"))
            .when(pl.col("yoy_growth") <= cfg.declining + YOY_TOLERANCE).then(pl.lit("declining"))
            .otherwise(pl.lit("mature")))


CLUSTER_COLUMNS = ("cluster", "cluster_label")


def assignment_columns(present: set[str], migration: bool = False, clusters: bool = True) -> list[str]:
    """The columns of assignments.csv in SPEC order (``clusters=False``: before clustering adds its two)."""
    cols = ["customer_id"]
    if "customer_name" in present:
        cols.append("customer_name")
    cols += [
        "first_order_date", "last_order_date", "recency_days", "frequency", "monetary",
        "annual_spend", "prior_annual_spend", "yoy_growth", "tier", "r_score", "f_score",
        "m_score", "rfm_score", "rfm_segment", "value_class", *(CLUSTER_COLUMNS if clusters else ()),
        "persona", "lifecycle", "churn_risk",
    ]
    cols += list(PROFIT_COLUMNS) if "gross_profit" in present else []
    cols += [r for r in ATTRIBUTE_ROLES if r in present]
    if migration:
        cols += ["previous_tier", "tier_change"]
    return cols


def score_cut_points(df: pl.DataFrame) -> dict[str, Any]:
    """For each metric: the value range each score actually covers, and scores left empty."""
    out = {}
    for metric, score, col in (
        ("recency_days", "r_score", "recency_days"),
        ("frequency", "f_score", "frequency"),
        ("monetary", "m_score", "_monetary"),
    ):
        g = (
            df.group_by(score)
            .agg(pl.len().alias("customers"), pl.col(col).min().alias("min"), pl.col(col).max().alias("max"))
            .sort(score)
        )
        scale = MICRO if col == "_monetary" else 1
        bins = []
        for s in range(1, 6):
            row = g.filter(pl.col(score) == s)
            if row.height:
                lo, hi, cnt = row["min"][0], row["max"][0], row["customers"][0]
                bins.append({"score": s, "customers": int(cnt),
                             "min": None if lo is None else lo / scale,
                             "max": None if hi is None else hi / scale})
            else:
                bins.append({"score": s, "customers": 0, "min": None, "max": None})
        out[metric] = {"bins": bins, "collapsed": [b["score"] for b in bins if b["customers"] == 0]}
    return out


def with_clusters(customers: pl.DataFrame, cluster: pl.Series | None = None,
                  label: pl.Series | None = None) -> pl.DataFrame:
    """``customers`` with the cluster columns where assignments.csv has them (after value_class):
    the given codes and labels (one per row), or empty when there was no clustering. A table
    without value_class (a caller's own features) gets them at the end."""
    cols = [c for c in customers.columns if c not in CLUSTER_COLUMNS]
    at = cols.index("value_class") + 1 if "value_class" in cols else len(cols)
    return customers.with_columns(
        pl.lit(None, pl.Int64).alias("cluster") if cluster is None else cluster.cast(pl.Int64).alias("cluster"),
        pl.lit(None, pl.String).alias("cluster_label") if label is None else label.cast(pl.String).alias("cluster_label"),
    ).select([*cols[:at], *CLUSTER_COLUMNS, *cols[at:]])
