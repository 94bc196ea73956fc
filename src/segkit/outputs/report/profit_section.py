"""The gross profit part of the reports (SPEC §3): profit by tier with its Pareto chart beside the
spend Pareto, profit by persona, and the share of customers holding 50% / 80% of profit and of
spend. Plain data from summary.json's ``profit``; None when the input had no profit figures."""

from __future__ import annotations

from typing import Any

from segkit.outputs.report import svg
from segkit.outputs.report.labels import Names


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def headline(doc: dict[str, Any], t: dict[str, Any]) -> str:
    """'3% of customers hold 50% of gross profit, 12% hold 80%' (empty when profit is not positive)."""
    p = doc["profit"]["pareto_profit"]
    if p["customers_for_50"] is None:
        return ""
    return str(t["profit_headline"]).format(c50=_pct(p["customers_for_50"]), c80=_pct(p["customers_for_80"]))


def _rows(rows: list[dict[str, Any]], key: str, name: Any) -> list[dict[str, Any]]:
    out, cum = [], 0.0
    for r in rows:
        share = r["share_of_profit"]
        cum += share or 0.0
        out.append({"key": r[key], "name": name(r[key]), "customers": r["customers"],
                    "gross_profit": r["gross_profit"], "share_of_profit": share,
                    "cum_share_of_profit": cum if share is not None else None, "margin": r["margin"]})
    return out


def profit_section(doc: dict[str, Any], names: Names, t: dict[str, Any]) -> dict[str, Any] | None:
    if "profit" not in doc:
        return None
    p = doc["profit"]
    tiers = _rows(p["tiers"], "tier", names.tier)
    chart = svg.pareto([r["name"] for r in tiers], [r["gross_profit"] for r in tiers],
                       [r["cum_share_of_profit"] for r in tiers], title=t["profit_chart"], zh=names.zh,
                       legend=(t["gross_profit"], t["cum_share_of_profit"]))
    pareto = [{"share": share, "profit": p["pareto_profit"][f"customers_for_{share}"],
               "spend": p["pareto_spend"][f"customers_for_{share}"]} for share in (50, 80)]
    return {
        "total": p["gross_profit"], "margin": p["margin"], "headline": headline(doc, t),
        "tiers": tiers, "personas": _rows(p["personas"], "persona", names.persona),
        "chart": chart, "pareto": pareto,
    }
