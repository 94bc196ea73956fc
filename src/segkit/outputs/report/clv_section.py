"""The CLV part of the reports: model facts, p(alive) distribution, value at risk by tier, the
churn warning list and the lost customers, and the backtest when one was run.

Value at risk is defined in ``models/value_at_risk.py`` (SPEC §3): recent value x (1 - p_alive)
where p_alive decides churn_risk, else the recent value of the high-risk customers with the
medium-risk value beside it; the per-tier table is summary.json's ``clv.value_at_risk``. The churn
warning list holds
the customers at high churn risk who bought something in those two years, largest value at risk
first; customers at high risk with nothing in those two years are long gone: they are listed as
lost, not as warnings.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

import polars as pl

from segkit.i18n import catalog
from segkit.customers.sums import group_fsums
from segkit.models.value_at_risk import with_risk
from segkit.outputs.report import svg

if TYPE_CHECKING:
    from segkit.models.clv.run import ClvResult

P_BINS = 10


def churn_warnings(customers: pl.DataFrame, clv: ClvResult | None, top_n: int) -> pl.DataFrame:
    """High churn risk with spend in the last two years, largest value at risk first."""
    return (with_risk(customers, clv)
            .filter((pl.col("churn_risk") == "high") & (pl.col("_recent_value") > 0))
            .sort(["_value_at_risk", "customer_id"], descending=[True, False]).head(top_n))


def _params(doc: dict[str, Any]) -> list[list[Any]]:
    from segkit.models.clv.registry import DEFAULT, get

    rows = []
    name = str(doc.get("model") or DEFAULT)
    counting = get(name if name in doc.get("params", {}) else DEFAULT)
    for model, key in ((counting.label, counting.name), ("Gamma-Gamma", "gamma_gamma")):
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


def risk_by_tier(doc_rows: list[dict[str, Any]], customers: pl.DataFrame,
                 tier_names: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """summary.json's value at risk per tier, with display names and the predicted revenue."""
    predicted = {k: v[0] for k, v in group_fsums(customers, "tier", ["predicted_revenue"]).items()}
    by_code = {r["tier"]: r for r in doc_rows}
    out = []
    for key, label in tier_names:
        r = by_code.get(key, {})
        out.append({"tier": label, "customers": r.get("customers", 0),
                    "high_risk_customers": r.get("high_risk_customers", 0),
                    "recent_value": r.get("recent_value", 0.0), "value_at_risk": r.get("value_at_risk", 0.0),
                    "medium_risk_value": r.get("medium_risk_value", 0.0), "predicted_revenue": predicted.get(key)})
    return out


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
    from segkit.models.clv.run import churn_rule_text

    rule: str | None = churn_rule_text(c["churn_rule_code"], lang) if c.get("churn_rule_code") else c.get("churn_rule")
    return rule


def clv_section(doc: dict[str, Any], customers: pl.DataFrame, clv: ClvResult | None,
                tier_names: list[tuple[str, str]], lang: str, top_n: int) -> dict[str, Any]:
    L = catalog(lang)["clv"]
    c = doc.get("clv") or {}
    out: dict[str, Any] = {"L": L, "fitted": not c.get("skipped_reason"), "skipped_reason": c.get("skipped_reason"),
           "churn_rule": _churn_rule(c, lang), "params": _params(c), "facts": [], "bins": [], "risk": [],
           "lost": [], "lost_count": 0, "p_chart": None, "risk_chart": None,
           "backtest": backtest_section(c.get("backtest"), L),
           "selection": (c.get("selection") or {}).get("reason")}
    df = with_risk(customers, clv)
    lost = (df.filter((pl.col("churn_risk") == "high") & (pl.col("_recent_value") <= 0)
                      & pl.col("last_order_date").is_not_null())  # returns only: never a customer to lose
            .sort(["monetary", "customer_id"], descending=[True, False]))
    out["lost_count"] = lost.height
    out["lost"] = lost.head(top_n).select(
        [x for x in ("customer_id", "customer_name", "last_order_date", "monetary") if x in lost.columns]).to_dicts()
    out["risk"] = risk_by_tier(c.get("value_at_risk") or [], customers, tier_names)
    out["risk_by_p_alive"] = c.get("value_at_risk_rule") == "p_alive"
    out["risk_note"] = L["risk_note_p_alive" if out["risk_by_p_alive"] else "risk_note_recency"]
    out["risk_chart"] = svg.hbars([r["tier"] for r in out["risk"]], [r["value_at_risk"] for r in out["risk"]],
                                  [svg.compact(r["value_at_risk"], lang == "zh") for r in out["risk"]],
                                  title=L["risk_by_tier"]) if out["risk"] else None
    if not out["fitted"]:
        return out
    out["facts"] = [
        {"label": L["customers_fitted"], "value": c["customers_fitted"]},
        {"label": L["repeat_customers"], "value": c["repeat_customers"]},
        {"label": L["horizon"], "value": c["horizon_days"]},
        {"label": L["independence"], "value": c["independence_check"]["pearson_r_frequency_value"]},
    ]
    sampled = c.get("fit_sample")
    if sampled:  # the fits ran on a fixed-seed sample (clustering.fit_sample)
        out["facts"].append({"label": L["fit_sample"], "value": sampled["note_zh" if lang == "zh" else "note"]})
    out["bins"] = p_alive_bins(df)
    out["p_chart"] = svg.hbars([b["label"] for b in out["bins"]], [b["customers"] for b in out["bins"]],
                               [f"{b['customers']:,}" for b in out["bins"]], title=L["p_alive_dist"])
    return out
