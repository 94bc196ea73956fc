"""The CLV part of the reports: model facts, p(alive) distribution, value at risk by tier, the
churn warning list and the lost customers, and the backtest when one was run.

Value at risk of a customer = recent value x (1 - p_alive) when churn_risk follows p_alive for
that customer, else the whole recent value; recent value = the larger of annual_spend and
prior_annual_spend (the better of the last two years), floored at 0. The churn warning list holds
the customers at high churn risk who bought something in those two years, largest value at risk
first; customers at high risk with nothing in those two years are long gone: they are listed as
lost, not as warnings.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

import polars as pl

from segkit.i18n import catalog
from segkit.outputs.report import svg

if TYPE_CHECKING:
    from segkit.models.clv import ClvResult

P_BINS = 10


def recent_value() -> pl.Expr:
    return pl.max_horizontal(pl.col("annual_spend"), pl.col("prior_annual_spend"), pl.lit(0.0))


def value_at_risk(uses_p_alive: bool) -> pl.Expr:
    by_p = pl.col("_repeat_purchases").fill_null(0) > 0 if uses_p_alive else pl.lit(False)
    return pl.when(by_p).then(recent_value() * (1 - pl.col("p_alive"))).otherwise(recent_value())


def with_risk(customers: pl.DataFrame, clv: ClvResult | None) -> pl.DataFrame:
    uses = bool(clv is not None and clv.churn_from_p_alive)
    if "_repeat_purchases" not in customers.columns:
        customers = customers.with_columns(pl.lit(None, pl.Int64).alias("_repeat_purchases"))
    return customers.with_columns(recent_value().alias("_recent_value"), value_at_risk(uses).alias("_value_at_risk"))


def churn_warnings(customers: pl.DataFrame, clv: ClvResult | None, top_n: int) -> pl.DataFrame:
    """High churn risk with spend in the last two years, largest value at risk first."""
    return (with_risk(customers, clv)
            .filter((pl.col("churn_risk") == "high") & (pl.col("_recent_value") > 0))
            .sort(["_value_at_risk", "customer_id"], descending=[True, False]).head(top_n))


def _params(doc: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for model, key in (("BG/NBD", "bgnbd"), ("Gamma-Gamma", "gamma_gamma")):
        for name, value in doc.get("params", {}).get(key, {}).items():
            rows.append([model, name, value])
    return rows


def p_alive_bins(customers: pl.DataFrame) -> list[dict[str, Any]]:
    rep = customers.filter((pl.col("_repeat_purchases").fill_null(0) > 0) & pl.col("p_alive").is_not_null())
    idx = (rep["p_alive"] * P_BINS).floor().clip(0, P_BINS - 1).cast(pl.Int64)
    counts = idx.value_counts()
    got = dict(zip(counts[idx.name].to_list(), counts["count"].to_list()))
    return [{"label": f"{i / P_BINS:.1f}–{(i + 1) / P_BINS:.1f}", "customers": int(got.get(i, 0))}
            for i in range(P_BINS)]


def risk_by_tier(customers: pl.DataFrame, tier_names: list[tuple[str, str]]) -> list[dict[str, Any]]:
    g = {r["tier"]: r for r in customers.group_by("tier").agg(
        pl.len().alias("customers"), pl.col("_recent_value").sum().alias("recent_value"),
        pl.col("_value_at_risk").sum().alias("value_at_risk"),
        pl.col("predicted_revenue").sum().alias("predicted_revenue")).iter_rows(named=True)}
    return [{"tier": label, "customers": int(g.get(key, {}).get("customers", 0)),
             "recent_value": g.get(key, {}).get("recent_value", 0.0),
             "value_at_risk": g.get(key, {}).get("value_at_risk", 0.0),
             "predicted_revenue": g.get(key, {}).get("predicted_revenue")} for key, label in tier_names]


def backtest_section(bt: dict[str, Any] | None, L: dict[str, Any]) -> dict[str, Any] | None:
    if not bt or bt.get("skipped_reason"):
        return None if not bt else {"summary": bt["skipped_reason"], "rows": [], "chart": None}
    rows = bt["calibration_table"]
    chart = svg.grouped_bars([str(r["repeat_purchases"]) for r in rows], [L["predicted_mean"], L["actual_mean"]],
                             [[r["predicted_mean"], r["actual_mean"]] for r in rows], title=L["backtest"])
    tot = bt["totals"]
    return {"summary": L["bt_summary"].format(end=bt["calibration_end"], days=bt["holdout_days"],
                                              pred=tot["predicted_purchases"], act=tot["actual_purchases"],
                                              mae=bt["mae_per_customer"], naive=bt["naive_mae_per_customer"]),
            "rows": rows, "chart": chart}


def _churn_rule(c: dict[str, Any], lang: str) -> str | None:
    from segkit.models.clv import churn_rule_text

    rule: str | None = churn_rule_text(c["churn_rule_code"], lang) if c.get("churn_rule_code") else c.get("churn_rule")
    return rule


def clv_section(doc: dict[str, Any], customers: pl.DataFrame, clv: ClvResult | None,
                tier_names: list[tuple[str, str]], lang: str, top_n: int) -> dict[str, Any]:
    L = catalog(lang)["clv"]
    c = doc.get("clv") or {}
    out: dict[str, Any] = {"L": L, "fitted": not c.get("skipped_reason"), "skipped_reason": c.get("skipped_reason"),
           "churn_rule": _churn_rule(c, lang), "params": _params(c), "facts": [], "bins": [], "risk": [],
           "lost": [], "lost_count": 0, "p_chart": None, "risk_chart": None,
           "backtest": backtest_section(c.get("backtest"), L)}
    df = with_risk(customers, clv)
    lost = (df.filter((pl.col("churn_risk") == "high") & (pl.col("_recent_value") <= 0))
            .sort(["monetary", "customer_id"], descending=[True, False]))
    out["lost_count"] = lost.height
    out["lost"] = lost.head(top_n).select(
        [x for x in ("customer_id", "customer_name", "last_order_date", "monetary") if x in lost.columns]).to_dicts()
    if not out["fitted"]:
        return out
    out["facts"] = [
        {"label": L["customers_fitted"], "value": c["customers_fitted"]},
        {"label": L["repeat_customers"], "value": c["repeat_customers"]},
        {"label": L["horizon"], "value": c["horizon_days"]},
        {"label": L["independence"], "value": c["independence_check"]["pearson_r_frequency_value"]},
    ]
    out["bins"] = p_alive_bins(df)
    out["p_chart"] = svg.hbars([b["label"] for b in out["bins"]], [b["customers"] for b in out["bins"]],
                               [f"{b['customers']:,}" for b in out["bins"]], title=L["p_alive_dist"])
    out["risk"] = risk_by_tier(df, tier_names)
    out["risk_chart"] = svg.hbars([r["tier"] for r in out["risk"]], [r["value_at_risk"] for r in out["risk"]],
                                  [svg.compact(r["value_at_risk"], lang == "zh") for r in out["risk"]],
                                  title=L["risk_by_tier"])
    return out
